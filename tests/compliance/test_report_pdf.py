"""The report PDF for real: rendered by ReportLab, read back by pypdf, rasterised by poppler's
pdftoppm, attached and signed, then verified — and attacked: its markup injected, its signature
stripped, its bytes edited, an update appended, its attachment swapped, its bytes garbage."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pypdf
import pytest
from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

from compliance import report_layout
from compliance.errors import ReportError
from compliance.report_pdf import (
    BUNDLE_NAME,
    AccessRow,
    AnchorSummary,
    DisclosureRow,
    EntryRow,
    ReportInput,
    VerificationSummary,
    render_report,
)
from compliance.report_sign import (
    InstanceSigner,
    attach_bundle,
    create_dev_certificate,
    instance_signer,
    sign_report,
)
from compliance.report_verify import (
    CHECK_ATTACHMENT,
    CHECK_BUNDLE_HASH,
    CHECK_COVERAGE,
    CHECK_SIGNATURE,
    CHECK_SIGNER,
    ReportCheck,
    verify_report,
)

ROWS = 50
KINDS = ("interaction", "document", "access", "share", "policy")
FONT_INJECTION = "<font color=\"[[[getattr(pow, 'x')]]]\">boom</font>"
LINK_INJECTION = '<a href="javascript:alert(1)">x</a>'


def _img_injection(port: int) -> str:
    return f'<img src="http://127.0.0.1:{port}/x"/>'


@dataclass(frozen=True)
class Instance:
    signer: InstanceSigner
    cert: x509.Certificate


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Instance:
    d = tmp_path_factory.mktemp("instance")
    cert = create_dev_certificate("test.local", d / "key.pem", d / "cert.pem")
    return Instance(instance_signer(d / "key.pem", d / "cert.pem"), cert)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Instance:
    d = tmp_path_factory.mktemp("stranger")
    cert = create_dev_certificate("elsewhere.example", d / "key.pem", d / "cert.pem")
    return Instance(instance_signer(d / "key.pem", d / "cert.pem"), cert)


def _bundle(path: Path, marker: str = "original") -> str:
    path.write_text(json.dumps({"type": "caseledger.bundle", "v": 1, "marker": marker,
                                "entries": [{"seq": i} for i in range(ROWS)]}))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(hostile: tuple[str, ...] = ()) -> Iterator[EntryRow]:
    for seq in range(ROWS):
        content = f"message {seq}: the customer asked about the fee" if seq % 4 else None
        if hostile and seq < len(hostile):
            content = hostile[seq]
        yield EntryRow(
            time=f"2026-03-01T10:{seq // 60:02d}:{seq % 60:02d}.000000Z", seq=seq, kind=KINDS[seq % len(KINDS)],
            channel="chat" if seq % 2 else None, actor=f"user:agent-{seq % 3}", case="C-1",
            entry_hash=hashlib.sha256(bytes([seq])).hexdigest(), content=content,
            redacted="personal data" if seq % 4 == 0 and seq % 8 else None, no_commitment=seq == 7)


def _input(bundle_sha: str, *, hostile: tuple[str, ...] = (), tenant: str = "acme-bank") -> ReportInput:
    verification = VerificationSummary(
        checkpoint_size=120, root_hex="ab" * 32, key_name="caseledger.local/acme-bank", key_fingerprint="0a1b2c3d",
        anchor=AnchorSummary(tx_hash="0x" + "cd" * 32, block_number=4242, chain_id=31337),
        results=(("checkpoint signature", True), ("range proof", True), *((h, True) for h in hostile[:1])))
    disclosures = [DisclosureRow("2026-03-02", "Dr. Alice Example", "1 Main St, Springfield", "statement.pdf",
                                 "treatment"),
                   DisclosureRow("2026-03-03", None, None, hostile[0] if hostile else "case summary", None)]
    accesses = [AccessRow("2026-03-04T09:00:00Z", "user:auditor-1", "case C-1", "audit"),
                AccessRow("2026-03-05T09:00:00Z", hostile[-1] if hostile else "user:supervisor", "entry 3", None)]
    return ReportInput(
        log_origin="caseledger.local/acme-bank", tenant=tenant, scope=hostile[0] if hostile else "case C-1",
        exported_by=hostile[1] if hostile else "user:auditor-1", generated_at=datetime(2026, 3, 6, 12, tzinfo=UTC),
        verification=verification, entries=_entries(hostile), disclosures=iter(disclosures),
        accesses=iter(accesses), bundle_sha256=bundle_sha)


@dataclass(frozen=True)
class Report:
    rendered: Path
    attached: Path
    signed: Path
    bundle: Path
    bundle_sha: str
    pages: int


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, instance: Instance) -> Report:
    d = tmp_path_factory.mktemp("report")
    sha = _bundle(d / "bundle.json")
    pages = render_report(_input(sha), d / "rendered.pdf")
    attached = attach_bundle(d / "rendered.pdf", d / "bundle.json", d / "attached.pdf")
    assert attached.sha256 == sha
    sign_report(d / "attached.pdf", d / "signed.pdf", instance.signer)
    return Report(d / "rendered.pdf", d / "attached.pdf", d / "signed.pdf", d / "bundle.json", sha, pages)


def _page_texts(path: Path) -> list[str]:
    with open(path, "rb") as f:
        return [page.extract_text() for page in pypdf.PdfReader(f).pages]


def _failed(check: ReportCheck) -> set[str]:
    return {c.name for c in check.failures}


# --- rendering ------------------------------------------------------------------------------------------

def test_pdftoppm_renders_every_page(report: Report, tmp_path: Path) -> None:
    assert shutil.which("pdftoppm"), "pdftoppm missing: install poppler-utils (`make test` does)"
    done = subprocess.run(["pdftoppm", "-r", "50", "-png", str(report.signed), str(tmp_path / "page")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == report.pages > 3
    assert all(p.stat().st_size > 1000 for p in pngs)


def test_text_holds_entries_bundle_hash_and_page_numbers_on_every_page(report: Report) -> None:
    texts = _page_texts(report.signed)
    assert len(texts) == report.pages
    for number, text in enumerate(texts, start=1):
        assert f"bundle SHA-256: {report.bundle_sha}" in text
        assert re.search(rf"\bpage {number}\b", text)
    everything = "\n".join(texts)
    for seq in range(ROWS):
        assert re.search(rf"(?m)(^|\s){seq}(\s|$)", everything), seq
    for kind in KINDS:
        assert kind in everything
    for expected in ("Audit trail export", "acme-bank", "Verification summary", "4242", "31337",
                     "Accounting of disclosures", "Dr. Alice Example", "Internal accesses", "user:auditor-1",
                     "[redacted: personal data]", "not verifiable (no commitment)", "caseledger verify report.pdf",
                     "caseledger verify caseledger-bundle.json --vkey K", "RFC 9162", "SHA-256(salt || content)"):
        assert expected in everything, expected


def test_report_is_well_formed_across_part_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(report_layout, "PART_PAGES", 2)  # every other page starts a new part
    sha = _bundle(tmp_path / "bundle.json")
    pages = render_report(_input(sha), tmp_path / "r.pdf")
    with pikepdf.open(tmp_path / "r.pdf") as pdf:
        assert len(pdf.pages) == pages
        assert pdf.check_pdf_syntax() == []
    texts = _page_texts(tmp_path / "r.pdf")
    assert all(f"page {n}" in t for n, t in enumerate(texts, start=1))


def test_markup_injection_renders_literally_and_fetches_nothing(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        port = listener.getsockname()[1]
        canary = tmp_path / "evaluated"
        evaluating = f"<font color=\"[[[open('{canary}', 'w')]]]\">x</font>"
        hostile = (_img_injection(port), FONT_INJECTION, LINK_INJECTION, evaluating, "&amp; &lt;b&gt; ]]> <br/>")
        sha = _bundle(tmp_path / "bundle.json")
        render_report(_input(sha, hostile=hostile, tenant=f"acme {_img_injection(port)}"), tmp_path / "r.pdf")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody came
    finally:
        listener.close()
    assert not canary.exists()
    flat = re.sub(r"\s+", "", "\n".join(_page_texts(tmp_path / "r.pdf")))
    for text in hostile:
        assert re.sub(r"\s+", "", text) in flat, text
    with pikepdf.open(tmp_path / "r.pdf") as pdf:
        for page in pdf.pages:
            assert "/Annots" not in page.obj  # no link was made
            xobjects = page.obj.Resources.get("/XObject")
            assert xobjects is None or not list(xobjects.keys())  # no image was placed


def test_non_latin_controls_and_unbroken_strings_render(tmp_path: Path) -> None:
    odd = ("Ελληνικά Кириллица עברית العربية 中文 日本語 😀 \x00\x07\x1b[31m tab\there",
           "x" * 50_000, "y" * 3000 + " " + "z" * 3000, "line\n" * 400)
    sha = _bundle(tmp_path / "bundle.json")
    report = _input(sha, hostile=odd, tenant="テナント " + "q" * 2000)
    pages = render_report(report, tmp_path / "r.pdf")
    done = subprocess.run(["pdftoppm", "-r", "20", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "p")],
                          capture_output=True, timeout=300)
    assert done.returncode == 0
    assert len(list(tmp_path.glob("p-*.png"))) == pages
    everything = "\n".join(_page_texts(tmp_path / "r.pdf"))
    assert "[U+0000]" in everything and "[U+001B]" in everything  # control characters shown, not swallowed
    assert "[U+1F600]" in everything  # no font here draws it: its code point is shown instead
    assert "more characters; the full content is in the bundle" in everything  # 50,000 x's cut at 10,000


# --- signing and verification ---------------------------------------------------------------------------

def test_signed_report_verifies_with_the_instance_certificate(report: Report, instance: Instance) -> None:
    check = verify_report(report.signed, trusted_certs=[instance.cert])
    assert check.ok, check.failures
    assert check.bundle == report.bundle.read_bytes()
    assert check.bundle_sha256 == report.bundle_sha
    assert check.signer is not None and "caseledger test.local" in check.signer
    with pikepdf.open(report.signed) as pdf:  # PDF/A-3 style: /AF lists the attachment, as /Source
        spec = pdf.Root.AF[0]
        assert spec.AFRelationship == pikepdf.Name.Source
        assert str(spec.F) == BUNDLE_NAME
        assert spec.EF.F.Subtype == pikepdf.Name("/application/json")


def test_dev_certificate_names_the_instance_and_keeps_its_key_private(tmp_path: Path) -> None:
    cert = create_dev_certificate("my.instance", tmp_path / "k.pem", tmp_path / "c.pem")
    assert cert.subject.rfc4514_string() == "CN=caseledger my.instance"
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0
    with pytest.raises(FileExistsError):
        create_dev_certificate("my.instance", tmp_path / "k.pem", tmp_path / "other.pem")


def test_another_certificate_is_an_untrusted_signer(report: Report, stranger: Instance) -> None:
    check = verify_report(report.signed, trusted_certs=[stranger.cert])
    assert _failed(check) == {CHECK_SIGNER}
    assert "untrusted signer" in check.failures[0].detail
    assert _failed(verify_report(report.signed, trusted_certs=None)) == {CHECK_SIGNER}
    assert verify_report(report.signed, trusted_certs=None, allow_untrusted_signer=True).ok


def test_unsigned_report_fails_with_no_signature(report: Report, instance: Instance) -> None:
    check = verify_report(report.attached, trusted_certs=[instance.cert])
    assert _failed(check) == {CHECK_SIGNATURE}
    assert check.failures[0].detail == "no signature"
    assert check.bundle == report.bundle.read_bytes()  # the rest still checked


def test_stripped_signature_fails(report: Report, instance: Instance, tmp_path: Path) -> None:
    with pikepdf.open(report.signed) as pdf:
        del pdf.Root["/AcroForm"]
        if "/Perms" in pdf.Root:
            del pdf.Root["/Perms"]
        for page in pdf.pages:
            if "/Annots" in page.obj:
                del page.obj["/Annots"]
        pdf.save(tmp_path / "stripped.pdf")
    check = verify_report(tmp_path / "stripped.pdf", trusted_certs=[instance.cert])
    assert _failed(check) == {CHECK_SIGNATURE}
    assert check.failures[0].detail == "no signature"


def test_a_byte_edited_after_signing_fails(report: Report, instance: Instance, tmp_path: Path) -> None:
    data = bytearray(report.signed.read_bytes())
    at = data.index(b"/Title (caseledger audit report") + len(b"/Title (c")
    data[at] ^= 0x20  # "caseledger" -> "cAseledger" in the first revision, well inside the signed range
    (tmp_path / "edited.pdf").write_bytes(bytes(data))
    check = verify_report(tmp_path / "edited.pdf", trusted_certs=[instance.cert])
    assert CHECK_SIGNATURE in _failed(check)


def test_an_incremental_update_after_signing_fails(report: Report, instance: Instance, tmp_path: Path) -> None:
    shutil.copyfile(report.signed, tmp_path / "updated.pdf")
    with open(tmp_path / "updated.pdf", "r+b") as f:
        writer = IncrementalPdfFileWriter(f)
        writer.root["/PageMode"] = generic.NameObject("/UseAttachments")  # a harmless-looking change
        writer.update_root()  # type: ignore[no-untyped-call]
        writer.write_in_place()  # type: ignore[no-untyped-call]
    check = verify_report(tmp_path / "updated.pdf", trusted_certs=[instance.cert])
    assert CHECK_COVERAGE in _failed(check)


def test_bytes_appended_after_signing_fail(report: Report, instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "appended.pdf").write_bytes(report.signed.read_bytes() + b"\n% appended after signing\n")
    check = verify_report(tmp_path / "appended.pdf", trusted_certs=[instance.cert])
    assert CHECK_COVERAGE in _failed(check)


def test_a_second_signature_fails(report: Report, instance: Instance, stranger: Instance, tmp_path: Path) -> None:
    # our own signing certifies with no changes allowed, which pyHanko then refuses to sign over; other
    # tools may not refuse, so two plain signatures stand in for "a signature added after ours"
    source = report.attached
    for n, who in enumerate((instance, stranger)):
        with open(source, "rb") as src, open(tmp_path / f"{n}.pdf", "wb") as out:
            meta = signers.PdfSignatureMetadata(field_name=f"sig{n}", subfilter=fields.SigSeedSubFilter.PADES)
            signers.sign_pdf(IncrementalPdfFileWriter(src), meta, who.signer.signer, output=out)
        source = tmp_path / f"{n}.pdf"
    check = verify_report(source, trusted_certs=[instance.cert, stranger.cert])
    assert _failed(check) == {CHECK_SIGNATURE}
    assert "exactly one" in check.failures[0].detail


def test_swapped_attachment_fails(report: Report, instance: Instance, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    _bundle(other, marker="forged")
    with pikepdf.open(report.signed) as pdf:
        pdf.attachments[BUNDLE_NAME] = pikepdf.AttachedFileSpec(pdf, other.read_bytes(), mime_type="application/json")
        pdf.save(tmp_path / "swapped.pdf")
    check = verify_report(tmp_path / "swapped.pdf", trusted_certs=[instance.cert])
    assert {CHECK_SIGNATURE, CHECK_BUNDLE_HASH} <= _failed(check)
    assert check.bundle == other.read_bytes()
    mismatch = next(c for c in check.failures if c.name == CHECK_BUNDLE_HASH)
    assert report.bundle_sha in mismatch.detail


def test_other_bundle_attached_before_signing_fails_on_the_printed_hash(report: Report, instance: Instance,
                                                                         tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    _bundle(other, marker="mixed up")
    attach_bundle(report.rendered, other, tmp_path / "attached.pdf")
    sign_report(tmp_path / "attached.pdf", tmp_path / "signed.pdf", instance.signer)
    check = verify_report(tmp_path / "signed.pdf", trusted_certs=[instance.cert])
    assert _failed(check) == {CHECK_BUNDLE_HASH}


def test_missing_attachment_is_named(report: Report, instance: Instance, tmp_path: Path) -> None:
    sign_report(report.rendered, tmp_path / "signed.pdf", instance.signer)
    check = verify_report(tmp_path / "signed.pdf", trusted_certs=[instance.cert])
    assert _failed(check) == {CHECK_ATTACHMENT}
    assert BUNDLE_NAME in check.failures[0].detail
    assert check.bundle is None


def test_a_second_attachment_is_refused(report: Report, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="already carries attachments"):
        attach_bundle(report.attached, report.bundle, tmp_path / "twice.pdf")


@pytest.mark.parametrize("mutation", ["garbage", "empty", "truncated", "header only"])
def test_malformed_pdf_is_a_report_error(report: Report, instance: Instance, tmp_path: Path, mutation: str) -> None:
    signed = report.signed.read_bytes()
    data = {"garbage": b"this is not a PDF at all" * 100, "empty": b"", "truncated": signed[: len(signed) // 3],
            "header only": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<</Type /Catalog"}[mutation]
    (tmp_path / "bad.pdf").write_bytes(data)
    with pytest.raises(ReportError) as raised:
        verify_report(tmp_path / "bad.pdf", trusted_certs=[instance.cert])
    assert "\n" not in str(raised.value)


def test_missing_file_is_a_report_error(instance: Instance, tmp_path: Path) -> None:
    with pytest.raises(ReportError):
        verify_report(tmp_path / "nothing.pdf", trusted_certs=[instance.cert])


def test_instance_signer_refuses_a_key_of_another_certificate(instance: Instance, stranger: Instance,
                                                              tmp_path: Path) -> None:
    create_dev_certificate("a", tmp_path / "a.key", tmp_path / "a.pem")
    create_dev_certificate("b", tmp_path / "b.key", tmp_path / "b.pem")
    with pytest.raises(ReportError, match="does not belong"):
        instance_signer(tmp_path / "a.key", tmp_path / "b.pem")
    with pytest.raises(ReportError):
        instance_signer(tmp_path / "missing.key", tmp_path / "b.pem")
