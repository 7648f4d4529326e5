"""Entries, case heads and the log head: the sequencing lock and the one write of an append.

There is no update and no delete of entries here (the database refuses them too, DESIGN §5).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoResultFound

from ledger.db import is_sqlite
from ledger.repository.base import Record, database_error, insert_many, keyset_pages, psycopg_of, tables

_E = tables.E
_H = tables.H

__all__ = ["Locked", "LogHead", "all_case_heads", "case_entries", "case_staff_headers", "count_entries", "entries_page",
           "entry_pages", "lock_log", "read_entry", "subject_entries", "write_appended"]


def all_case_heads(conn: Connection, log_id: int) -> dict[str, str]:
    rows = conn.execute(select(_H.c.case_id, _H.c.head_hash).where(_H.c.log_id == log_id))
    return {str(row.case_id): str(row.head_hash) for row in rows}

_ENTRY_COLUMNS = ("log_id", "seq", "entry_id", "kind", "case_id", "subject", "key_id", "header", "entry_hash",
                  "envelope")

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

class Locked(NamedTuple):
    """What `lock_log` read once the log was locked."""

    head: LogHead
    #: hex entry hash of the newest entry of each asked-for case that has entries
    case_heads: dict[str, str]
    #: per asked-for staff case with entries: header bytes of its first and assignment entries
    staff: dict[str, list[bytes]]


def lock_log(conn: Connection, log_id: int, cases: Collection[str], staff_cases: Collection[str] = ()) -> Locked:
    """Lock the log head until the transaction ends (the per-log sequencing lock), then read it, the
    hex entry hash of the newest entry of each of `cases` (absent for a case with no entries) and,
    for `staff_cases`, what `case_staff_headers` reads.

    On SQLite the write transaction began with BEGIN IMMEDIATE, which already holds the database
    write lock. PostgreSQL takes a row lock; the rest is read after it is granted, in the same round
    trip, so it is what the lock protects.
    """
    wanted = list(cases)
    staff_wanted = sorted(staff_cases)
    if is_sqlite(conn):
        head = conn.exec_driver_sql(_LOCK_LOG.format(m="?"), (log_id,)).one()
        rows = conn.exec_driver_sql(_CASE_HEADS_SQLITE, (log_id, json.dumps(wanted))).all() if wanted else []
        staff = case_staff_headers(conn, log_id, staff_wanted)
        return Locked(LogHead(*head), {str(case): str(digest) for case, digest in rows}, staff)
    # Up to three statements in one simple-protocol query: one round trip, and the later statements
    # take their snapshot after the first was granted the lock. (psycopg's pipeline mode also gives
    # one round trip, but it polls while it waits, holding the GIL the server's event loop needs.)
    # Values are quoted by psycopg; the arrays of cases are planned for their actual length.
    statements = [sql.SQL(_LOCK_LOG.format(m="{}") + " FOR UPDATE").format(sql.Literal(log_id))]
    if wanted:
        statements.append(sql.SQL(_CASE_HEADS_PG).format(sql.Literal(log_id), sql.Literal(wanted)))
    if staff_wanted:
        statements.append(sql.SQL(_CASE_STAFF_PG.replace("%s", "{}")).format(
            sql.Literal(staff_wanted), sql.Literal(log_id), sql.Literal(log_id), sql.Literal(staff_wanted)))
    raw = psycopg_of(conn)
    try:
        with raw.cursor() as cursor:
            cursor.execute(sql.SQL("; ").join(statements))
            head = cursor.fetchone()
            rows = cursor.fetchall() if wanted and cursor.nextset() else []
            staff_rows = cursor.fetchall() if staff_wanted and cursor.nextset() else []
    except psycopg.Error as exc:
        raise database_error(_LOCK_LOG, exc) from exc
    if head is None:
        raise NoResultFound(f"no log {log_id}")
    return Locked(LogHead(*head), {str(case): str(digest) for case, digest in rows}, _staff_by_case(staff_rows))


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
            insert_many(conn, "entries", _ENTRY_COLUMNS, entries)
        if nodes:
            insert_many(conn, "nodes", ("log_id", "idx", "hash"), nodes)
        if heads:
            conn.exec_driver_sql(_UPSERT_CASE_HEAD.format(m="?"), heads)
        conn.exec_driver_sql(_SET_LOG_HEAD.format(m="?"), log_head)
        return
    # one statement (data-modifying CTEs), the rows as arrays: one round trip, one message per table
    columns = [list(column) for column in zip(*entries, strict=True)] if entries else [[] for _ in _ENTRY_COLUMNS]
    params = (log_id, *columns[1:], log_id, [node[1] for node in nodes], [node[2] for node in nodes],
              log_id, [head[1] for head in heads], [head[2] for head in heads], *log_head)
    try:
        with psycopg_of(conn).cursor() as cursor:
            cursor.execute(_APPEND_PG, params)
    except psycopg.Error as exc:
        raise database_error(_APPEND_PG, exc) from exc

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

_ENTRIES_IN_ORDER = ("SELECT seq, entry_id, kind, case_id, subject, key_id, header, entry_hash, envelope "
                     "FROM entries WHERE log_id = {m} AND seq >= {m} AND seq < {m} ORDER BY seq")

def entry_pages(conn: Connection, log_id: int, start: int = 0, stop: int | None = None,
                chunk: int = 1000) -> Iterator[list[tuple[Any, ...]]]:
    """Non-empty lists of entry rows (seq, entry_id, kind, case_id, subject, key_id, header, entry_hash,
    envelope; the last three bytes), in seq order.

    A page of 1000 holds about 1.5 MB of rows and costs no more per row than larger ones.
    """
    return keyset_pages(conn, _ENTRIES_IN_ORDER, log_id, start, stop, chunk)

def subject_entries(conn: Connection, log_id: int, subject: str, page: int = 1000) -> Iterator[Record]:
    """Every entry of a subject handle, in order, a page at a time (index ix_entries_subject)."""
    query = select(_E).where(_E.c.log_id == log_id, _E.c.subject == subject).order_by(_E.c.seq).limit(page)
    after = -1
    while True:
        rows = conn.execute(query.where(_E.c.seq > after)).all()
        yield from rows
        if len(rows) < page:
            return
        after = int(rows[-1].seq)


def count_entries(conn: Connection, log_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(_E).where(_E.c.log_id == log_id)).scalar_one())



# CROSS JOIN: SQLite keeps that join order (the few cases outside, entries by index inside)
_CASE_STAFF_SQLITE = (
    "SELECT e.case_id, e.seq, e.header FROM json_each(?) AS c CROSS JOIN entries AS e WHERE e.log_id = ? AND e.seq = "
    "(SELECT min(seq) FROM entries WHERE log_id = ? AND case_id = c.value) "
    "UNION ALL SELECT case_id, seq, header FROM entries WHERE log_id = ? AND kind = 'assignment' "
    "AND case_id IN (SELECT value FROM json_each(?))")
# LATERAL: each case's first entry by one index probe, whatever the planner's row estimates
_CASE_STAFF_PG = (
    "SELECT f.case_id, f.seq, f.header FROM unnest(%s::text[]) AS c(case_id) CROSS JOIN LATERAL "
    "(SELECT case_id, seq, header FROM entries WHERE log_id = %s AND case_id = c.case_id ORDER BY seq LIMIT 1) AS f "
    "UNION ALL SELECT case_id, seq, header FROM entries WHERE log_id = %s AND kind = 'assignment' "
    "AND case_id = ANY(%s::text[])")


def case_staff_headers(conn: Connection, log_id: int, cases: Collection[str]) -> dict[str, list[bytes]]:
    """Per case of `cases` that has entries: the header bytes of its first entry and of its
    `assignment` entries, in log order — what says who works on it (`ledger.cases`).

    Runs under the log lock on the append path, so it is one prepared statement of index lookups:
    each case's first entry by the case index (min(seq), then the primary key), its assignments by
    the partial index of assignment entries.
    """
    if not cases:
        return {}
    wanted = sorted(cases)
    if is_sqlite(conn):
        listed = json.dumps(wanted)
        rows = conn.exec_driver_sql(_CASE_STAFF_SQLITE, (listed, log_id, log_id, log_id, listed)).fetchall()
    else:
        rows = conn.exec_driver_sql(_CASE_STAFF_PG, (wanted, log_id, log_id, wanted)).fetchall()
    return _staff_by_case(rows)


def _staff_by_case(rows: Sequence[Any]) -> dict[str, list[bytes]]:
    """(case_id, seq, header) rows, a first entry possibly also an assignment, by case in seq order."""
    found: dict[str, list[bytes]] = {}
    for case, _, header in sorted({int(seq): (case, seq, header) for case, seq, header in rows}.values(),
                                  key=lambda row: int(row[1])):
        found.setdefault(str(case), []).append(bytes(header))
    return found
