"""Accounting of disclosures (HIPAA §164.528) and the access report (§164.312(b)) for a case or a subject.

The log is the source of truth: every row of a report is an entry, and carries its seq so an examiner
can check it against the log (a receipt or a bundle proves the entry). Disclosures are the `share`
entries of the scope's documents (a share created, a share revoked) and the `access` entries the
share link writes when it is used (each download, each receipt fetched) — one row per entry, so the
accounting lists every download, not a count. Internal accesses are the `access` entries that
`compliance.access` and `compliance.documents` write before any content is returned, when they cover
an entry of the scope: who (the actor), what (the case, the document, the entries), when (the entry's
time) and for what purpose (as the reader stated it).

Nothing is decrypted. A disclosed document is described by what the clear records hold — its id, the
seq of its `document` entry, its case and its size — not by its title, file name or media type, which
are personal data kept in its envelope (DESIGN §8). `compliance.access` appends an `access` entry
before any content leaves; a report that decrypted titles would have to log such an entry for each
document, so asking for the accounting would change the very trail it accounts for, and the report
would become content that only readers with the content permission may see. An examiner who needs a
document's name asks for its info (`compliance.documents`), which logs that read as any other.

A subject is named by its outside reference and found by its handle, without creating a mapping. A
reference with no mapping is `NotFound`, not an empty report: an empty accounting states that nothing
was disclosed, while a missing mapping means either that nothing was ever logged for that reference or
that the subject was erased (the mapping is deleted), and then the log still holds disclosures that
can no longer be linked to the person. The same holds for a case with no entry in the tenant's log
(another tenant's case included): `NotFound`, as the case timeline answers.

Memory is bounded by a page of entries: the `share` and `access` entries of the period are streamed in
seq order, and what a page refers to (documents, entries, cases, shares) is looked up for that page
only. Entries are in time order within a log (DESIGN §2), so the period is a seq range, found by
bisection, and rows come out sorted by time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from ledger.connections import snapshot
from ledger.errors import InvalidInput, NotFound
from ledger.repository import disclosures as repo
from ledger.repository.tenants import get_log
from ledger.service import Ledger
from ledger.shares import SHARE_ACTOR
from verification.entry import CASE_RE, format_time

__all__ = ["DEFAULT_YEARS", "AccessRow", "DisclosedDocument", "DisclosureReport", "DisclosureRow", "Disclosures"]

#: the default period: the six years before the report (HIPAA §164.528(a)(1), §164.316(b)(2))
DEFAULT_YEARS = 6
#: what a share's `action` becomes in the accounting
_SHARE_EVENTS = {"create": "shared", "revoke": "revoked"}
#: what a share link's `access` entry records
_LINK_EVENTS = {"download": "downloaded", "receipt": "receipt"}


@dataclass(frozen=True)
class DisclosedDocument:
    """A document as its clear records describe it (nothing decrypted)."""

    document_id: str
    #: seq of its `document` entry
    seq: int
    case: str | None
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.document_id, "seq": self.seq, "case": self.case, "size": self.size}


@dataclass(frozen=True)
class DisclosureRow:
    """One disclosure event, recorded by entry `seq`: a share `shared` or `revoked`, a `downloaded`
    through it, or its document `receipt` fetched through it."""

    seq: int
    time: str
    event: str
    actor: str
    share: str
    #: the pseudonymous recipient id, as recorded when the share was created
    recipient: str | None
    purpose: str | None
    document: DisclosedDocument
    #: which download of the share this was (1 for the first), for `downloaded`
    download: int | None = None
    #: for `shared`: until when, and how many times, the link may be used
    expires_at: str | None = None
    max_downloads: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "event": self.event, "actor": self.actor, "share": self.share,
                "recipient": self.recipient, "purpose": self.purpose, "document": self.document.to_json(),
                "download": self.download, "expires_at": self.expires_at, "max_downloads": self.max_downloads}


@dataclass(frozen=True)
class AccessRow:
    """An internal access recorded by the `access` entry `seq`, covering entries of the scope."""

    seq: int
    time: str
    actor: str
    purpose: str | None
    #: what was read, as the entry says: "entry", "case" or "document"
    scope: str | None
    case: str | None
    document: str | None
    #: for a document: "info" or "receipt"
    read: str | None
    #: the scope's entries among those the access entry names (it names at most 200)
    entries: tuple[int, ...]
    #: how many entries the access read in all
    count: int | None

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "actor": self.actor, "purpose": self.purpose,
                "scope": self.scope, "case": self.case, "document": self.document, "read": self.read,
                "entries": list(self.entries), "count": self.count}


@dataclass(frozen=True)
class DisclosureReport:
    """The accounting of disclosures and the access report of one case or subject over [since, until)."""

    tenant: str
    log: str
    case: str | None
    #: the subject's random handle (never its outside reference)
    subject: str | None
    since: str
    until: str
    generated_at: str
    #: the log's size when the report was made: it covers entries [0, log_size) in the period
    log_size: int
    disclosures: tuple[DisclosureRow, ...]
    accesses: tuple[AccessRow, ...]

    def to_json(self) -> dict[str, Any]:
        scope = {"case": self.case} if self.case is not None else {"subject": self.subject}
        return {"tenant": self.tenant, "log": self.log, "scope": scope,
                "period": {"since": self.since, "until": self.until}, "generated_at": self.generated_at,
                "log_size": self.log_size, "disclosures": [row.to_json() for row in self.disclosures],
                "accesses": [row.to_json() for row in self.accesses]}


def _moment(value: datetime | str, name: str) -> str:
    """A period bound as a header time (RFC 3339 UTC, microseconds): comparable as text."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{name} must be an RFC 3339 date and time") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{name} must be an RFC 3339 date and time with its offset (e.g. Z)")
    return format_time(value)


