"""Settings fail closed (STYLE §14) and data files are private whatever the umask (DESIGN §4, §5)."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from ledger.db import make_engine
from ledger.errors import ConfigurationError
from ledger.files import private_dir, private_file
from ledger.keys import load_master_key
from ledger.settings import Mode, Settings, weak_key_reason

PLACEHOLDERS = {
    "all-zeros": "00" * 32,
    "hex-0123456789abcdef-x4": "0123456789abcdef" * 4,
    "repeated-16-bytes": "00112233445566778899aabbccddeeff" * 2,
    "counting-bytes": bytes(range(32)).hex(),
    "counting-down-by-3": bytes((200 - 3 * n) % 256 for n in range(32)).hex(),
    "base64-of-text": base64.b64encode(b"my-super-secret-key-for-testing!").decode(),
    "one-byte-changed-zeros": "00" * 31 + "01",
}
REAL_KEY = "9f1c2e8a47d35b60c1e9a2f4b7d8036e5a4c19f2e7b30d86a1c5f94e2b7d6038"


def _production(tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'p.db'}",
                    mode=Mode.PRODUCTION, **changes)  # type: ignore[arg-type]


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under the umask of its parameter, restored afterwards."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- placeholder keys


@pytest.mark.parametrize("name", sorted(PLACEHOLDERS))
def test_a_placeholder_master_key_in_the_environment_is_refused_in_production(tmp_path: Path, name: str) -> None:
    settings = _production(tmp_path, master_key=SecretStr(PLACEHOLDERS[name]))
    with pytest.raises(ConfigurationError, match="CASELEDGER_MASTER_KEY is a placeholder, not a key"):
        settings.check_production()
    with pytest.raises(ConfigurationError, match="placeholder"):
        load_master_key(settings)


@pytest.mark.parametrize("name", sorted(PLACEHOLDERS))
def test_a_placeholder_master_key_file_is_refused_in_production(tmp_path: Path, name: str) -> None:
    path = tmp_path / "master.key"
    path.write_text(PLACEHOLDERS[name] + "\n")
    path.chmod(0o600)
    settings = _production(tmp_path, master_key_file=path)
    with pytest.raises(ConfigurationError, match=f"master key file {path} is a placeholder"):
        settings.check_production()
    with pytest.raises(ConfigurationError, match="placeholder"):
        load_master_key(settings)


def test_an_all_zero_binary_key_file_is_refused_in_production(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(base64.b64encode(bytes(32)).decode())
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match="placeholder"):
        _production(tmp_path, master_key_file=path).check_production()


def test_a_real_key_is_accepted_from_either_source(tmp_path: Path) -> None:
    _production(tmp_path, master_key=SecretStr(REAL_KEY)).check_production()
    path = tmp_path / "master.key"
    path.write_text(REAL_KEY + "\n")
    path.chmod(0o600)
    _production(tmp_path, master_key_file=path).check_production()
    assert load_master_key(_production(tmp_path, master_key_file=path)) is not None


def test_random_keys_are_never_taken_for_placeholders() -> None:
    assert all(weak_key_reason(os.urandom(32)) is None for _ in range(5000))


def test_development_mode_still_takes_a_test_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, master_key=SecretStr(PLACEHOLDERS["repeated-16-bytes"]))
    settings.check_production()
    assert load_master_key(settings) is not None


def test_a_readable_key_file_is_refused_in_production(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(REAL_KEY)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        _production(tmp_path, master_key_file=path).check_production()


def test_a_misspelt_setting_in_code_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_contnet_bytes"):
        Settings(data_dir=tmp_path, max_contnet_bytes=5)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- private files under any umask


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077], indirect=True)
def test_the_data_directory_and_database_files_are_private_under_any_umask(tmp_path: Path, umask: int) -> None:
    data = private_dir(tmp_path / "a" / "data")
    assert _mode(data) == 0o700
    database = data / "caseledger.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert path.exists(), path
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("umask", [0o022, 0o000], indirect=True)
def test_a_generated_master_key_is_private_under_any_umask(tmp_path: Path, umask: int,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    load_master_key(settings, create=True)
    assert _mode(settings.default_master_key_path) == 0o600
    assert _mode(settings.default_master_key_path.parent) == 0o700
    assert "UNPROTECTED master key" in capsys.readouterr().err


def test_an_open_data_directory_of_ours_is_closed(tmp_path: Path) -> None:
    opened = tmp_path / "data"
    opened.mkdir()
    opened.chmod(0o755)
    private_dir(opened)
    assert _mode(opened) == 0o700


def test_a_second_engine_on_an_open_sqlite_file_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    """Opening the ledger twice in one process (a test, an embedding script) must not corrupt it: the
    file-privacy step never opens an existing database file, as closing a descriptor of a file drops
    every POSIX lock the process holds on it, SQLite's write lock included."""
    database = tmp_path / "ledger.db"
    first = make_engine(f"sqlite:///{database}")
    try:
        with first.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, held by this process
            make_engine(f"sqlite:///{database}").dispose()
            another_process = subprocess.run(
                [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0, "
                 "isolation_level=None); c.execute('BEGIN IMMEDIATE')", str(database)],
                capture_output=True, text=True, timeout=60)
            assert another_process.returncode != 0 and "database is locked" in another_process.stderr, (
                "the write lock was released: another process could write under us")
            conn.exec_driver_sql("ROLLBACK")
    finally:
        first.dispose()


def test_a_world_readable_database_file_of_ours_is_made_private(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    database.write_bytes(b"")
    database.chmod(0o644)
    private_file(database)
    assert _mode(database) == 0o600
    make_engine(f"sqlite:///{database}").dispose()
    assert _mode(database) == 0o600
