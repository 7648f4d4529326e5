"""Exports (issue 11 item 7) on SQLite and PostgreSQL: a case, a subject, a seq range and a time window
as bundles that `verify_bundle` checks offline, redactions applied before anything is written,
JSONL/CSV for eDiscovery, and a signed PDF whose attachment is the bundle and that pdftoppm renders."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from pypdf import PdfReader

from compliance.access import Reader
from compliance.exports import ExportRequest, Exports
from ledger.appender import NewEntry
from ledger.errors import InvalidInput, NotFound, PolicyViolation
from ledger.service import Ledger
from tests.compliance.conftest import Clock
from verification import Trust
from verification.bundle_verify import verify_bundle

AUDITOR = Reader("user:aud", "auditor", frozenset({"content"}))
HEADERS_ONLY = Reader("user:aud2", "auditor")
INJECTION = ('<font color="[[[getattr(pow, \'x\')]]]">x</font> <img src="http://127.0.0.1:9/x"/> '
             '<a href="javascript:alert(1)">y</a>')


def _world(ledger: Ledger, clock: Clock) -> dict[str, int]:
    ledger.tenants.create("t")
    seqs = {}
    for i, (case, channel, ref) in enumerate([("C-1", "phone", "cust-1"), ("C-2", "email", "cust-2"),
                                              ("C-1", "chat", "cust-1"), ("C-1", "email", None)]):
        content = json.dumps({"card": "4111 1111 1111 1111", "note": f"message {i} {INJECTION}"},
                             sort_keys=True, separators=(",", ":")).encode()
        seqs[f"e{i}"] = ledger.appender.append("t", NewEntry(kind="interaction", channel=channel, case=case,
                                                             subject_ref=ref, actor="user:agent",
                                                             content=content)).seq
        clock.advance(hours=1)
    seqs["raw"] = ledger.appender.append("t", NewEntry(kind="interaction", channel="sms", case="C-1",
                                                      content=b"plain text \xe2\x9c\x93")).seq
    return seqs


def _bundle(path: Path, ledger: Ledger) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    result = verify_bundle(document, Trust.of(ledger.tenants.info("t").vkey), collect=True)
    assert result.valid, result.summary()
    return document


def test_a_case_export_carries_every_entry_of_the_case_and_verifies_offline(timed: Ledger, clock: Clock) -> None:
    seqs = _world(timed, clock)
    exports = Exports(timed)
    job = exports.create("t", AUDITOR, ExportRequest(case="C-1", include_content=True, format="bundle"))
    done = exports.build("t", job.export_id)
    assert done.status == "done", done.error
    document = _bundle(exports.file("t", AUDITOR, job.export_id, "bundle"), timed)
    entries = document["entries"]
    assert isinstance(entries, list)
    assert [e["seq"] for e in entries] == [seqs["e0"], seqs["e2"], seqs["e3"], seqs["raw"], job.export_seq]
    assert entries[0]["content"]["note"].startswith("message 0")
    assert entries[3]["content"] == {"base64": "cGxhaW4gdGV4dCDinJM="}
    assert entries[-1]["header"]["kind"] == "export", "creating the export is itself on record in the case"
    assert done.summary["ok"] and done.summary["content_verified"] == 4
    assert done.sha256 and len(done.sha256) == 64


def test_a_subject_export_holds_only_that_subjects_entries(timed: Ledger, clock: Clock) -> None:
    seqs = _world(timed, clock)
    exports = Exports(timed)
    job = exports.create("t", AUDITOR, ExportRequest(subject_ref="cust-1", format="bundle"))
    assert exports.build("t", job.export_id).status == "done"
    document = _bundle(exports.file("t", AUDITOR, job.export_id, "bundle"), timed)
    assert [e["seq"] for e in document["entries"]] == [seqs["e0"], seqs["e2"], job.export_seq]
    assert "cust-1" not in json.dumps(document), "the bundle names the subject by its handle only"
    assert all("content" not in e for e in document["entries"])


def test_a_range_and_a_time_window_export_carry_one_range_proof(timed: Ledger, clock: Clock) -> None:
    seqs = _world(timed, clock)
    exports = Exports(timed)
    ranged = exports.create("t", AUDITOR, ExportRequest(start=1, end=4, format="bundle"))
    exports.build("t", ranged.export_id)
    document = _bundle(exports.file("t", AUDITOR, ranged.export_id, "bundle"), timed)
    assert document["proof"]["range"]["start"] == 1 and document["proof"]["range"]["end"] == 4
    window = exports.create("t", AUDITOR, ExportRequest(since="2026-03-02T09:30:00+00:00",
                                                        until="2026-03-02T11:30:00+00:00", format="bundle"))
    exports.build("t", window.export_id)
    document = _bundle(exports.file("t", AUDITOR, window.export_id, "bundle"), timed)
    assert [e["seq"] for e in document["entries"]] == [seqs["e1"], seqs["e2"]]


def test_redactions_are_applied_before_anything_is_written(timed: Ledger, clock: Clock) -> None:
    _world(timed, clock)
    exports = Exports(timed)
    job = exports.create("t", AUDITOR, ExportRequest(case="C-1", include_content=True, redact=("/card",),
                                                     format="jsonl"))
    assert exports.build("t", job.export_id).status == "done"
    for name in ("bundle", "jsonl", "csv"):
        text = exports.file("t", AUDITOR, job.export_id, name).read_text(encoding="utf-8")
        assert "4111" not in text, f"the redacted card number is in the {name} file"
    document = _bundle(exports.file("t", AUDITOR, job.export_id, "bundle"), timed)
    redacted = [e for e in document["entries"] if e.get("redacted")]
    assert len(redacted) == 3 and all(e["content"] is None and e["redacted"] == "redacted: /card" for e in redacted)
    with exports.file("t", AUDITOR, job.export_id, "csv").open(encoding="utf-8", newline="") as table:
        rows = list(csv.reader(table))
    assert rows[0][:3] == ["seq", "time", "kind"] and len(rows) == 6
    assert '"card": "[redacted]"' in rows[1][-1]
    lines = exports.file("t", AUDITOR, job.export_id, "jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["redacted"] == "redacted: /card"


def test_a_pdf_export_is_signed_carries_its_bundle_and_renders(timed: Ledger, clock: Clock, tmp_path: Path) -> None:
    from compliance.report_verify import verify_report

    seqs = _world(timed, clock)
    exports = Exports(timed)
    job = exports.create("t", AUDITOR, ExportRequest(case="C-1", include_content=True, format="pdf"))
    done = exports.build("t", job.export_id)
    assert done.status == "done", done.error
    pdf = exports.file("t", AUDITOR, job.export_id, "pdf")
    cert = x509.load_pem_x509_certificate(timed.settings.report_signing_paths[1].read_bytes())
    check = verify_report(pdf, trusted_certs=[cert])
    assert check.ok, check.failures
    assert check.bundle == exports.file("t", AUDITOR, job.export_id, "bundle").read_bytes()
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "getattr(pow" in text and "javascript:alert(1)" in text, "the injected markup is printed as text"
    assert check.bundle_sha256 is not None and check.bundle_sha256[:16] in text
    for seq in seqs.values():
        if seq != seqs["e1"]:
            assert str(seq) in text
    out = subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], capture_output=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert sorted(tmp_path.glob("page*.png")), "pdftoppm rendered no page"


def test_who_may_export_what(timed: Ledger, clock: Clock) -> None:
    _world(timed, clock)
    exports = Exports(timed)
    with pytest.raises(PolicyViolation):
        exports.create("t", Reader("user:agent", "agent"), ExportRequest(case="C-1"))
    with pytest.raises(InvalidInput, match="'content' permission"):
        exports.create("t", HEADERS_ONLY, ExportRequest(case="C-1", include_content=True))
    with pytest.raises(InvalidInput, match="exactly one scope"):
        exports.create("t", AUDITOR, ExportRequest(case="C-1", start=0, end=2))
    with pytest.raises(InvalidInput, match="JSON pointers"):
        exports.create("t", AUDITOR, ExportRequest(case="C-1", include_content=True, redact=("card",)))
    with pytest.raises(InvalidInput, match="beyond the log"):
        exports.create("t", AUDITOR, ExportRequest(start=0, end=999))
    with pytest.raises(NotFound):
        exports.create("t", AUDITOR, ExportRequest(subject_ref="nobody"))
    job = exports.create("t", HEADERS_ONLY, ExportRequest(case="C-2", format="bundle"))
    timed.tenants.create("u")
    with pytest.raises(NotFound):
        exports.get("u", AUDITOR, job.export_id)
    empty = exports.create("t", AUDITOR, ExportRequest(case="NO-SUCH-CASE", format="bundle"))
    failed = exports.build("t", empty.export_id)
    assert failed.status == "done" and failed.summary["entries"] == 1, "only the export entry itself"
