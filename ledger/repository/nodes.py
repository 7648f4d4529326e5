"""Stored complete-subtree hashes of the Merkle tree (`ledger.tree` numbers them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.repository.base import driver_cursor, placeholder, tables

_N = tables.N

__all__ = ["has_nodes_from", "node_range", "read_nodes"]


_NODES_IN_ORDER = "SELECT idx, hash FROM nodes WHERE log_id = {m} AND idx >= {m} AND idx < {m} ORDER BY idx"

def node_range(conn: Connection, log_id: int, start: int, stop: int) -> list[tuple[Any, ...]]:
    """(idx, hash) of the stored nodes with `start <= idx < stop`, in storage order, in one query."""
    cursor = driver_cursor(conn)
    try:
        cursor.execute(_NODES_IN_ORDER.format(m=placeholder(conn)), (log_id, start, stop))
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    finally:
        cursor.close()
    return rows

def has_nodes_from(conn: Connection, log_id: int, index: int) -> bool:
    row = conn.execute(select(_N.c.idx).where(_N.c.log_id == log_id, _N.c.idx >= index).limit(1)).first()
    return row is not None

def read_nodes(conn: Connection, log_id: int, indexes: Sequence[int]) -> dict[int, bytes]:
    """Stored hashes by index. One statement text whatever the count (`= ANY` on PostgreSQL, a JSON
    array on SQLite), so it is prepared once and reused instead of compiled per length."""
    if not indexes:
        return {}
    if conn.dialect.name == "sqlite":
        statement = "SELECT idx, hash FROM nodes WHERE log_id = ? AND idx IN (SELECT value FROM json_each(?))"
        rows = conn.exec_driver_sql(statement, (log_id, json.dumps(list(indexes)))).fetchall()
    else:
        statement = "SELECT idx, hash FROM nodes WHERE log_id = %s AND idx = ANY(%s)"
        rows = conn.exec_driver_sql(statement, (log_id, list(indexes))).fetchall()
    return {int(idx): bytes(digest) for idx, digest in rows}
