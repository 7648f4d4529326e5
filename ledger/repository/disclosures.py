"""What the accounting of disclosures and the access report read (`compliance.disclosures`).

The `share` and `access` entries of a seq range are streamed a page at a time; everything else is
asked of one page's worth of ids at once, in batches, so memory is bounded by the page whatever the
size of the log or of the case or subject. A case's entries are found through ``ix_entries_case``,
a subject's through ``ix_entries_subject``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from ledger.repository.base import Record, keyset_pages, tables

__all__ = ["documents_in_scope", "first_seq_of", "header_time", "seqs_in_scope", "share_and_access_pages",
           "shares_by_id", "subject_first_seq_in_cases"]

_E = tables.E
_D = tables.D
_SH = tables.SH
#: ids per IN list: well below every driver's limit on bound parameters
_BATCH = 500

_SHARE_AND_ACCESS = ("SELECT seq, kind, header FROM entries WHERE log_id = {m} AND seq >= {m} AND seq < {m} "
                     "AND kind IN ('share', 'access') ORDER BY seq")


def _batches(values: Collection[Any]) -> Iterator[list[Any]]:
    ordered = sorted(values)
    for i in range(0, len(ordered), _BATCH):
        yield ordered[i:i + _BATCH]


def _in_scope(case: str | None, subject: str | None) -> Any:
    if (case is None) == (subject is None):
        raise ValueError("exactly one of case and subject")
    return _E.c.case_id == case if case is not None else _E.c.subject == subject


def share_and_access_pages(conn: Connection, log_id: int, start: int, stop: int,
                           chunk: int = 500) -> Iterator[list[tuple[Any, ...]]]:
    """Non-empty pages of (seq, kind, header bytes) of the `share` and `access` entries in [start, stop)."""
    return keyset_pages(conn, _SHARE_AND_ACCESS, log_id, start, stop, chunk)


def first_seq_of(conn: Connection, log_id: int, *, case: str | None = None, subject: str | None = None) -> int | None:
    """The seq of the first entry of a case or of a subject handle (None if it has none)."""
    value = conn.execute(select(func.min(_E.c.seq)).where(_E.c.log_id == log_id, _in_scope(case, subject))).scalar()
    return None if value is None else int(value)


def header_time(conn: Connection, log_id: int, seq: int) -> str:
    """The `time` of entry `seq`, as its stored header says (the entry must exist)."""
    header = conn.execute(select(_E.c.header).where(_E.c.log_id == log_id, _E.c.seq == seq)).scalar_one()
    return str(json.loads(bytes(header))["time"])


def seqs_in_scope(conn: Connection, log_id: int, seqs: Collection[int], *, case: str | None = None,
                  subject: str | None = None) -> set[int]:
    """Those of `seqs` that are entries of the case or the subject handle."""
    found: set[int] = set()
    for batch in _batches(seqs):
        rows = conn.execute(select(_E.c.seq).where(_E.c.log_id == log_id, _E.c.seq.in_(batch),
                                                   _in_scope(case, subject)))
        found.update(int(row.seq) for row in rows)
    return found


def documents_in_scope(conn: Connection, log_id: int, document_ids: Collection[str], *, case: str | None = None,
                       subject: str | None = None) -> dict[str, Record]:
    """Those of `document_ids` whose `document` entry belongs to the case or the subject handle: their
    index rows (document_id, seq, case_id, size), read without decrypting anything."""
    found: dict[str, Record] = {}
    for batch in _batches(document_ids):
        query = (
            select(_D.c.document_id, _D.c.seq, _D.c.case_id, _D.c.size)
            .join(_E, and_(_E.c.log_id == _D.c.log_id, _E.c.seq == _D.c.seq))
            .where(_D.c.log_id == log_id, _D.c.document_id.in_(batch), _in_scope(case, subject))
        )
        found.update((str(row.document_id), row) for row in conn.execute(query))
    return found


def subject_first_seq_in_cases(conn: Connection, log_id: int, subject: str, cases: Collection[str]) -> dict[str, int]:
    """For each of `cases` holding an entry of the subject handle: the seq of the first such entry."""
    found: dict[str, int] = {}
    for batch in _batches(cases):
        query = (
            select(_E.c.case_id, func.min(_E.c.seq).label("first"))
            .where(_E.c.log_id == log_id, _E.c.subject == subject, _E.c.case_id.in_(batch))
            .group_by(_E.c.case_id)
        )
        found.update((str(row.case_id), int(row.first)) for row in conn.execute(query))
    return found


def shares_by_id(conn: Connection, log_id: int, share_ids: Collection[str]) -> dict[str, Record]:
    """The shares of this log among `share_ids`: recipient, purpose and who created them (never the
    token's hash)."""
    found: dict[str, Record] = {}
    for batch in _batches(share_ids):
        query = (
            select(_SH.c.share_id, _SH.c.document_id, _SH.c.recipient, _SH.c.purpose, _SH.c.created_by,
                   _SH.c.created_at)
            .where(_SH.c.log_id == log_id, _SH.c.share_id.in_(batch))
        )
        found.update((str(row.share_id), row) for row in conn.execute(query))
    return found
