"""The accounting of disclosures and the access report (HIPAA §164.528, §164.312(b)), on SQLite and
PostgreSQL: a document shared twice, downloaded three times, one share revoked, its content read for
stated purposes — every event listed, with its date, recipient and purpose, and the seq of the entry
that records it; nothing of another case, subject or tenant; the period bounds what is listed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest

from compliance.access import AccessService, Reader
from compliance.disclosures import AccessRow, DisclosureReport, DisclosureRow, Disclosures
from compliance.documents import DocumentAccess
from compliance.shares import ShareService
from ledger.appender import NewEntry
from ledger.documents import NewDocument
from ledger.errors import InvalidInput, NotFound
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.shares import SHARE_ACTOR

PDF = b"%PDF-1.7\n" + hashlib.sha256(b"statement").digest() * 100
SUPERVISOR = Reader("user:sue", "supervisor")
AUDITOR = Reader("user:audrey", "auditor", frozenset({"content"}))
CLIENT = "203.0.113.9"


@dataclass
class Story:
    ledger: Ledger
    document: str
    other_document: str
    note_seq: int
    shares: dict[str, str]


def _upload(ledger: Ledger, case: str, subject_ref: str, tenant: str = "acme") -> str:
    doc = NewDocument(case=case, title="Statement", name="statement.pdf", declared_type="application/pdf",
                      subject_ref=subject_ref, actor=SUPERVISOR.actor)
    return ledger.documents.upload(tenant, doc, [PDF]).document_id


def _download(service: ShareService, token: str) -> None:
    assert b"".join(service.download(token, CLIENT).chunks) == PDF


@pytest.fixture
def story(ledger: Ledger) -> Story:
    """Case C-1 (subject CRM-1): a note and a document, shared to an insurer and a lawyer, downloaded
    twice and once, the lawyer's share revoked, its receipt fetched, its content read three ways.
    Case C-2 (subject CRM-2) beside it: a document shared and downloaded, its timeline read."""
    ledger.tenants.create("acme")
    ledger.tenants.create("globex")
    access = AccessService(ledger)
    documents = DocumentAccess(access)
    links = ShareService(ledger, access)
    note = ledger.appender.append("acme", NewEntry(kind="interaction", channel="phone", case="C-1",
                                                   subject_ref="CRM-1", actor=SUPERVISOR.actor,
                                                   content=b'{"note":"called about the claim"}'))
    document = _upload(ledger, "C-1", "CRM-1")
    other = _upload(ledger, "C-2", "CRM-2")
    insurer = links.create("acme", SUPERVISOR, document, recipient="insurer-7", expires_in=3600, max_downloads=5,
                           purpose="claim processing")
    lawyer = links.create("acme", SUPERVISOR, document, recipient="lawyer-2", expires_in=3600, max_downloads=1,
                          purpose="legal request")
    elsewhere = links.create("acme", SUPERVISOR, other, recipient="bank-3", expires_in=3600, max_downloads=1,
                             purpose="account transfer")
    _download(links, insurer.token)
    _download(links, lawyer.token)
    _download(links, insurer.token)
    _download(links, elsewhere.token)
    links.receipt(insurer.token, CLIENT)
    links.revoke("acme", SUPERVISOR, lawyer.share.share_id)
    access.timeline("acme", SUPERVISOR, "C-1", "quality review")
    access.entry("acme", AUDITOR, note.seq, True, "audit sample")
    documents.info("acme", SUPERVISOR, document, "check the title")
    access.timeline("acme", SUPERVISOR, "C-2", "other case")
    return Story(ledger, document, other, note.seq, {"insurer": insurer.share.share_id,
                                                     "lawyer": lawyer.share.share_id,
                                                     "elsewhere": elsewhere.share.share_id})


def _header(ledger: Ledger, seq: int) -> dict[str, Any]:
    return ledger.reads.entry("acme", seq, decrypt=False).header


def _events(report: DisclosureReport) -> list[tuple[str, str | None, str | None, int | None]]:
    return [(row.event, row.recipient, row.purpose, row.download) for row in report.disclosures]


def _check_against_log(ledger: Ledger, report: DisclosureReport) -> None:
    """Each row is the entry it names: same time, actor, and the kind that records it."""
    rows: list[DisclosureRow | AccessRow] = [*report.disclosures, *report.accesses]
    for row in rows:
        header = _header(ledger, row.seq)
        assert header["time"] == row.time and header["actor"] == row.actor
        assert header["kind"] == ("share" if row in report.disclosures and row.actor != SHARE_ACTOR else "access")
    for listed in (report.disclosures, report.accesses):
        assert [row.time for row in listed] == sorted(row.time for row in listed)


C1_EVENTS = [
    ("shared", "insurer-7", "claim processing", None),
    ("shared", "lawyer-2", "legal request", None),
    ("downloaded", "insurer-7", "claim processing", 1),
    ("downloaded", "lawyer-2", "legal request", 1),
    ("downloaded", "insurer-7", "claim processing", 2),
    ("receipt", "insurer-7", "claim processing", None),
    ("revoked", "lawyer-2", "legal request", None),
]


def test_a_case_lists_every_share_download_revocation_and_access(story: Story) -> None:
    ledger = story.ledger
    before = ledger.tenants.info("acme").size or 0
    report = Disclosures(ledger).report("acme", case="C-1")
    assert ledger.tenants.info("acme").size == before  # a report writes nothing (and decrypts nothing)
    assert _events(report) == C1_EVENTS
    assert {row.document.document_id for row in report.disclosures} == {story.document}
    [shared, *_] = report.disclosures
    assert shared.actor == SUPERVISOR.actor and shared.share == story.shares["insurer"]
    assert shared.max_downloads == 5 and shared.expires_at is not None
    assert shared.document.case == "C-1" and shared.document.size == len(PDF)
    assert _header(ledger, shared.document.seq)["kind"] == "document"
    revoked = report.disclosures[-1]
    assert revoked.actor == SUPERVISOR.actor and revoked.share == story.shares["lawyer"]
    # every download the log records of this document, no fewer
    headers = [_header(ledger, seq) for seq in range(before)]
    downloads = [h["seq"] for h in headers if h["kind"] == "access" and h["meta"].get("action") == "download"
                 and h["meta"].get("document") == story.document]
    assert [row.seq for row in report.disclosures if row.event == "downloaded"] == downloads
    assert [(row.actor, row.purpose, row.scope) for row in report.accesses] == [
        (SUPERVISOR.actor, "quality review", "case"), (AUDITOR.actor, "audit sample", "entry"),
        (SUPERVISOR.actor, "check the title", "document")]
    timeline, entry, info = report.accesses
    case_before = tuple(e.seq for e in ledger.reads.case("acme", "C-1", decrypt=False) if e.seq < timeline.seq)
    assert timeline.case == "C-1" and timeline.entries == case_before and timeline.count == len(case_before)
    assert entry.entries == (story.note_seq,) and info.document == story.document and info.read == "info"
    _check_against_log(ledger, report)
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["scope"] == {"case": "C-1"} and doc["log"] == "caseledger.local/acme" and doc["log_size"] == before
    assert [d["event"] for d in doc["disclosures"]] == [e[0] for e in C1_EVENTS]
    assert doc["disclosures"][0]["document"] == {"id": story.document, "seq": shared.document.seq, "case": "C-1",
                                                 "size": len(PDF)}
    assert set(doc["accesses"][0]) == {"seq", "time", "actor", "purpose", "scope", "case", "document", "read",
                                       "entries", "count"}


def test_a_subject_lists_what_covers_its_entries(story: Story) -> None:
    report = Disclosures(story.ledger).report("acme", subject_ref="CRM-1")
    assert report.case is None and report.subject == _header(story.ledger, story.note_seq)["subject"]
    assert _events(report) == C1_EVENTS
    assert [row.purpose for row in report.accesses] == ["quality review", "audit sample", "check the title"]
    # of the case's entries the timeline read, the subject's: its note and its document
    assert report.accesses[0].entries == (story.note_seq, report.disclosures[0].document.seq)
    _check_against_log(story.ledger, report)
    assert report.to_json()["scope"] == {"subject": report.subject}
    assert "CRM-1" not in json.dumps(report.to_json())  # the reference is personal: only the handle is shown


def test_another_case_or_subject_lists_none_of_it(story: Story) -> None:
    for report in (Disclosures(story.ledger).report("acme", case="C-2"),
                   Disclosures(story.ledger).report("acme", subject_ref="CRM-2")):
        assert _events(report) == [("shared", "bank-3", "account transfer", None),
                                   ("downloaded", "bank-3", "account transfer", 1)]
        assert {row.document.document_id for row in report.disclosures} == {story.other_document}
        assert [(row.purpose, row.case) for row in report.accesses] == [("other case", "C-2")]


def test_another_tenant_or_an_unknown_scope_is_not_found(story: Story) -> None:
    disclosures = Disclosures(story.ledger)
    with pytest.raises(NotFound):
        disclosures.report("globex", case="C-1")
    with pytest.raises(NotFound):
        disclosures.report("globex", subject_ref="CRM-1")
    with pytest.raises(NotFound):
        disclosures.report("acme", case="C-404")
    with pytest.raises(NotFound):
        disclosures.report("acme", subject_ref="CRM-404")
    with pytest.raises(NotFound):  # the report looked the reference up without creating a mapping
        story.ledger.subjects.handle("acme", "CRM-404", create=False)
    with pytest.raises(NotFound):
        disclosures.report("nobody", case="C-1")


def test_a_forgotten_subject_is_not_found_while_its_case_still_accounts(story: Story, settings: Settings) -> None:
    """Erasure deletes the subject's mapping: the reference no longer leads to the log (NotFound,
    not an empty accounting) — in another worker too, whose cache held it — while the case's
    accounting still lists what was disclosed."""
    worker = Ledger.open(settings)
    try:
        disclosures = Disclosures(worker)
        assert disclosures.report("acme", subject_ref="CRM-1").disclosures  # its mapping is cached there now
        story.ledger.subjects.forget("acme", "CRM-1")
        with pytest.raises(NotFound):
            disclosures.report("acme", subject_ref="CRM-1")
        assert _events(disclosures.report("acme", case="C-1")) == C1_EVENTS
    finally:
        worker.close()


def test_the_period_bounds_the_rows(story: Story) -> None:
    disclosures = Disclosures(story.ledger)
    full = disclosures.report("acme", case="C-1")
    first_download = next(row for row in full.disclosures if row.event == "downloaded")
    revocation = full.disclosures[-1]
    early = disclosures.report("acme", case="C-1", until=first_download.time)
    assert [row.event for row in early.disclosures] == ["shared", "shared"] and early.accesses == ()
    late = disclosures.report("acme", case="C-1", since=revocation.time)
    assert [row.event for row in late.disclosures] == ["revoked"]
    assert [row.seq for row in late.accesses] == [row.seq for row in full.accesses]
    window = disclosures.report("acme", case="C-1", since=first_download.time, until=revocation.time)
    assert [row.event for row in window.disclosures] == ["downloaded", "downloaded", "downloaded", "receipt"]
    assert window.since == first_download.time and window.until == revocation.time
    # the default period is the six years before `until`
    long_ago = disclosures.report("acme", case="C-1", until="2001-02-03T04:05:06Z")
    assert long_ago.since == "1995-02-03T04:05:06.000000Z" and long_ago.disclosures == () and long_ago.accesses == ()
    assert full.since[:4] == str(int(full.until[:4]) - 6) and full.since[4:] == full.until[4:]


@pytest.mark.parametrize("kwargs", [
    {}, {"case": "C-1", "subject_ref": "CRM-1"}, {"case": "bad case"}, {"case": "C-1", "since": "yesterday"},
    {"case": "C-1", "since": "2030-01-01T00:00:00"}, {"case": "C-1", "since": "2030-01-01T00:00:00Z",
                                                     "until": "2029-01-01T00:00:00Z"},
])
def test_a_malformed_scope_or_period_is_refused(story: Story, kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        Disclosures(story.ledger).report("acme", **kwargs)


def test_many_accesses_are_all_listed_page_after_page(story: Story) -> None:
    """More access entries than a page holds: all listed, in order (memory is a page, not the log)."""
    reads = [NewEntry(kind="access", actor=f"user:bot{i % 7}", channel="api",
                      meta={"scope": "entry", "count": 1, "seqs": [story.note_seq], "purpose": f"batch {i}"})
             for i in range(1234)]
    appended = story.ledger.appender.append_batch("acme", reads)
    report = Disclosures(story.ledger).report("acme", subject_ref="CRM-1")
    listed = [row for row in report.accesses if row.purpose is not None and row.purpose.startswith("batch ")]
    assert [row.seq for row in listed] == [a.seq for a in appended]
    assert [row.purpose for row in listed] == [f"batch {i}" for i in range(1234)]
