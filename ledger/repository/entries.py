"""Every query of the engine (STYLE §12). The entries repository has no update and no delete."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from typing import Any, NamedTuple, cast

import psycopg
from psycopg import sql
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError, NoResultFound

from ledger.db import is_sqlite
from ledger.models import CaseHead, Checkpoint, DataKey, Entry, Log, Node, Subject, Tenant

__all__ = [
    "LogHead",
    "all_case_heads",
    "bump_key_epoch",
    "case_entries",
    "count_entries",
    "current_data_key",
    "delete_subject",
    "destroy_data_keys",
    "entries_page",
    "entry_pages",
    "find_subject",
    "find_subjects",
    "get_data_key",
    "get_log",
    "get_tenant",
    "has_nodes_from",
    "insert_checkpoint",
    "insert_data_key",
    "insert_log",
    "insert_subject",
    "insert_tenant",
    "iter_entries",
    "iter_nodes",
    "key_epoch",
    "list_checkpoints",
    "lock_log",
    "node_range",
    "read_entry",
    "read_nodes",
    "write_appended",
]

#: a result row of any shape (SQLAlchemy 2.1 types rows by their column tuple)
Record = Row[*tuple[Any, ...]]

_T = cast(Table, Tenant.__table__)
_L = cast(Table, Log.__table__)
_E = cast(Table, Entry.__table__)
_N = cast(Table, Node.__table__)
_H = cast(Table, CaseHead.__table__)
_C = cast(Table, Checkpoint.__table__)
_S = cast(Table, Subject.__table__)
_K = cast(Table, DataKey.__table__)


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


def all_case_heads(conn: Connection, log_id: int) -> dict[str, str]:
    rows = conn.execute(select(_H.c.case_id, _H.c.head_hash).where(_H.c.log_id == log_id))
    return {str(row.case_id): str(row.head_hash) for row in rows}


def _marker(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


_ENTRY_COLUMNS = ("log_id", "seq", "entry_id", "kind", "case_id", "subject", "key_id", "header", "entry_hash",
                  "envelope")


def _insert_statement(table: str, columns: Sequence[str], marker: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"


def _insert_many(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    conn.exec_driver_sql(_insert_statement(table, columns, _marker(conn)), list(rows))


class LogHead(NamedTuple):
    size: int
    head_hash: str
    head_time: str
    peaks: bytes
    origin: str
    key_epoch: int


_LOCK_LOG = "SELECT size, head_hash, head_time, peaks, origin, key_epoch FROM logs WHERE id = {m}"
_CASE_HEADS_SQLITE = ("SELECT case_id, head_hash FROM case_heads WHERE log_id = ? "
                      "AND case_id IN (SELECT value FROM json_each(?))")
_CASE_HEADS_PG = "SELECT case_id, head_hash FROM case_heads WHERE log_id = {} AND case_id = ANY({})"
_UPSERT_CASE_HEAD = ("INSERT INTO case_heads (log_id, case_id, head_hash) VALUES ({m}, {m}, {m}) "
                     "ON CONFLICT (log_id, case_id) DO UPDATE SET head_hash = excluded.head_hash")
# arrays travel in binary (%b): text arrays in text form would be escaped element by element
_APPEND_PG = (
    f"WITH e AS (INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) SELECT %s, * FROM unnest(%b::bigint[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[], %b::bytea[], %b::bytea[])), "
    "n AS (INSERT INTO nodes (log_id, idx, hash) SELECT %s, * FROM unnest(%b::bigint[], %b::bytea[])), "
    "h AS (INSERT INTO case_heads (log_id, case_id, head_hash) SELECT %s, * FROM unnest(%b::text[], %b::text[]) "
    "ON CONFLICT (log_id, case_id) DO UPDATE SET head_hash = excluded.head_hash) "
    "UPDATE logs SET size = %s, head_hash = %s, head_time = %s, peaks = %s WHERE id = %s"
)
_SET_LOG_HEAD = "UPDATE logs SET size = {m}, head_hash = {m}, head_time = {m}, peaks = {m} WHERE id = {m}"


def _psycopg(conn: Connection) -> Any:
    """The psycopg connection under `conn`, for statements SQLAlchemy has no form for."""
    return conn.connection.driver_connection


def _database_error(statement: str, exc: Exception) -> DBAPIError:
    """A psycopg error raised outside SQLAlchemy, as SQLAlchemy would have raised it."""
    return cast(DBAPIError, DBAPIError.instance(statement, None, exc, psycopg.Error))


def lock_log(conn: Connection, log_id: int, cases: Collection[str]) -> tuple[LogHead, dict[str, str]]:
    """Lock the log head until the transaction ends (the per-log sequencing lock), then read it and
    the hex entry hash of the newest entry of each of `cases` (absent for a case with no entries).

    On SQLite the write transaction began with BEGIN IMMEDIATE, which already holds the database
    write lock. PostgreSQL takes a row lock; the case heads are read after it is granted, in the
    same round trip, so they are the heads the lock protects.
    """
    wanted = list(cases)
    if is_sqlite(conn):
        head = conn.exec_driver_sql(_LOCK_LOG.format(m="?"), (log_id,)).one()
        rows = conn.exec_driver_sql(_CASE_HEADS_SQLITE, (log_id, json.dumps(wanted))).all() if wanted else []
        return LogHead(*head), {str(case): str(digest) for case, digest in rows}
    # Two statements in one simple-protocol query: one round trip, and the second statement takes
    # its snapshot after the first was granted the lock. (psycopg's pipeline mode also gives one
    # round trip, but it polls while it waits, holding the GIL the server's event loop needs.)
    # Values are quoted by psycopg; the array of cases is planned for its actual length.
    query = sql.SQL(_LOCK_LOG.format(m="{}") + " FOR UPDATE").format(sql.Literal(log_id))
    if wanted:
        query = sql.SQL("; ").join([query, sql.SQL(_CASE_HEADS_PG).format(
            sql.Literal(log_id), sql.Literal(wanted))])
    raw = _psycopg(conn)
    try:
        with raw.cursor() as cursor:
            cursor.execute(query)
            head = cursor.fetchone()
            rows = cursor.fetchall() if wanted and cursor.nextset() else []
    except psycopg.Error as exc:
        raise _database_error(_LOCK_LOG, exc) from exc
    if head is None:
        raise NoResultFound(f"no log {log_id}")
    return LogHead(*head), {str(case): str(digest) for case, digest in rows}


def write_appended(conn: Connection, log_id: int, head: LogHead, entries: Sequence[tuple[Any, ...]],
                   nodes: Sequence[tuple[int, int, bytes]], case_heads: dict[str, str]) -> None:
    """Write appended entries (rows in the order of `_ENTRY_COLUMNS`), their tree nodes (log_id, idx,
    hash), the new heads of their cases and the new log head, inside the caller's transaction.

    executemany goes straight to the driver: the hot path skips per-row statement processing. On
    PostgreSQL it is one statement: one round trip.
    """
    heads = [(log_id, case, digest) for case, digest in case_heads.items()]
    log_head = (head.size, head.head_hash, head.head_time, head.peaks, log_id)
    if is_sqlite(conn):
        if entries:
            _insert_many(conn, "entries", _ENTRY_COLUMNS, entries)
        if nodes:
            _insert_many(conn, "nodes", ("log_id", "idx", "hash"), nodes)
        if heads:
            conn.exec_driver_sql(_UPSERT_CASE_HEAD.format(m="?"), heads)
        conn.exec_driver_sql(_SET_LOG_HEAD.format(m="?"), log_head)
        return
    # one statement (data-modifying CTEs), the rows as arrays: one round trip, one message per table
    columns = [list(column) for column in zip(*entries, strict=True)] if entries else [[] for _ in _ENTRY_COLUMNS]
    params = (log_id, *columns[1:], log_id, [node[1] for node in nodes], [node[2] for node in nodes],
              log_id, [head[1] for head in heads], [head[2] for head in heads], *log_head)
    try:
        with _psycopg(conn).cursor() as cursor:
            cursor.execute(_APPEND_PG, params)
    except psycopg.Error as exc:
        raise _database_error(_APPEND_PG, exc) from exc


def read_entry(conn: Connection, log_id: int, seq: int) -> Record | None:
    return conn.execute(select(_E).where(_E.c.log_id == log_id, _E.c.seq == seq)).first()


def entries_page(conn: Connection, log_id: int, start: int, limit: int) -> list[Record]:
    return list(conn.execute(
        select(_E.c.seq, _E.c.entry_hash, _E.c.header).where(_E.c.log_id == log_id, _E.c.seq >= start)
        .order_by(_E.c.seq).limit(limit)
    ).all())


def case_entries(conn: Connection, log_id: int, case: str) -> list[Record]:
    return list(conn.execute(
        select(_E).where(_E.c.log_id == log_id, _E.c.case_id == case).order_by(_E.c.seq)
    ).all())


def _driver_cursor(conn: Connection) -> Any:
    """A cursor of the driver's own connection, inside the transaction (and snapshot) of `conn`.

    Bulk reads skip SQLAlchemy's per-row result processing; on PostgreSQL the cursor reads binary
    results, so `bytea` arrives as bytes instead of hex text to decode.
    """
    driver = conn.connection.driver_connection
    if is_sqlite(conn):
        return driver.cursor()  # type: ignore[union-attr]
    return driver.cursor(binary=True)  # type: ignore[union-attr]


def _keyset_pages(conn: Connection, sql: str, log_id: int, start: int, stop: int | None,
                  chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """Stream rows whose first column is the key, from `start` to before `stop`, a page at a time.

    Each page is one query that seeks the key index: no cursor stays open between pages, so memory
    and server state are bounded by `chunk` whatever the range.
    """
    marker = _marker(conn)
    statement = sql.format(m=marker) + f" LIMIT {int(chunk)}"
    stop = 2**62 if stop is None else stop
    cursor = _driver_cursor(conn)
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


_ENTRIES_IN_ORDER = ("SELECT seq, entry_id, kind, case_id, subject, key_id, header, entry_hash, envelope "
                     "FROM entries WHERE log_id = {m} AND seq >= {m} AND seq < {m} ORDER BY seq")
_NODES_IN_ORDER = "SELECT idx, hash FROM nodes WHERE log_id = {m} AND idx >= {m} AND idx < {m} ORDER BY idx"


def entry_pages(conn: Connection, log_id: int, start: int = 0, stop: int | None = None,
                chunk: int = 1000) -> Iterator[list[tuple[Any, ...]]]:
    """Non-empty lists of entry rows, as `iter_entries` gives them, in seq order.

    A page of 1000 holds about 1.5 MB of rows and costs no more per row than larger ones.
    """
    return _keyset_pages(conn, _ENTRIES_IN_ORDER, log_id, start, stop, chunk)


def iter_entries(conn: Connection, log_id: int, start: int = 0, stop: int | None = None,
                 chunk: int = 5000) -> Iterator[tuple[Any, ...]]:
    """(seq, entry_id, kind, case_id, subject, key_id, header, entry_hash, envelope) in seq order;
    `header`, `entry_hash` and `envelope` are bytes."""
    for rows in entry_pages(conn, log_id, start, stop, chunk):
        yield from rows


def node_range(conn: Connection, log_id: int, start: int, stop: int) -> list[tuple[Any, ...]]:
    """(idx, hash) of the stored nodes with `start <= idx < stop`, in storage order, in one query."""
    cursor = _driver_cursor(conn)
    try:
        cursor.execute(_NODES_IN_ORDER.format(m=_marker(conn)), (log_id, start, stop))
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    finally:
        cursor.close()
    return rows


def iter_nodes(conn: Connection, log_id: int, start: int = 0, chunk: int = 20000) -> Iterator[tuple[Any, ...]]:
    """(idx, hash) of the stored tree in storage order."""
    for rows in _keyset_pages(conn, _NODES_IN_ORDER, log_id, start, None, chunk):
        yield from rows


def count_entries(conn: Connection, log_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(_E).where(_E.c.log_id == log_id)).scalar_one())


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


def insert_checkpoint(conn: Connection, log_id: int, size: int, root: bytes, note: str,
                      created_at: str) -> None:
    exists = conn.execute(select(_C.c.size).where(_C.c.log_id == log_id, _C.c.size == size)).first()
    if exists is None:
        conn.execute(insert(_C).values(log_id=log_id, size=size, root=root, note=note, created_at=created_at))


def list_checkpoints(conn: Connection, log_id: int) -> list[Record]:
    return list(conn.execute(select(_C).where(_C.c.log_id == log_id).order_by(_C.c.size)).all())


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
