"""Checking a report PDF offline: its PAdES signature, its attached bundle, and that the pages
name that very bundle.

Layers, as everywhere (STYLE §9): the signature over the file, then the attachment it protects,
then the SHA-256 printed on every page against the attachment's. The bundle's own cryptographic
verification is `verification.bundle_verify`'s; `verify_report` hands back the bundle's bytes for it.
A file that cannot be read as a PDF raises `ReportError`; a readable PDF that fails a check is
reported in `ReportCheck`, naming the check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import re
import zlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pikepdf
import pypdf
import pypdf.errors
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.misc import PdfError as PyHankoPdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import EmbeddedPdfSignature, SignatureCoverageLevel, async_validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko_certvalidator import ValidationContext

from compliance.errors import ReportError
from compliance.report_pdf import BUNDLE_NAME

__all__ = [
    "CHECK_ATTACHMENT",
    "CHECK_BUNDLE_HASH",
    "CHECK_COVERAGE",
    "CHECK_SIGNATURE",
    "CHECK_SIGNER",
    "Check",
    "ReportCheck",
    "verify_report",
]

CHECK_SIGNATURE = "signature"
CHECK_COVERAGE = "signature-covers-file"
CHECK_SIGNER = "signer"
CHECK_ATTACHMENT = "attachment"
CHECK_BUNDLE_HASH = "bundle-sha256"

#: pages whose text is read to compare the printed bundle SHA-256 (all of them in a shorter report)
PAGES_READ = 40
_PRINTED = re.compile(r"bundle SHA-256:\s*([0-9a-f]{64})")
#: what the parsers raise on bytes that are not the PDF they expect
_UNREADABLE = (PyHankoPdfError, pikepdf.PdfError, pypdf.errors.PyPdfError, SignatureValidationError, ValueError,
               KeyError, IndexError, TypeError, AttributeError, RecursionError, zlib.error)
T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ReportCheck:
    """The outcome of every check, the signer's subject, and the attached bundle (None when missing)."""

    checks: tuple[Check, ...]
    signer: str | None
    bundle: bytes | None
    bundle_sha256: str | None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


def verify_report(pdf_path: Path, *, trusted_certs: Sequence[x509.Certificate] | None,
                  allow_untrusted_signer: bool = False) -> ReportCheck:
    """Check the report PDF at `pdf_path`.

    The signature must be intact, cover every byte of the file (nothing edited or appended after
    signing) and, unless `allow_untrusted_signer`, come from a certificate equal to one of
    `trusted_certs`. The attachment `caseledger-bundle.json` must be there, and its SHA-256 must be
    the one printed on every page. Raises `ReportError` only when the file is not a readable PDF.
    """
    try:
        with open(pdf_path, "rb") as f:
            reader = PdfFileReader(f, strict=False)
            signatures = reader.embedded_signatures
            checks, signer = _signature_checks(signatures, trusted_certs or (), allow_untrusted_signer)
    except OSError as exc:
        raise ReportError(f"cannot read the report: {exc.strerror or type(exc).__name__}") from exc
    except _UNREADABLE as exc:
        raise ReportError(f"not a readable PDF ({type(exc).__name__})") from exc
    bundle = _attachment(pdf_path)
    digest = None if bundle is None else hashlib.sha256(bundle).hexdigest()
    if bundle is None:
        checks.append(Check(CHECK_ATTACHMENT, False, f"attachment {BUNDLE_NAME} is missing"))
    else:
        checks.append(Check(CHECK_ATTACHMENT, True, f"{BUNDLE_NAME}: {len(bundle)} bytes"))
        checks.append(_printed_hash_check(pdf_path, digest or ""))
    return ReportCheck(checks=tuple(checks), signer=signer, bundle=bundle, bundle_sha256=digest)


def _signature_checks(signatures: list[EmbeddedPdfSignature], trusted: Sequence[x509.Certificate],
                      allow_untrusted: bool) -> tuple[list[Check], str | None]:
    if not signatures:
        return [Check(CHECK_SIGNATURE, False, "no signature")], None
    if len(signatures) > 1:  # a later signature could vouch for changes made after ours
        return [Check(CHECK_SIGNATURE, False, f"{len(signatures)} signatures: a report carries exactly one")], None
    sig = signatures[0]
    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in trusted]
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    try:
        status = _run(async_validate_pdf_signature(sig, signer_validation_context=context))
    except _UNREADABLE as exc:
        return [Check(CHECK_SIGNATURE, False, f"the signature cannot be validated ({type(exc).__name__})")], None
    signer = sig.signer_cert.subject.human_friendly
    checks = [
        Check(CHECK_SIGNATURE, status.intact and status.valid,
              "intact and valid" if status.intact and status.valid
              else "invalid: the signed bytes were changed or the signature does not match them"),
        Check(CHECK_COVERAGE, status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
              "covers the whole file" if status.coverage == SignatureCoverageLevel.ENTIRE_FILE
              else "does not cover the whole file: bytes were added after signing"),
    ]
    der = sig.signer_cert.dump()
    if any(der == root.dump() for root in roots):
        checks.append(Check(CHECK_SIGNER, True, f"trusted: {signer}"))
    elif allow_untrusted:
        checks.append(Check(CHECK_SIGNER, True, f"not checked against a trusted certificate (allowed): {signer}"))
    else:
        checks.append(Check(CHECK_SIGNER, False, f"untrusted signer: {signer}"))
    return checks, signer


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion, also when called from inside a running event loop (e.g. an ASGI app)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _attachment(pdf_path: Path) -> bytes | None:
    try:
        with pikepdf.open(pdf_path) as pdf:
            spec = pdf.attachments.get(BUNDLE_NAME)
            return None if spec is None else spec.get_file().read_bytes()
    except _UNREADABLE as exc:
        raise ReportError(f"the report's attachments are unreadable ({type(exc).__name__})") from exc


def _pages_to_read(count: int) -> list[int]:
    """Every page of a short report; of a long one, `PAGES_READ` spread evenly from the first to the last.

    Why not all: pypdf needs about 0.1 s to read a page of the entries table, and a report of
    100,000 entries has thousands. The signature already proves that every page is as it was signed;
    this check ties the attachment to what the pages print, and a report prints one footer on all.
    """
    if count <= PAGES_READ:
        return list(range(count))
    return sorted({round(i * (count - 1) / (PAGES_READ - 1)) for i in range(PAGES_READ)})


def _printed_hash_check(pdf_path: Path, digest: str) -> Check:
    try:
        with open(pdf_path, "rb") as f:
            reader = pypdf.PdfReader(f)
            indexes = _pages_to_read(len(reader.pages))
            for index in indexes:
                printed = _PRINTED.findall(reader.pages[index].extract_text())
                if not printed:
                    return Check(CHECK_BUNDLE_HASH, False, f"page {index + 1} prints no bundle SHA-256")
                if any(p != digest for p in printed):
                    return Check(CHECK_BUNDLE_HASH, False, f"SHA-256 mismatch: page {index + 1} prints {printed[0]},"
                                                           f" the attachment's is {digest}")
            return Check(CHECK_BUNDLE_HASH, True,
                         f"printed on the pages read ({len(indexes)} of {len(reader.pages)})")
    except _UNREADABLE as exc:
        raise ReportError(f"the report's pages are unreadable ({type(exc).__name__})") from exc
