"""Every query of the engine (STYLE §12). The entries repository has no update and no delete."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from ledger.db import is_sqlite
from ledger.models import CaseHead, Checkpoint, DataKey, Entry, Log, Node, Subject, Tenant

__all__ = [
    "all_case_heads",
    "bump_key_epoch",
    "case_entries",
    "case_heads",
    "count_entries",
    "current_data_key",
    "delete_subject",
    "destroy_data_keys",
    "entries_page",
    "find_subject",
    "find_subjects",
    "get_data_key",
    "get_log",
    "get_log_for_update",
    "get_tenant",
    "has_nodes_from",
    "insert_checkpoint",
    "insert_data_key",
    "insert_entries",
    "insert_log",
    "insert_nodes",
    "insert_subject",
    "insert_tenant",
    "iter_entries",
    "iter_nodes",
    "key_epoch",
    "list_checkpoints",
    "read_entry",
    "read_nodes",
    "set_case_heads",
    "set_log_head",
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


def get_log_for_update(conn: Connection, log_id: int) -> Record:
    """The log head, locked until the transaction ends: the per-log sequencing lock.

    On SQLite the write transaction began with BEGIN IMMEDIATE, which already holds the database
    write lock; PostgreSQL takes a row lock.
    """
    query = select(_L.c.size, _L.c.head_hash, _L.c.head_time, _L.c.peaks, _L.c.origin, _L.c.key_epoch).where(
        _L.c.id == log_id
    )
    if not is_sqlite(conn):
        query = query.with_for_update()
    return conn.execute(query).one()


def key_epoch(conn: Connection, log_id: int) -> int:
    return int(conn.execute(select(_L.c.key_epoch).where(_L.c.id == log_id)).scalar_one())


def bump_key_epoch(conn: Connection, log_id: int) -> None:
    """Tell every process that subject mappings or data keys of this log changed."""
    conn.execute(update(_L).where(_L.c.id == log_id).values(key_epoch=_L.c.key_epoch + 1))


def set_log_head(conn: Connection, log_id: int, size: int, head_hash: str, head_time: str,
                 peaks: bytes) -> None:
    conn.execute(
        update(_L).where(_L.c.id == log_id).values(size=size, head_hash=head_hash, head_time=head_time,
                                                   peaks=peaks)
    )


def case_heads(conn: Connection, log_id: int, cases: Iterable[str]) -> dict[str, str]:
    """Hex entry hash of the newest entry of each case (absent for a case with no entries)."""
    wanted = list(cases)
    if not wanted:
        return {}
    rows = conn.execute(select(_H.c.case_id, _H.c.head_hash).where(_H.c.log_id == log_id, _H.c.case_id.in_(wanted)))
    return {str(row.case_id): str(row.head_hash) for row in rows}


def all_case_heads(conn: Connection, log_id: int) -> dict[str, str]:
    rows = conn.execute(select(_H.c.case_id, _H.c.head_hash).where(_H.c.log_id == log_id))
    return {str(row.case_id): str(row.head_hash) for row in rows}


def set_case_heads(conn: Connection, log_id: int, heads: dict[str, str], known: Iterable[str]) -> None:
    """Record the newest entry of each case; `known` are the cases that already had a row."""
    known = set(known)
    fresh = [(log_id, case, digest) for case, digest in heads.items() if case not in known]
    if fresh:
        _insert_many(conn, "case_heads", ("log_id", "case_id", "head_hash"), fresh)
    changed = [(digest, log_id, case) for case, digest in heads.items() if case in known]
    if changed:
        marker = _marker(conn)
        conn.exec_driver_sql(
            f"UPDATE case_heads SET head_hash = {marker} WHERE log_id = {marker} AND case_id = {marker}", changed
        )


def _marker(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


_ENTRY_COLUMNS = ("log_id", "seq", "entry_id", "kind", "case_id", "subject", "key_id", "header", "entry_hash",
                  "envelope")


def _insert_many(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """executemany straight on the driver: the append hot path skips per-row statement processing."""
    marker = _marker(conn)
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    conn.exec_driver_sql(statement, list(rows))


def insert_entries(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in the order of `_ENTRY_COLUMNS`."""
    if rows:
        _insert_many(conn, "entries", _ENTRY_COLUMNS, rows)


def insert_nodes(conn: Connection, rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Rows of (log_id, idx, hash)."""
    if rows:
        _insert_many(conn, "nodes", ("log_id", "idx", "hash"), rows)


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


def _keyset(conn: Connection, sql: str, log_id: int, start: int, stop: int | None,
            chunk: int) -> Iterator[tuple[Any, ...]]:
    """Stream rows whose first column is the key, from `start` to before `stop`, a page at a time."""
    marker = _marker(conn)
    statement = sql.format(m=marker) + f" LIMIT {int(chunk)}"
    stop = 2**62 if stop is None else stop
    while start < stop:
        rows = conn.exec_driver_sql(statement, (log_id, start, stop)).fetchall()
        yield from rows
        if len(rows) < chunk:
            return
        start = rows[-1][0] + 1


def iter_entries(conn: Connection, log_id: int, start: int = 0, stop: int | None = None,
                 chunk: int = 5000) -> Iterator[tuple[Any, ...]]:
    """(seq, entry_id, kind, case_id, subject, key_id, header, entry_hash, envelope) in seq order."""
    return _keyset(conn, "SELECT seq, entry_id, kind, case_id, subject, key_id, header, entry_hash, envelope "
                         "FROM entries WHERE log_id = {m} AND seq >= {m} AND seq < {m} ORDER BY seq",
                   log_id, start, stop, chunk)


def iter_nodes(conn: Connection, log_id: int, start: int = 0, chunk: int = 20000) -> Iterator[tuple[Any, ...]]:
    """(idx, hash) of the stored tree in storage order."""
    return _keyset(conn, "SELECT idx, hash FROM nodes WHERE log_id = {m} AND idx >= {m} AND idx < {m} ORDER BY idx",
                   log_id, start, None, chunk)


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
