"""What the self-audit reads besides the log itself (`compliance.audit`): the anchor to check and the
newest `audit` entry of a log. Its lease is a row of the leases table, taken
with the queries of `ledger.repository.anchors`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.repository.base import Record, tables

__all__ = ["last_anchored_upto", "latest_audit"]

_E = tables.E
_R = tables.R
_RL = tables.RL


def latest_audit(conn: Connection, log_id: int) -> Record | None:
    """The newest `audit` entry of a log (seq and header bytes), if it has one.

    The primary key is walked backwards from the end of the log: audits are appended every run, so
    the newest lies near the end once the log has one.
    """
    query = (
        select(_E.c.seq, _E.c.header)
        .where(_E.c.log_id == log_id, _E.c.kind == "audit")
        .order_by(_E.c.seq.desc())
        .limit(1)
    )
    return conn.execute(query).first()


def last_anchored_upto(conn: Connection, log_id: int, size: int) -> Record | None:
    """The confirmed anchor of this log's newest anchored checkpoint of at most `size` entries."""
    query = (
        select(_RL)
        .join(_R, _R.c.id == _RL.c.round_id)
        .where(_RL.c.log_id == log_id, _RL.c.size <= size, _R.c.state == "confirmed", _RL.c.receipt.is_not(None))
        .order_by(_RL.c.size.desc(), _RL.c.round_id.desc())
        .limit(1)
    )
    return conn.execute(query).first()
