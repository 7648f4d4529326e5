"""``caseledger verify``: offline verification of receipts and proofs — no server, no database.

Only what the verifier trusts counts: log keys given with ``--vkey`` or ``--trust`` (a file of
verifier keys), or a tree root given with ``--root``. ``--insecure-embedded-key`` accepts a
receipt's own key, and the result then says ``key_trusted: false``.

An anchor receipt, or a receipt carrying an anchor, is checked offline; with ``--rpc URL`` also
online, against the chain (DESIGN §6): the result's ``checks`` says which ran.

A document receipt (DESIGN §8) is checked without its file (``file_checked: false``), or with
``--file PATH`` against the file too: then ``checks`` lists each named check, and a failure is one
line naming the check that failed (``caseledger: commitment: …``), exit 1.

A bundle (DESIGN §9) is checked whole: the result on stdout lists every check with its outcome and
the counts of entries and of verified, redacted and unverifiable content (as JSON like every
command's output; ``--summary``: as lines of text, each check ok or FAIL), and a failure is one line
on stderr naming the first failed check and its seq, exit 1.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

import typer

from api.cli.common import app, emit, fail, read_input
from verification.anchor import ANCHOR_RECEIPT_TYPE, AnchorReceipt
from verification.bundle import BUNDLE_TYPE
from verification.bundle_verify import verify_bundle
from verification.document_receipt import DOCUMENT_RECEIPT_TYPE, verify_file
from verification.documents import verify_document
from verification.errors import FormatError, VerificationError
from verification.trust import Trust

_HEX_ROOT = re.compile(r"[0-9a-fA-F]{64}\Z")
#: a document is read this much at a time, never whole
_CHUNK = 64 * 1024


def _trust(vkeys: list[str], trust_file: str | None, insecure: bool) -> Trust:
    """The keys given on the command line; a bad one is a usage error (exit 2)."""
    try:
        given = Trust.of(*vkeys)
    except FormatError as exc:
        fail(f"--vkey: {exc.message}", 2)
    verifiers = given.verifiers
    if trust_file is not None:
        try:
            verifiers += Trust.from_file(trust_file).verifiers
        except FormatError as exc:
            fail(f"--trust: {exc.message}", 2)
    return Trust(verifiers, insecure_embedded_key=insecure)


@app.command()
def verify(
    file: Annotated[str, typer.Argument(help="receipt or proof JSON, or - for stdin")],
    vkey: Annotated[list[str] | None, typer.Option(help="a trusted verifier key of the log (repeatable)")] = None,
    trust: Annotated[str | None, typer.Option("--trust", help="file of trusted verifier keys, one a line")] = None,
    root: Annotated[str | None, typer.Option(help="trusted tree root, 64 hex digits")] = None,
    insecure_embedded_key: Annotated[bool, typer.Option(
        "--insecure-embedded-key", help="accept a receipt's own key (proves only self-consistency)")] = False,
    rpc: Annotated[str | None, typer.Option(help="Ethereum JSON-RPC URL: also check the anchor on chain")] = None,
    confirmations: Annotated[int, typer.Option(min=1, help="with --rpc: confirmations the anchor needs")] = 1,
    contract: Annotated[str | None, typer.Option(
        help="the operator's published LedgerAnchor address: the anchor must be on that contract")] = None,
    document_file: Annotated[str | None, typer.Option(
        "--file", help="the document a document receipt is for: check it against the receipt too")] = None,
    cert: Annotated[list[str] | None, typer.Option(
        help="a report PDF: the instance's signing certificate (PEM) to trust (repeatable)")] = None,
    any_signer: Annotated[bool, typer.Option(
        "--insecure-any-signer", help="a report PDF: accept a signature by any certificate (says so)")] = False,
    summary: Annotated[bool, typer.Option(
        "--summary", help="a bundle: print a readable summary (each check ok or FAIL, the counts), not JSON")] = False,
) -> None:
    """Verify a receipt, proof, anchor receipt or bundle offline against trusted keys or a trusted root; with
    --rpc, also the anchor on chain (on the contract named by --contract, which you should take from
    the operator's published configuration, not from the receipt). With --file, also the document
    a document receipt is for."""
    logging.getLogger("contracts").setLevel(logging.ERROR)  # one line per error: no retry warnings
    trusted = _trust(vkey or [], trust, insecure_embedded_key)
    if root is not None and not _HEX_ROOT.match(root):
        fail("--root: a tree root is 64 hex digits", 2)
    if file != "-" and _is_pdf(file):
        emit(_verify_report(file, trusted, cert or [], any_signer))
        return
    try:
        document = json.loads(read_input(file))
    except RecursionError:
        raise FormatError(f"{file} nests too deeply to be a caseledger document") from None
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"{file} is not JSON") from None
    if not isinstance(document, dict):
        raise FormatError(f"{file} is not a JSON object")
    trusted_root = None if root is None else bytes.fromhex(root)
    if document.get("type") == BUNDLE_TYPE:
        if document_file is not None or rpc is not None:
            fail("--file and --rpc are not for bundles (their anchors are checked offline)", 2)
        _verify_bundle(document, trusted, trusted_root, summary)
        return
    if document_file is None:
        result = verify_document(document, trusted, root=trusted_root)
    elif document.get("type") != DOCUMENT_RECEIPT_TYPE:
        fail("--file: only a document receipt has a file to check", 2)
    else:
        result = _verify_file(document, trusted, document_file, trusted_root)
    result.setdefault("checks", ["offline"])
    if rpc is not None:
        anchor = _anchor_of(document)
        if anchor is None:
            fail("--rpc: this document carries no anchor to check on chain", 2)
        if contract is not None and contract.lower() != anchor.contract.lower():
            raise VerificationError(f"the anchor is on contract {anchor.contract}, not on the trusted {contract}")
        from contracts.online import verify_anchor_online  # web3 only when asked for: `verify` starts fast

        result["online"] = verify_anchor_online(
            rpc, chain_id=anchor.chain_id, contract=anchor.contract, round_id=anchor.round_id,
            root=bytes.fromhex(anchor.round_root), leaves=anchor.round_size, tx_hash=anchor.tx, block=anchor.block,
            block_hash=anchor.block_hash, min_confirmations=confirmations)
        result["online"]["contract_trusted"] = contract is not None
        if result.get("file_checked"):  # the named checks of a document and its file
            result["checks"] = [*result["checks"], {
                "name": "online", "ok": True,
                "detail": f"round {anchor.round_id} is on chain {anchor.chain_id} at {anchor.contract}"}]
        else:
            result["checks"] = [*result["checks"], "online"]
    emit(result)


def _is_pdf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(5) == b"%PDF-"
    except OSError:
        return False


def _verify_report(path: str, trusted: Trust, cert_files: list[str], any_signer: bool) -> dict[str, Any]:
    """An exported report: its PDF signature, its attachment, then the bundle it carries."""
    from cryptography import x509

    from compliance.report_verify import CHECK_SIGNER, verify_report  # pyHanko only for a PDF
    from verification.bundle_verify import verify_bundle

    for name in ("pypdf", "pyhanko", "pyhanko_certvalidator"):  # a damaged PDF is one line, ours
        logging.getLogger(name).setLevel(logging.CRITICAL)

    certs = []
    for name in cert_files:
        try:
            with open(name, "rb") as f:
                certs.append(x509.load_pem_x509_certificate(f.read()))
        except (OSError, ValueError) as exc:
            fail(f"--cert: cannot read a PEM certificate from {name} ({type(exc).__name__})", 2)
    if not certs and not any_signer:
        fail("a report PDF is checked against the instance's certificate: give --cert FILE "
             "(or --insecure-any-signer)", 2)
    from pathlib import Path

    report = verify_report(Path(path), trusted_certs=certs, allow_untrusted_signer=any_signer)
    out: dict[str, Any] = {"type": "caseledger.report", "signer": report.signer,
                           "signer_trusted": bool(certs) and all(c.ok for c in report.checks
                                                                 if c.name == CHECK_SIGNER),
                           "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks]}
    failed = [f"{c.name}: {c.detail}" for c in report.failures]
    if report.bundle is not None:
        try:
            bundle = verify_bundle(json.loads(report.bundle), trusted, collect=True)
        except (ValueError, RecursionError):
            raise FormatError("the attached bundle is not JSON") from None
        out["bundle"] = bundle.to_json()
        failed += [f"bundle {c.name}: {c.detail}" for c in bundle.failed]
    out["ok"] = not failed
    if failed:
        emit(out)
        fail("; ".join(" ".join(f.split()) for f in failed[:5]), 1)
    return out


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _verify_file(document: dict[str, Any], trusted: Trust, path: str, root: bytes | None) -> dict[str, Any]:
    """A document receipt and its file; a failed check is one line naming it (exit 1)."""
    try:
        with open(path, "rb") as stream:
            return verify_file(document, trusted, _chunks(stream), root=root)
    except OSError as exc:
        fail(f"--file: cannot read {path}: {exc.strerror}", 2)
    except VerificationError as exc:
        check = exc.fields.get("check")
        if check is None:  # the receipt itself is malformed: not a check that failed
            raise
        fail(f"{check}: {' '.join(exc.message.split())}", 1)


def _verify_bundle(document: dict[str, Any], trusted: Trust, root: bytes | None, summary: bool) -> None:
    """Every check of a bundle on stdout; a failure is one line naming the first failed check (exit 1)."""
    result = verify_bundle(document, trusted, root=root, collect=True)
    if summary:
        sys.stdout.write(result.summary())
        sys.stdout.flush()
    else:
        emit(result.to_json())
    if result.failed:
        first = result.failed[0]
        fail(f"{first.name}: {first.detail}", 1)


def _anchor_of(document: dict[str, object]) -> AnchorReceipt | None:
    """The anchor receipt a verified document is or carries (a document receipt: in its receipt)."""
    if document.get("type") == ANCHOR_RECEIPT_TYPE:
        return AnchorReceipt.from_json(document)
    if document.get("type") == DOCUMENT_RECEIPT_TYPE:
        receipt = document.get("receipt")
        document = receipt if isinstance(receipt, dict) else {}
    anchor = document.get("anchor")
    if isinstance(anchor, dict):
        return AnchorReceipt.from_json(anchor.get("receipt"))
    return None
