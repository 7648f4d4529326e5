"""Tenants and their logs (one log per tenant), and the log's key epoch."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ledger.repository.base import Record, tables

_T = tables.T
_L = tables.L

__all__ = ["bump_key_epoch", "get_log", "get_tenant", "insert_log", "insert_tenant", "key_epoch", "tenant_names"]


def insert_tenant(conn: Connection, name: str, created_at: str, wrapped_key: bytes) -> int:
    result = conn.execute(insert(_T).values(name=name, created_at=created_at, wrapped_key=wrapped_key))
    return int(result.inserted_primary_key[0])  # type: ignore[index]

def insert_log(conn: Connection, tenant_id: int, origin: str, signing_key_wrapped: bytes,
               public_key: bytes, head_hash: str) -> int:
    result = conn.execute(
        insert(_L).values(
            tenant_id=tenant_id, origin=origin, signing_key_wrapped=signing_key_wrapped,
            public_key=public_key, size=0, head_hash=head_hash, head_time="", peaks=b"",
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]

def get_tenant(conn: Connection, name: str) -> Record | None:
    query = (
        select(_T.c.id, _T.c.name, _T.c.wrapped_key, _L.c.id.label("log_id"), _L.c.origin,
               _L.c.signing_key_wrapped, _L.c.public_key)
        .join(_L, _L.c.tenant_id == _T.c.id)
        .where(_T.c.name == name)
    )
    return conn.execute(query).first()

def get_log(conn: Connection, log_id: int) -> Record:
    return conn.execute(select(_L).where(_L.c.id == log_id)).one()

def key_epoch(conn: Connection, log_id: int) -> int:
    return int(conn.execute(select(_L.c.key_epoch).where(_L.c.id == log_id)).scalar_one())

def bump_key_epoch(conn: Connection, log_id: int) -> None:
    """Tell every process that subject mappings or data keys of this log changed."""
    conn.execute(update(_L).where(_L.c.id == log_id).values(key_epoch=_L.c.key_epoch + 1))


def tenant_names(conn: Connection) -> list[str]:
    return [str(row.name) for row in conn.execute(select(_T.c.name).order_by(_T.c.name))]
