"""The audit report as a PDF a person reads (DESIGN §9): cover, verification summary, the entries, the
accounting of disclosures and internal accesses, and an appendix on verifying it with nothing of ours.

The entries and the access report arrive as iterators and are drawn as they come, page by page, so a
report of 100,000 entries needs no more memory than one of 1,000. Every page carries its number and
the SHA-256 of the bundle embedded later (`compliance.report_sign`), which is what ties the pages a
person reads to the bundle a machine verifies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, Frame, Paragraph, Spacer

from compliance.report_layout import FONT, FONT_BOLD, MARGIN, Column, PageWriter, TableWriter, markup
from ledger.errors import InvalidInput

__all__ = [
    "BUNDLE_NAME",
    "AccessRow",
    "AnchorSummary",
    "DisclosureRow",
    "EntryRow",
    "ReportInput",
    "VerificationSummary",
    "footer_text",
    "render_report",
]

#: the file name of the embedded bundle, and the name the appendix tells readers to look for
BUNDLE_NAME = "caseledger-bundle.json"
#: content longer than this is cut in the PDF (never in the bundle, which the PDF embeds whole)
MAX_CONTENT_CHARS = 10_000
SHORT_HASH = 16

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_PORTRAIT = A4
_LANDSCAPE = landscape(A4)


@dataclass(frozen=True)
class AnchorSummary:
    """Where the checkpoint (or a later one consistent with it) was anchored (DESIGN §6)."""

    tx_hash: str
    block_number: int
    chain_id: int


@dataclass(frozen=True)
class VerificationSummary:
    """What the export was verified against, and what that verification found at export time."""

    checkpoint_size: int
    root_hex: str
    key_name: str
    key_fingerprint: str
    anchor: AnchorSummary | None
    results: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class EntryRow:
    """One entry as the report shows it. `content` is the clear text when included; `redacted` the
    reason when it was withheld; `no_commitment` marks content that its header cannot vouch for."""

    time: str
    seq: int
    kind: str
    channel: str | None
    actor: str | None
    case: str | None
    entry_hash: str
    content: str | None = None
    redacted: str | None = None
    no_commitment: bool = False


@dataclass(frozen=True)
class DisclosureRow:
    """A disclosure outside the organisation (HIPAA §164.528): to whom, what, and why."""

    date: str
    recipient: str | None
    address: str | None
    description: str
    purpose: str | None


@dataclass(frozen=True)
class AccessRow:
    """An internal access to content (HIPAA §164.312(b))."""

    when: str
    who: str
    what: str
    purpose: str | None


@dataclass(frozen=True)
class ReportInput:
    """Everything a report shows. `entries`, `disclosures` and `accesses` are consumed once, in order.

    `bundle_sha256` is the lowercase hex SHA-256 of the bundle file that will be embedded.
    """

    log_origin: str
    tenant: str
    scope: str
    exported_by: str
    generated_at: datetime
    verification: VerificationSummary
    entries: Iterable[EntryRow]
    disclosures: Iterable[DisclosureRow]
    accesses: Iterable[AccessRow]
    bundle_sha256: str

    def __post_init__(self) -> None:
        if not _HEX64.match(self.bundle_sha256):
            raise InvalidInput("bundle_sha256 must be 64 lowercase hex digits")
        if self.generated_at.tzinfo is None:
            raise InvalidInput("generated_at needs a timezone")


def footer_text(bundle_sha256: str) -> str:
    """The footer of every page; `compliance.report_sign` reads the hash back from it."""
    return f"caseledger audit report \u00b7 bundle SHA-256: {bundle_sha256}"


def render_report(report: ReportInput, out_path: Path) -> int:
    """Write the report to `out_path` (streamed; never built in memory) and return its page count."""
    pages = PageWriter(out_path, footer_text(report.bundle_sha256), title=f"caseledger audit report: {report.tenant}")
    try:
        _flow(pages, _cover(report))
        _flow(pages, _summary(report.verification))
        _entries(pages, report.entries)
        _disclosures(pages, report.disclosures, report.accesses)
        _flow(pages, _appendix(report.log_origin))
    except BaseException:
        pages.discard()
        raise
    return pages.finish()


_BODY = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=12.5, spaceAfter=4)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=8.5, leading=11)
_MONO = ParagraphStyle("mono", parent=_BODY, fontSize=8.5, leading=11, leftIndent=12)
_H1 = ParagraphStyle("h1", parent=_BODY, fontName=FONT_BOLD, fontSize=20, leading=26, spaceAfter=14)
_H2 = ParagraphStyle("h2", parent=_BODY, fontName=FONT_BOLD, fontSize=13, leading=17, spaceBefore=8, spaceAfter=6)


def _field(label: str, value: str) -> Paragraph:
    return Paragraph(f"<b>{markup(label)}</b>: {markup(value)}", _BODY)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _flow(pages: PageWriter, story: list[Flowable]) -> None:
    """Fill portrait pages with `story` until it is used up, splitting paragraphs across pages."""
    queue = list(story)
    width, height = _PORTRAIT
    while queue:
        pages.start_page(_PORTRAIT)
        frame = Frame(MARGIN, MARGIN, width - 2 * MARGIN, height - 2 * MARGIN, showBoundary=0)
        placed = False
        while queue:
            if frame.add(queue[0], pages.canvas, trySplit=1):
                queue.pop(0)
                placed = True
                continue
            parts = frame.split(queue[0], pages.canvas)
            if parts and frame.add(parts[0], pages.canvas, trySplit=1):
                queue[0:1] = parts[1:]
            elif not placed:  # not even an empty page holds it, and it cannot split: say so, never loop
                queue[0:1] = [] if getattr(queue[0], "caseledger_note", False) else [_too_large_note()]
            break
        pages.end_page()


def _too_large_note() -> Flowable:
    note = Paragraph("[This item is too large to lay out here; it is in the attached bundle.]", _SMALL)
    note.caseledger_note = True
    return note


def _cover(r: ReportInput) -> list[Flowable]:
    return [
        Spacer(1, 120),
        Paragraph("Audit trail export", _H1),
        _field("Tenant", r.tenant),
        _field("Log", r.log_origin),
        _field("Scope", r.scope),
        _field("Exported by", r.exported_by),
        _field("Generated at", _rfc3339(r.generated_at)),
        Spacer(1, 18),
        _field("Bundle SHA-256", r.bundle_sha256),
        Paragraph(
            f"The bundle <b>{BUNDLE_NAME}</b> is attached to this PDF. It holds every entry, proof and signature"
            " shown here; the appendix explains how to check it without any caseledger software. This PDF is"
            " signed (PAdES): a PDF reader shows whether it was changed after export.", _SMALL),
    ]


def _summary(v: VerificationSummary) -> list[Flowable]:
    story: list[Flowable] = [
        Paragraph("Verification summary", _H2),
        _field("Checkpoint size", f"{v.checkpoint_size} entries"),
        _field("Checkpoint root (hex)", v.root_hex),
        _field("Verifier key", v.key_name),
        _field("Key fingerprint", v.key_fingerprint),
    ]
    if v.anchor is None:
        story.append(_field("Anchor", "not anchored"))
    else:
        story += [
            _field("Anchor transaction", v.anchor.tx_hash),
            _field("Anchor block", str(v.anchor.block_number)),
            _field("Chain id", str(v.anchor.chain_id)),
        ]
    story.append(Paragraph("Result of verification at export time", _H2))
    story += [Paragraph(f"<b>{'[ok]' if ok else '[FAILED]'}</b> {markup(check)}", _BODY) for check, ok in v.results]
    if not v.results:
        story.append(Paragraph("No checks were recorded.", _BODY))
    return story


_ENTRY_COLUMNS = (
    Column("time", 120), Column("seq", 36), Column("kind", 52), Column("channel", 44), Column("actor", 72),
    Column("case", 54), Column("entry hash", 74),
)


def _entries(pages: PageWriter, entries: Iterable[EntryRow]) -> None:
    content_width = _LANDSCAPE[0] - 2 * MARGIN - sum(c.width for c in _ENTRY_COLUMNS)
    table = TableWriter(pages, "Entries", (*_ENTRY_COLUMNS, Column("content", content_width)), _LANDSCAPE)
    for e in entries:
        table.add((e.time, str(e.seq), e.kind, e.channel or "", e.actor or "", e.case or "",
                   e.entry_hash[:SHORT_HASH], _content_cell(e)))
    table.close("No entries in this scope.")


def _content_cell(e: EntryRow) -> str:
    if e.redacted is not None:
        text = f"[redacted: {e.redacted}]"
    elif e.content is None:
        text = "(content not included)"
    elif len(e.content) > MAX_CONTENT_CHARS:
        cut = len(e.content) - MAX_CONTENT_CHARS
        text = f"{e.content[:MAX_CONTENT_CHARS]}\n[... {cut} more characters; the full content is in the bundle]"
    else:
        text = e.content
    if e.no_commitment and e.redacted is None and e.content is not None:
        text += "\n[not verifiable (no commitment)]"
    return text


def _disclosures(pages: PageWriter, disclosures: Iterable[DisclosureRow], accesses: Iterable[AccessRow]) -> None:
    width = _LANDSCAPE[0] - 2 * MARGIN
    table = TableWriter(pages, "Accounting of disclosures", (
        Column("date", 120), Column("recipient", 130), Column("address", 150),
        Column("what was disclosed", width - 120 - 130 - 150 - 140), Column("purpose", 140)), _LANDSCAPE)
    for d in disclosures:
        table.add((d.date, d.recipient or "(not recorded)", d.address or "", d.description, d.purpose or ""))
    table.close("No disclosures in this scope and period.")
    table = TableWriter(pages, "Internal accesses", (
        Column("when", 120), Column("who", 140), Column("what", width - 120 - 140 - 180), Column("purpose", 180)),
        _LANDSCAPE)
    for a in accesses:
        table.add((a.when, a.who, a.what, a.purpose or ""))
    table.close("No internal accesses in this scope and period.")


def _appendix(origin: str) -> list[Flowable]:
    para = [Paragraph(text, _BODY) for text in _APPENDIX]
    return [
        Paragraph("Appendix: verifying this report independently", _H2),
        *para[:2],
        Paragraph('{"type": "caseledger.bundle", "v": 1, "manifest": {...}, "vkey": "...", "checkpoint": "...",'
                  ' "entries": [{"seq", "entry_hash", "header", "content", "salt"}, ...],'
                  ' "proof": {"range": {...}} or {"inclusion": [...]}, "anchors": [...]}', _MONO),
        *para[2:],
        Paragraph(f"With caseledger installed, the same checks are one command: <b>caseledger verify report.pdf</b>"
                  f" (the signature, the attachment and the bundle), or <b>caseledger verify {BUNDLE_NAME}"
                  f" --vkey K</b> with K the verifier key of log {markup(origin)} obtained from its operator.", _BODY),
    ]


_APPENDIX = (
    f"1. <b>The attachment.</b> Save the attached file <b>{BUNDLE_NAME}</b> (it is embedded with relationship"
    " /Source). Its SHA-256 must equal the value in the footer of every page.",
    "2. <b>The bundle</b> is JSON (DESIGN §9 of caseledger, type caseledger.bundle, version 1):",
    "3. <b>Entries.</b> Each header is canonicalised with RFC 8785 (JCS). Its entry hash is"
    " SHA-256(0x00 || JCS(header)), the RFC 9162 leaf hash. Each header's <i>prev</i> is the entry hash of the"
    " entry before it (64 zeros for seq 0), and <i>case_prev</i> links the entries of one case.",
    "4. <b>The tree.</b> Interior nodes are SHA-256(0x01 || left || right) (RFC 9162 §2.1). A contiguous scope"
    " carries a range proof (compact ranges: <i>left</i> are the peaks of the tree of <i>start</i> leaves,"
    " <i>right</i> the complete subtrees covering [end, size)); a selection carries an RFC 9162 inclusion proof"
    " per entry. Either must yield the root of the checkpoint.",
    "5. <b>The checkpoint</b> is a C2SP tlog-checkpoint (origin, size and base64 root, one per line) in a C2SP"
    " signed note: an Ed25519 signature line '— &lt;key name&gt; base64(4-byte key id || signature)', key id ="
    " the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key). Check it against the log's"
    " verifier key (<i>name+keyid+base64(0x01 || key)</i>) obtained from the operator, not only the one in"
    " the bundle.",
    "6. <b>Content.</b> Included content is checked against the header's <i>commit</i>: SHA-256(salt || content),"
    " with the bundle's salt and, for JSON content, its RFC 8785 bytes (else the decoded base64 bytes)."
    " Content marked redacted or erased is withheld on purpose; entries written before commitments existed"
    " are marked 'not verifiable (no commitment)'.",
    "7. <b>Anchors.</b> Where anchored, the anchor receipt's round proof leads from the leaf"
    " JCS({log, root, size}) to the round root stored on chain; the transaction and block named above can"
    " be looked up on any node of that chain.",
)