def _years_before(moment: str, years: int) -> str:
    """The same instant `years` calendar years earlier (29 February becomes 28 February)."""
    then = datetime.fromisoformat(moment).astimezone(UTC)
    try:
        earlier = then.replace(year=then.year - years)
    except ValueError:
        earlier = then.replace(year=then.year - years, day=28)
    return format_time(earlier)


def _first_at(conn: Connection, log_id: int, low: int, high: int, moment: str) -> int:
    """The first seq in [low, high) whose time is at or after `moment`, else `high` (times never
    decrease along a log, so this is a bisection: O(log n) point reads)."""
    while low < high:
        middle = (low + high) // 2
        if repo.header_time(conn, log_id, middle) < moment:
            low = middle + 1
        else:
            high = middle
    return low


def _seqs(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_link_access(header: dict[str, Any]) -> bool:
    """An `access` entry a share link wrote (a download or a receipt), not a staff member's read."""
    return bool(header["actor"] == SHARE_ACTOR and header["meta"].get("action") in _LINK_EVENTS)


class _Scan:
    """The rows of one report, gathered page by page."""

    def __init__(self, conn: Connection, log_id: int, case: str | None, subject: str | None) -> None:
        self._conn = conn
        self._log_id = log_id
        self._case = case
        self._subject = subject
        self.disclosures: list[DisclosureRow] = []
        self.accesses: list[AccessRow] = []

    def page(self, rows: Iterable[tuple[Any, ...]]) -> None:
        entries = [(int(seq), str(kind), json.loads(bytes(header))) for seq, kind, header in rows]
        document_ids: set[str] = set()
        seqs: set[int] = set()
        cases: set[str] = set()
        for _, kind, header in entries:
            meta = header["meta"]
            document = _text(meta.get("document"))
            if document is not None:
                document_ids.add(document)
            if kind == "access" and not _is_link_access(header):
                seqs.update(_seqs(meta.get("seqs")))
                if self._subject is not None and _text(meta.get("case")) is not None:
                    cases.add(meta["case"])
        conn, log_id, case, subject = self._conn, self._log_id, self._case, self._subject
        documents = (repo.documents_in_scope(conn, log_id, document_ids, case=case, subject=subject)
                     if document_ids else {})
        in_scope = repo.seqs_in_scope(conn, log_id, seqs, case=case, subject=subject) if seqs else set()
        firsts = repo.subject_first_seq_in_cases(conn, log_id, subject, cases) if subject and cases else {}
        disclosed = {seq: str(header["meta"].get("share")) for seq, kind, header in entries
                     if (kind == "share" or _is_link_access(header))
                     and _text(header["meta"].get("document")) in documents}
        shares = repo.shares_by_id(conn, log_id, set(disclosed.values())) if disclosed else {}
        for seq, kind, header in entries:
            if seq in disclosed:
                self._disclosure(seq, kind, header, documents, shares)
            elif kind == "access" and not _is_link_access(header):
                self._access(seq, header, documents, in_scope, firsts)

    def _disclosure(self, seq: int, kind: str, header: dict[str, Any], documents: dict[str, Any],
                    shares: dict[str, Any]) -> None:
        meta = header["meta"]
        row = documents[meta["document"]]
        share_id = str(meta.get("share"))
        share = shares.get(share_id)
        event = (_SHARE_EVENTS if kind == "share" else _LINK_EVENTS).get(str(meta.get("action")))
        if event is None:
            return
        recipient = _text(meta.get("recipient")) or (None if share is None else str(share.recipient))
        # a `share` entry that creates a share states its purpose; the link's entries and a revocation
        # refer to the share, whose purpose was recorded when it was created
        purpose = _text(meta.get("purpose")) if event == "shared" else (None if share is None else share.purpose)
        self.disclosures.append(DisclosureRow(
            seq=seq, time=str(header["time"]), event=event, actor=str(header["actor"]), share=share_id,
            recipient=recipient, purpose=purpose,
            document=DisclosedDocument(str(row.document_id), int(row.seq), row.case_id, int(row.size)),
            download=_int(meta.get("download")) if event == "downloaded" else None,
            expires_at=_text(meta.get("expires_at")) if event == "shared" else None,
            max_downloads=_int(meta.get("max_downloads")) if event == "shared" else None))

    def _access(self, seq: int, header: dict[str, Any], documents: dict[str, Any], in_scope: set[int],
                firsts: dict[str, int]) -> None:
        meta = header["meta"]
        covered = tuple(s for s in _seqs(meta.get("seqs")) if s in in_scope)
        read_case = _text(meta.get("case"))
        # a case read returns every entry the case had then; its entry names at most 200 of them
        whole_case = read_case is not None and (
            read_case == self._case if self._case is not None else firsts.get(read_case, seq) < seq)
        if not (covered or whole_case or _text(meta.get("document")) in documents):
            return
        self.accesses.append(AccessRow(
            seq=seq, time=str(header["time"]), actor=str(header["actor"]), purpose=_text(meta.get("purpose")),
            scope=_text(meta.get("scope")), case=read_case, document=_text(meta.get("document")),
            read=_text(meta.get("read")), entries=covered, count=_int(meta.get("count"))))


class Disclosures:
    def __init__(self, ledger: Ledger, clock: Callable[[], str] | None = None) -> None:
        self._ledger = ledger
        #: "now", for the default period: the ledger's own clock unless given
        self._clock = ledger.clock if clock is None else clock

    def report(self, tenant: str, *, case: str | None = None, subject_ref: str | None = None,
               since: datetime | str | None = None, until: datetime | str | None = None,
               subject: str | None = None) -> DisclosureReport:
        """The disclosures and internal accesses of a case or of a subject (exactly one) over
        [since, until): by default `until` is now and `since` six years before `until`.

        `NotFound` for a case without entries in `tenant`'s log and for a subject reference without
        a mapping (never created, or erased); `InvalidInput` for a malformed scope or period.
        `subject`, a subject's handle, stands for `subject_ref` where the reference is not at hand
        (an export of a subject, built after it was asked for).
        """
        if sum(x is not None for x in (case, subject_ref, subject)) != 1:
            raise InvalidInput("name exactly one of case and subject_ref")
        if case is not None and (not isinstance(case, str) or not CASE_RE.match(case)):
            raise InvalidInput("case id must be 1-128 of letters, digits and . _ : -")
        now = self._clock()
        end = now if until is None else _moment(until, "until")
        start = _years_before(end, DEFAULT_YEARS) if since is None else _moment(since, "since")
        if start >= end:
            raise InvalidInput("the period must begin before it ends (since < until)")
        context = self._ledger.tenants.get(tenant)
        if subject_ref is not None:  # a lookup: a mapping erased by another process is gone here too
            subject = self._ledger.subjects.handle(tenant, subject_ref, create=False)
        with snapshot(self._ledger.engine) as conn:
            size = int(get_log(conn, context.log_id).size)
            first = repo.first_seq_of(conn, context.log_id, case=case, subject=subject)
            if first is None:
                if case is not None:
                    raise NotFound(f"no case {case!r}", case=case)
                raise NotFound("no such subject", tenant=tenant)
            low = _first_at(conn, context.log_id, first, size, start)
            high = _first_at(conn, context.log_id, low, size, end)
            scan = _Scan(conn, context.log_id, case, subject)
            for page in repo.share_and_access_pages(conn, context.log_id, low, high):
                scan.page(page)
        return DisclosureReport(tenant=tenant, log=context.origin, case=case, subject=subject, since=start,
                                until=end, generated_at=now, log_size=size, disclosures=tuple(scan.disclosures),
                                accesses=tuple(scan.accesses))
