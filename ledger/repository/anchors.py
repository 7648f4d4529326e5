"""Anchoring rounds, the logs each covers, and the lease that lets one process run them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ledger.db import is_sqlite
from ledger.repository.base import Record, tables

__all__ = ["OPEN_STATES", "acquire_lease", "anchor_entries_since", "first_anchored", "get_round", "grown_logs",
           "insert_round", "last_anchored", "lease_holder_of", "list_rounds", "next_round_id", "open_round",
           "release_lease", "round_logs", "rounds_of_log", "unrecorded_logs", "update_open_round",
           "update_round_log"]

_R = tables.R
_RL = tables.RL
_LS = tables.LS
_L = tables.L
_T = tables.T
_E = tables.E

OPEN_STATES = ("pending", "submitted")


def open_round(conn: Connection) -> Record | None:
    """The round that is pending or submitted, if any (at most one: a unique index says so)."""
    return conn.execute(select(_R).where(_R.c.open == 1)).first()


def get_round(conn: Connection, round_id: int) -> Record | None:
    return conn.execute(select(_R).where(_R.c.id == round_id)).first()


def next_round_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(_R.c.id), 0))).scalar_one()) + 1


def list_rounds(conn: Connection, limit: int) -> list[Record]:
    return list(conn.execute(select(_R).order_by(_R.c.id.desc()).limit(limit)).all())


def grown_logs(conn: Connection) -> list[Record]:
    """Every log with an entry other than an `anchor` entry beyond what a round (not failed) covers.

    Rows: log_id, tenant (name), origin, covered (the size last covered, 0 if never).
    """
    covered = (
        select(_RL.c.log_id, func.max(_RL.c.size).label("size"))
        .join(_R, _R.c.id == _RL.c.round_id)
        .where(_R.c.state != "failed")
        .group_by(_RL.c.log_id)
        .subquery()
    )
    since = func.coalesce(covered.c.size, 0)
    grew = exists().where(_E.c.log_id == _L.c.id, _E.c.seq >= since, _E.c.kind != "anchor")
    query = (
        select(_L.c.id.label("log_id"), _T.c.name.label("tenant"), _L.c.origin, since.label("covered"))
        .join(_T, _T.c.id == _L.c.tenant_id)
        .outerjoin(covered, covered.c.log_id == _L.c.id)
        .where(_L.c.size > since, grew)
        .order_by(_L.c.id)
    )
    return list(conn.execute(query).all())


def insert_round(conn: Connection, values: dict[str, Any], logs: Sequence[dict[str, Any]]) -> None:
    conn.execute(insert(_R).values(**values))
    conn.execute(insert(_RL), [dict(log, round_id=values["id"]) for log in logs])


def update_open_round(conn: Connection, round_id: int, **values: Any) -> bool:
    """Change a round that is still open (pending or submitted); False if it is closed already."""
    result = conn.execute(update(_R).where(_R.c.id == round_id, _R.c.open == 1).values(**values))
    return bool(result.rowcount)


def update_round_log(conn: Connection, round_id: int, log_id: int, **values: Any) -> None:
    conn.execute(update(_RL).where(_RL.c.round_id == round_id, _RL.c.log_id == log_id).values(**values))


def round_logs(conn: Connection, round_id: int) -> list[Record]:
    """The round's logs in leaf order, with each log's tenant name."""
    query = (
        select(_RL, _T.c.name.label("tenant"), _L.c.origin)
        .join(_L, _L.c.id == _RL.c.log_id)
        .join(_T, _T.c.id == _L.c.tenant_id)
        .where(_RL.c.round_id == round_id)
        .order_by(_RL.c.leaf_index)
    )
    return list(conn.execute(query).all())


def unrecorded_logs(conn: Connection) -> list[Record]:
    """Logs of confirmed rounds whose `anchor` entry is not yet recorded, oldest round first."""
    query = (
        select(_RL, _T.c.name.label("tenant"), _R.c.tx_hash, _R.c.block, _R.c.chain_id, _R.c.contract)
        .join(_R, _R.c.id == _RL.c.round_id)
        .join(_L, _L.c.id == _RL.c.log_id)
        .join(_T, _T.c.id == _L.c.tenant_id)
        .where(_R.c.state == "confirmed", _RL.c.entry_seq.is_(None))
        .order_by(_RL.c.round_id, _RL.c.leaf_index)
    )
    return list(conn.execute(query).all())


def rounds_of_log(conn: Connection, log_id: int, limit: int) -> list[Record]:
    """The rounds covering a log, newest first, with the log's leaf in each."""
    query = (
        select(_R, _RL.c.leaf_index, _RL.c.size.label("log_size"), _RL.c.root.label("log_root"), _RL.c.entry_seq)
        .join(_RL, _RL.c.round_id == _R.c.id)
        .where(_RL.c.log_id == log_id)
        .order_by(_R.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query).all())


def first_anchored(conn: Connection, log_id: int, size: int) -> Record | None:
    """The confirmed anchor of the smallest checkpoint of this log at or after `size`."""
    query = (
        select(_RL)
        .join(_R, _R.c.id == _RL.c.round_id)
        .where(_RL.c.log_id == log_id, _RL.c.size >= size, _R.c.state == "confirmed", _RL.c.receipt.is_not(None))
        .order_by(_RL.c.size, _RL.c.round_id)
        .limit(1)
    )
    return conn.execute(query).first()


def last_anchored(conn: Connection, log_id: int) -> Record | None:
    """The confirmed anchor of this log's newest anchored checkpoint."""
    query = (
        select(_RL)
        .join(_R, _R.c.id == _RL.c.round_id)
        .where(_RL.c.log_id == log_id, _R.c.state == "confirmed", _RL.c.receipt.is_not(None))
        .order_by(_RL.c.size.desc(), _RL.c.round_id.desc())
        .limit(1)
    )
    return conn.execute(query).first()


def anchor_entries_since(conn: Connection, log_id: int, seq: int) -> list[Record]:
    """The `anchor` entries of a log from `seq` on: seq and header bytes."""
    query = (
        select(_E.c.seq, _E.c.header)
        .where(_E.c.log_id == log_id, _E.c.seq >= seq, _E.c.kind == "anchor")
        .order_by(_E.c.seq)
    )
    return list(conn.execute(query).all())


def acquire_lease(conn: Connection, name: str, holder: str, now: float, ttl: float, *, dead: str | None = None
                  ) -> bool:
    """Take or renew the lease `name` for `holder` until now + ttl; False while another holds it
    (unless that other is `dead`: a holder known to have died)."""
    renewed = conn.execute(
        update(_LS)
        .where(_LS.c.name == name, or_(_LS.c.holder == holder, _LS.c.holder == (dead or holder),
                                       _LS.c.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
    )
    if renewed.rowcount:
        return True
    dialect = sqlite if is_sqlite(conn) else postgresql
    taken = conn.execute(dialect.insert(_LS).values(name=name, holder=holder, expires_at=now + ttl)
                         .on_conflict_do_nothing(index_elements=[_LS.c.name]).returning(_LS.c.name))
    return taken.first() is not None


def lease_holder_of(conn: Connection, name: str) -> str | None:
    """Who holds (or last held) the lease `name`, if anyone took it."""
    holder = conn.execute(select(_LS.c.holder).where(_LS.c.name == name)).scalar_one_or_none()
    return None if holder is None else str(holder)


def release_lease(conn: Connection, name: str, holder: str) -> None:
    conn.execute(update(_LS).where(and_(_LS.c.name == name, _LS.c.holder == holder)).values(expires_at=0.0))
