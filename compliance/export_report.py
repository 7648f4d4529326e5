"""An export's PDF (DESIGN §9): the report rendered from the rows the export wrote, the bundle attached,
and the whole signed (PAdES) with the instance's certificate.

In development the instance's signing key and self-signed certificate are made in the data directory
on first use (and said so loudly, as every development key); production names them in
CASELEDGER_REPORT_KEY_FILE and CASELEDGER_REPORT_CERT_FILE.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from compliance.disclosures import Disclosures
from compliance.report_pdf import (
    AccessRow,
    AnchorSummary,
    DisclosureRow,
    EntryRow,
    ReportInput,
    VerificationSummary,
    render_report,
)
from compliance.report_sign import InstanceSigner, attach_bundle, create_dev_certificate, instance_signer, sign_report
from ledger.checkpoints import SignedCheckpoint
from ledger.errors import ConfigurationError, NotFound
from ledger.settings import Mode
from verification.anchor import AnchorReceipt
from verification.bundle import BundleManifest

if TYPE_CHECKING:
    from compliance.exports import ExportJob
    from ledger.service import Ledger

__all__ = ["render_export_pdf", "report_signer"]


def report_signer(ledger: Ledger) -> InstanceSigner:
    """The instance's report signer; made on first use in development mode."""
    key_path, cert_path = ledger.settings.report_signing_paths
    if not key_path.exists() and not cert_path.exists():
        if ledger.settings.mode is Mode.PRODUCTION:
            raise ConfigurationError("exporting a PDF in production mode needs CASELEDGER_REPORT_KEY_FILE and "
                                     "CASELEDGER_REPORT_CERT_FILE (the instance's signing key and certificate)")
        key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_dev_certificate(ledger.settings.instance, key_path, cert_path)
        print(f"WARNING: development mode generated an UNPROTECTED report signing key at {key_path} and a "
              f"self-signed certificate at {cert_path}. Production signs reports with the instance's own.",
              file=sys.stderr, flush=True)
    return instance_signer(key_path, cert_path)


def _rows(rows: IO[str]) -> Iterator[EntryRow]:
    for line in rows:
        time, seq, kind, channel, actor, case, entry_hash, shown, redacted, no_commitment = json.loads(line)
        yield EntryRow(time, seq, kind, channel, actor, case, entry_hash[:16], shown, redacted, no_commitment)


def _scope_text(scope: dict[str, Any]) -> str:
    if "case" in scope:
        return f"case {scope['case']}"
    if "subject" in scope:
        return f"subject {scope['subject']}"
    if "start" in scope:
        return f"entries {scope['start']} to {scope['end'] - 1}"
    return f"entries written from {scope['from']} until {scope['to']}"


def _fingerprint(vkey: str) -> str:
    """SHA-256 of the verifier key (its note form, as in the bundle), as the report prints it."""
    return hashlib.sha256(vkey.encode()).hexdigest()[:32]


def _accounting(ledger: Ledger, tenant: str, scope: dict[str, Any]
                ) -> tuple[list[DisclosureRow], list[AccessRow]]:
    if "case" not in scope and "subject" not in scope:
        return [], []
    try:
        report = Disclosures(ledger).report(tenant, case=scope.get("case"), subject=scope.get("subject"))
    except NotFound:
        return [], []
    disclosures = [DisclosureRow(row.time, row.recipient, None, f"{row.event}: document "
                                 f"{row.document.document_id} ({row.document.size} bytes)", row.purpose)
                   for row in report.disclosures]
    accesses = [AccessRow(row.time, row.actor, f"{row.scope or 'entries'} {row.case or ''} "
                                               f"{', '.join(map(str, row.entries[:20]))}".strip(), row.purpose)
                for row in report.accesses]
    return disclosures, accesses


def render_export_pdf(ledger: Ledger, tenant: str, job: ExportJob, manifest: BundleManifest, pinned: SignedCheckpoint,
                      anchors: Sequence[AnchorReceipt], summary: dict[str, Any], rows: IO[str], bundle_path: Path,
                      pdf_path: Path) -> None:
    """Render, attach and sign `pdf_path` (temporary files beside it are removed)."""
    signer = report_signer(ledger)
    context = ledger.tenants.get(tenant)
    anchor = anchors[0] if anchors else None
    results = [(f"checkpoint of {pinned.size} entries signed by the log's key", True),
               (f"{summary['entries']} entry hashes, the proof to the checkpoint, the case chain",
                not summary["failures"]),
               (f"{summary['content_verified']} contents match their commitments "
                f"({summary['no_commitment']} without a commitment, {summary['redacted']} redacted, "
                f"{summary['erased']} erased)", not summary["failures"])]
    results += [(failure, False) for failure in summary["failures"]]
    disclosures, accesses = _accounting(ledger, tenant, job.scope)
    report = ReportInput(
        log_origin=context.origin, tenant=tenant, scope=_scope_text(job.scope), exported_by=job.created_by,
        generated_at=datetime.fromisoformat(manifest.generated_at),
        verification=VerificationSummary(
            pinned.size, pinned.root.hex(), context.origin, _fingerprint(context.vkey),
            AnchorSummary(anchor.tx, anchor.block, anchor.chain_id) if anchor is not None else None, tuple(results)),
        entries=_rows(rows), disclosures=disclosures, accesses=accesses, bundle_sha256=summary["bundle_sha256"])
    drawn = pdf_path.with_suffix(".drawn.pdf")
    attached = pdf_path.with_suffix(".attached.pdf")
    try:
        render_report(report, drawn)
        attach_bundle(drawn, bundle_path, attached)
        sign_report(attached, pdf_path, signer, location=ledger.settings.instance)
    finally:
        drawn.unlink(missing_ok=True)
        attached.unlink(missing_ok=True)
