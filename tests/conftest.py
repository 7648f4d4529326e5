"""Shared fixtures: every ledger test runs on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from ledger.service import Ledger
from ledger.settings import Settings

PG_URL = os.environ.get("CASELEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_MASTER_KEY = SecretStr("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")


def _pg_admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def fresh_pg_database(prefix: str = "cl_test") -> Iterator[str]:
    """A brand-new PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for one test."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, master_key=TEST_MASTER_KEY)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    Ledger.initialise(settings)
    opened = Ledger.open(settings)
    try:
        yield opened
    finally:
        opened.close()


def env_for(settings: Settings) -> dict[str, str]:
    """Environment for a `caseledger` subprocess using these settings."""
    env = dict(os.environ)
    env.update({
        "CASELEDGER_DATA_DIR": str(settings.data_dir),
        "CASELEDGER_DATABASE_URL": settings.db_url,
        "CASELEDGER_MASTER_KEY": TEST_MASTER_KEY.get_secret_value(),
    })
    return env
