"""Subject mappings: the keyed MAC of an outside reference to its random handle."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from ledger.repository.base import tables

_S = tables.S

__all__ = ["delete_subject", "find_subject", "find_subjects", "insert_subject"]


def find_subjects(conn: Connection, tenant_id: int, ref_macs: Sequence[bytes]) -> dict[bytes, str]:
    rows = conn.execute(
        select(_S.c.ref_mac, _S.c.handle).where(_S.c.tenant_id == tenant_id, _S.c.ref_mac.in_(ref_macs))
    )
    return {bytes(row.ref_mac): str(row.handle) for row in rows}

def find_subject(conn: Connection, tenant_id: int, ref_mac: bytes) -> str | None:
    row = conn.execute(select(_S.c.handle).where(_S.c.tenant_id == tenant_id, _S.c.ref_mac == ref_mac)).first()
    return None if row is None else str(row.handle)

def insert_subject(conn: Connection, tenant_id: int, handle: str, ref_mac: bytes, created_at: str) -> None:
    conn.execute(insert(_S).values(handle=handle, tenant_id=tenant_id, ref_mac=ref_mac, created_at=created_at))

def delete_subject(conn: Connection, tenant_id: int, ref_mac: bytes) -> str | None:
    handle = find_subject(conn, tenant_id, ref_mac)
    if handle is not None:
        conn.execute(delete(_S).where(_S.c.tenant_id == tenant_id, _S.c.ref_mac == ref_mac))
    return handle
