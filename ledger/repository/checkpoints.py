"""Signed checkpoints, one row per tree size."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ledger.db import is_sqlite
from ledger.repository.base import Record, tables

__all__ = ["get_checkpoint", "insert_checkpoint", "list_checkpoints"]

_C = tables.C


def insert_checkpoint(conn: Connection, log_id: int, size: int, root: bytes, note: str, created_at: str) -> str:
    """Keep the first checkpoint signed at `size`; return the note stored for that size.

    Race-free: concurrent issuers at one size each insert or find the other's row (ON CONFLICT DO
    NOTHING, then read), so the log has one checkpoint per size and no caller sees an error.
    """
    dialect = sqlite if is_sqlite(conn) else postgresql
    conn.execute(dialect.insert(_C).values(log_id=log_id, size=size, root=root, note=note, created_at=created_at)
                 .on_conflict_do_nothing(index_elements=[_C.c.log_id, _C.c.size]))
    stored = get_checkpoint(conn, log_id, size)
    assert stored is not None  # inserted, or present: a conflict means the row exists
    return str(stored.note)


def get_checkpoint(conn: Connection, log_id: int, size: int) -> Record | None:
    return conn.execute(select(_C).where(_C.c.log_id == log_id, _C.c.size == size)).first()


def list_checkpoints(conn: Connection, log_id: int) -> list[Record]:
    return list(conn.execute(select(_C).where(_C.c.log_id == log_id).order_by(_C.c.size)).all())
