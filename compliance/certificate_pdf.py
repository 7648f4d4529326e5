"""The erasure certificate as a PDF page (DESIGN §10): what the person who asked to be forgotten can
read, signed (PAdES) with the instance's certificate like an export, and carrying the signed JSON
certificate as its last lines so that a machine can check it with `caseledger verify`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, XPreformatted

from compliance.report_layout import FONT, FONT_BOLD, markup, register_fonts
from compliance.report_sign import InstanceSigner, sign_report

__all__ = ["render_certificate_pdf"]

_BODY = ParagraphStyle("cert-body", fontName=FONT, fontSize=10, leading=14, spaceAfter=4)
_H1 = ParagraphStyle("cert-h1", parent=_BODY, fontName=FONT_BOLD, fontSize=18, leading=24, spaceAfter=12)
_MONO = ParagraphStyle("cert-mono", parent=_BODY, fontName="Courier", fontSize=6, leading=7.2)


def render_certificate_pdf(certificate: dict[str, Any], out_path: Path, signer: InstanceSigner) -> None:
    """Write the certificate's page to `out_path`, signed; every value is escaped before layout."""
    register_fonts()
    entries = certificate.get("entries", [])
    receipt = certificate.get("erasure_receipt", {})

    def field(label: str, value: object) -> Paragraph:
        return Paragraph(f"<b>{markup(label)}</b>: {markup(str(value))}", _BODY)

    story = [
        Paragraph("Erasure certificate", _H1),
        Paragraph(markup("The content of the entries below was erased by destroying every copy of the keys "
                         "that encrypted it (crypto-shredding), and the link from your reference to them was "
                         "deleted. The entries' headers and proofs remain, so the log still verifies; nothing "
                         "in them names you."), _BODY),
        Spacer(1, 8),
        field("Log", certificate.get("log")),
        field("Request", certificate.get("request")),
        field("Erased at", certificate.get("erased_at")),
        field("Subject (HMAC-SHA256 of your reference under your salt)", certificate.get("subject_digest")),
        field("Entries erased", f"{len(entries)}: {', '.join(map(str, entries[:200]))}"
                                + (" …" if len(entries) > 200 else "")),
        field("Recorded by entry", f"{receipt.get('seq')} ({receipt.get('entry_hash')})"),
        Spacer(1, 8),
        Paragraph(markup("Check it: caseledger verify certificate.json --vkey <the log's verifier key>; "
                         "the JSON below is that file."), _BODY),
        XPreformatted(json.dumps(certificate, indent=1).replace("&", "&amp;").replace("<", "&lt;")
                      .replace(">", "&gt;"), _MONO),
    ]
    drawn = out_path.with_suffix(".drawn.pdf")
    try:
        SimpleDocTemplate(str(drawn), pagesize=A4, title="caseledger erasure certificate").build(story)
        sign_report(drawn, out_path, signer, reason="caseledger erasure certificate")
    finally:
        drawn.unlink(missing_ok=True)
