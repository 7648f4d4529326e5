"""Data keys: one per subject and version, wrapped by the tenant key; destroyed by clearing `wrapped`."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ledger.repository.base import Record, tables

_K = tables.K

__all__ = ["current_data_key", "destroy_data_keys", "get_data_key", "insert_data_key"]


def current_data_key(conn: Connection, tenant_id: int, subject: str) -> Record | None:
    """Newest version of a subject's data key (possibly destroyed: then `wrapped` is NULL)."""
    return conn.execute(
        select(_K).where(_K.c.tenant_id == tenant_id, _K.c.subject == subject)
        .order_by(_K.c.version.desc()).limit(1)
    ).first()

def get_data_key(conn: Connection, tenant_id: int, key_id: str) -> Record | None:
    return conn.execute(select(_K).where(_K.c.tenant_id == tenant_id, _K.c.key_id == key_id)).first()

def insert_data_key(conn: Connection, key_id: str, tenant_id: int, subject: str, version: int,
                    wrapped: bytes, created_at: str) -> None:
    conn.execute(
        insert(_K).values(key_id=key_id, tenant_id=tenant_id, subject=subject, version=version,
                          wrapped=wrapped, created_at=created_at)
    )

def destroy_data_keys(conn: Connection, tenant_id: int, subject: str, destroyed_at: str) -> list[str]:
    rows = conn.execute(
        select(_K.c.key_id).where(_K.c.tenant_id == tenant_id, _K.c.subject == subject,
                                  _K.c.wrapped.is_not(None))
    ).all()
    conn.execute(
        update(_K).where(_K.c.tenant_id == tenant_id, _K.c.subject == subject, _K.c.wrapped.is_not(None))
        .values(wrapped=None, destroyed_at=destroyed_at)
    )
    return [str(row.key_id) for row in rows]
