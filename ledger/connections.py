"""The three kinds of connection the engine uses: plain reads, snapshot reads and write transactions."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ledger.db import SNAPSHOT, WRITE, is_sqlite

__all__ = ["reading", "snapshot", "writing"]


def reading(engine: Engine) -> Connection:
    """A connection for reads that need no common snapshot: autocommit, one statement each."""
    conn = engine.connect()
    return conn if is_sqlite(conn) else conn.execution_options(isolation_level="AUTOCOMMIT")


def writing(engine: Engine) -> Connection:
    """A connection whose transaction writes (on SQLite it begins with BEGIN IMMEDIATE)."""
    return engine.connect().execution_options(**WRITE)


def snapshot(engine: Engine) -> Connection:
    """A read connection whose queries all see one snapshot (REPEATABLE READ on PostgreSQL)."""
    conn = engine.connect()
    if is_sqlite(conn):
        return conn.execution_options(**SNAPSHOT)
    return conn.execution_options(isolation_level="REPEATABLE READ")
