"""Compliance records (DESIGN §10): retention policy versions, legal holds, erasure requests, exports.

Each record is written in the transaction of the entry that puts it on record (`NewEntry.with_entry`),
so the table and the log never disagree; the rules live in `compliance/`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from ledger.repository.base import Record, tables

__all__ = ["active_holds", "delete_subject_handle", "due_requests", "exports_in", "get_export", "get_hold",
           "get_request", "holds_of_log", "insert_export", "insert_hold", "insert_policy", "insert_request",
           "latest_policy", "policies_of_log", "release_hold", "requests_of_log", "set_certificate",
           "subjects_with_keys", "update_export", "update_request"]

_RP = tables.RP
_LH = tables.LH
_ER = tables.ER
_X = tables.X
_S = tables.S
_K = tables.K


# ------------------------------------------------------------------ retention policies

def latest_policy(conn: Connection, log_id: int) -> Record | None:
    return conn.execute(select(_RP).where(_RP.c.log_id == log_id).order_by(_RP.c.version.desc()).limit(1)).first()


def policies_of_log(conn: Connection, log_id: int) -> list[Record]:
    """Every version, oldest first."""
    return list(conn.execute(select(_RP).where(_RP.c.log_id == log_id).order_by(_RP.c.version)).all())


def insert_policy(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(_RP).values(**values))


# ------------------------------------------------------------------ legal holds

def insert_hold(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(_LH).values(**values))


def get_hold(conn: Connection, log_id: int, hold_id: str) -> Record | None:
    return conn.execute(select(_LH).where(_LH.c.hold_id == hold_id, _LH.c.log_id == log_id)).first()


def release_hold(conn: Connection, log_id: int, hold_id: str, values: dict[str, Any]) -> bool:
    """Release a hold that is still in place; False if it was released already (or is not this log's)."""
    done = conn.execute(update(_LH).where(_LH.c.hold_id == hold_id, _LH.c.log_id == log_id,
                                          _LH.c.released_at.is_(None)).values(**values))
    return done.rowcount == 1


def holds_of_log(conn: Connection, log_id: int, *, active: bool | None = None) -> list[Record]:
    query = select(_LH).where(_LH.c.log_id == log_id)
    if active is not None:
        query = query.where(_LH.c.released_at.is_(None) if active else _LH.c.released_at.is_not(None))
    return list(conn.execute(query.order_by(_LH.c.place_seq)).all())


def active_holds(conn: Connection, log_id: int, *, cases: set[str], subject: str | None) -> list[Record]:
    """The holds in place that cover `subject` or any of `cases`."""
    targets: list[ColumnElement[bool]] = []
    if cases:
        targets.append(_LH.c.case_id.in_(sorted(cases)))
    if subject is not None:
        targets.append(_LH.c.subject == subject)
    if not targets:
        return []
    query = select(_LH).where(_LH.c.log_id == log_id, _LH.c.released_at.is_(None), or_(*targets))
    return list(conn.execute(query.order_by(_LH.c.place_seq)).all())


# ------------------------------------------------------------------ a subject's entries and keys

def subjects_with_keys(conn: Connection, tenant_id: int) -> list[str]:
    """Subject handles that still have a data key not destroyed."""
    query = (select(_K.c.subject).where(_K.c.tenant_id == tenant_id, _K.c.subject != "", _K.c.wrapped.is_not(None))
             .distinct().order_by(_K.c.subject))
    return [str(row.subject) for row in conn.execute(query)]


def delete_subject_handle(conn: Connection, tenant_id: int, handle: str) -> bool:
    """Delete the mapping that leads to `handle` (the only link to the person); False if there was none."""
    return conn.execute(delete(_S).where(_S.c.tenant_id == tenant_id, _S.c.handle == handle)).rowcount == 1


# ------------------------------------------------------------------ erasure requests

def insert_request(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(_ER).values(**values))


def get_request(conn: Connection, log_id: int, request_id: str) -> Record | None:
    return conn.execute(select(_ER).where(_ER.c.request_id == request_id, _ER.c.log_id == log_id)).first()


def requests_of_log(conn: Connection, log_id: int) -> list[Record]:
    return list(conn.execute(select(_ER).where(_ER.c.log_id == log_id).order_by(_ER.c.decision_seq)).all())


def due_requests(conn: Connection, log_id: int) -> list[Record]:
    """Deferred requests, oldest first (whether each is due is the rules' to say)."""
    query = select(_ER).where(_ER.c.log_id == log_id, _ER.c.status == "deferred").order_by(_ER.c.decision_seq)
    return list(conn.execute(query).all())


def set_certificate(conn: Connection, request_id: str, certificate: str) -> None:
    conn.execute(update(_ER).where(_ER.c.request_id == request_id, _ER.c.certificate.is_(None))
                 .values(certificate=certificate))


def update_request(conn: Connection, request_id: str, status: str, values: dict[str, Any]) -> bool:
    """Move a request on from `status`; False if another process moved it first."""
    done = conn.execute(update(_ER).where(_ER.c.request_id == request_id, _ER.c.status == status).values(**values))
    return done.rowcount == 1


# ------------------------------------------------------------------ exports

def insert_export(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(_X).values(**values))


def get_export(conn: Connection, log_id: int, export_id: str) -> Record | None:
    return conn.execute(select(_X).where(_X.c.export_id == export_id, _X.c.log_id == log_id)).first()


def exports_in(conn: Connection, log_id: int, status: str) -> list[str]:
    query = select(_X.c.export_id).where(_X.c.log_id == log_id, _X.c.status == status).order_by(_X.c.export_seq)
    return [str(row.export_id) for row in conn.execute(query)]


def update_export(conn: Connection, export_id: str, status: str, values: dict[str, Any]) -> bool:
    done = conn.execute(update(_X).where(_X.c.export_id == export_id, _X.c.status == status).values(**values))
    return done.rowcount == 1
