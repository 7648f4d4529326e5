"""What every query module shares (STYLE §12: every query lives in `ledger/repository/`).

One module of queries per table group: tenants and logs, entries (with the case heads and the
sequencing lock), tree nodes, checkpoints, subjects, data keys, anchoring rounds and leases, documents
and shares, compliance records. The entries queries have no
update and no delete.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import Table
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError

from ledger.db import is_sqlite
from ledger.models import (
    AnchorRound,
    AnchorRoundLog,
    CaseHead,
    Checkpoint,
    DataKey,
    Document,
    Entry,
    ErasureRequest,
    Export,
    Lease,
    LegalHold,
    Log,
    Node,
    RetentionPolicy,
    Share,
    Subject,
    Tenant,
)

__all__ = ["Record", "database_error", "driver_cursor", "insert_many", "keyset_pages", "placeholder", "psycopg_of",
           "tables"]

Record = Row[*tuple[Any, ...]]


class tables:
    T = cast(Table, Tenant.__table__)
    L = cast(Table, Log.__table__)
    E = cast(Table, Entry.__table__)
    N = cast(Table, Node.__table__)
    H = cast(Table, CaseHead.__table__)
    C = cast(Table, Checkpoint.__table__)
    S = cast(Table, Subject.__table__)
    K = cast(Table, DataKey.__table__)
    R = cast(Table, AnchorRound.__table__)
    RL = cast(Table, AnchorRoundLog.__table__)
    LS = cast(Table, Lease.__table__)
    D = cast(Table, Document.__table__)
    SH = cast(Table, Share.__table__)
    RP = cast(Table, RetentionPolicy.__table__)
    LH = cast(Table, LegalHold.__table__)
    ER = cast(Table, ErasureRequest.__table__)
    X = cast(Table, Export.__table__)


def placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"

def _insert_statement(table: str, columns: Sequence[str], marker: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"

def insert_many(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    conn.exec_driver_sql(_insert_statement(table, columns, placeholder(conn)), list(rows))

def psycopg_of(conn: Connection) -> Any:
    """The psycopg connection under `conn`, for statements SQLAlchemy has no form for."""
    return conn.connection.driver_connection

def database_error(statement: str, exc: Exception) -> DBAPIError:
    """A psycopg error raised outside SQLAlchemy, as SQLAlchemy would have raised it."""
    return cast(DBAPIError, DBAPIError.instance(statement, None, exc, psycopg.Error))

def driver_cursor(conn: Connection) -> Any:
    """A cursor of the driver's own connection, inside the transaction (and snapshot) of `conn`.

    Bulk reads skip SQLAlchemy's per-row result processing; on PostgreSQL the cursor reads binary
    results, so `bytea` arrives as bytes instead of hex text to decode.
    """
    driver = conn.connection.driver_connection
    if is_sqlite(conn):
        return driver.cursor()  # type: ignore[union-attr]
    return driver.cursor(binary=True)  # type: ignore[union-attr]

def keyset_pages(conn: Connection, sql: str, log_id: int, start: int, stop: int | None,
                  chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """Stream rows whose first column is the key, from `start` to before `stop`, a page at a time.

    Each page is one query that seeks the key index: no cursor stays open between pages, so memory
    and server state are bounded by `chunk` whatever the range.
    """
    statement = sql.format(m=placeholder(conn)) + f" LIMIT {int(chunk)}"
    stop = 2**62 if stop is None else stop
    cursor = driver_cursor(conn)
    try:
        while start < stop:
            cursor.execute(statement, (log_id, start, stop))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            if rows:
                yield rows
            if len(rows) < chunk:
                return
            start = rows[-1][0] + 1
    finally:
        cursor.close()
