"""The parts of `verification.bundle_verify.verify_bundle`: its outcomes, the checkpoint, the proofs, the anchors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verification.anchor import check_anchor_receipt
from verification.bundle import Bundle, BundleInclusion, BundleRange
from verification.bundle_fields import _rfc3339
from verification.bundle_result import BUNDLE_CHECKS, BundleCheck
from verification.checkpoint import Checkpoint, parse_verifier_key
from verification.compact import verify_range
from verification.document_receipt import _checkpoint_as_stated
from verification.entry import canonical_json, format_time, parse_header
from verification.errors import FormatError, ProofError, VerificationError
from verification.merkle import HASH_SIZE, verify_inclusion
from verification.receipt import open_receipt_checkpoint
from verification.trust import Trust


class _Outcomes:
    """The first failure of each check (with how many there were), and each passed check's detail."""

    __slots__ = ("count", "details", "failed", "skipped")

    def __init__(self) -> None:
        self.failed: dict[str, VerificationError] = {}
        self.count: dict[str, int] = {}
        self.details: dict[str, str] = {}
        self.skipped: dict[str, str] = {}

    def fail(self, name: str, exc: VerificationError) -> None:
        if name not in self.failed:
            exc.fields.setdefault("check", name)
            self.failed[name] = exc
        self.count[name] = self.count.get(name, 0) + 1

    def checks(self) -> tuple[BundleCheck, ...]:
        out = []
        for name in BUNDLE_CHECKS:
            exc = self.failed.get(name)
            if exc is not None:
                seq = exc.fields.get("seq")
                out.append(BundleCheck(name, False, " ".join(exc.message.split()),
                                       seq if type(seq) is int else None, self.count[name]))
            elif name in self.skipped:
                out.append(BundleCheck(name, False, f"not checked: {self.skipped[name]}"))
            else:
                out.append(BundleCheck(name, True, self.details.get(name, "")))
        return tuple(out)


def _open_checkpoint(b: Bundle, trust: Trust, root: bytes | None, out: _Outcomes) -> tuple[Checkpoint | None, bool]:
    """The checkpoint, verified if it can be (else as stated, for the checks that follow), and whether trusted."""
    log = b.manifest.log
    try:
        if trust.insecure_embedded_key and not trust.keys_for(log) and parse_verifier_key(b.vkey).name != log:
            raise VerificationError(f"the bundle's own key is for {parse_verifier_key(b.vkey).name!r}, not {log!r}")
        checkpoint, key_trusted = open_receipt_checkpoint(b.checkpoint, log, b.vkey, trust)
        if root is not None and (not isinstance(root, bytes) or len(root) != HASH_SIZE or root != checkpoint.root):
            raise ProofError("the checkpoint's root is not the trusted root", expected=root, computed=checkpoint.root)
    except VerificationError as exc:
        out.fail("checkpoint_signature", exc)
        try:
            return _checkpoint_as_stated(b.checkpoint), False
        except FormatError:
            return None, False
    out.details["checkpoint_signature"] = (
        f"signed by a trusted key of {log}, tree size {checkpoint.size}" if key_trusted
        else f"signed by the bundle's own key (not trusted), tree size {checkpoint.size}")
    return checkpoint, key_trusted


def _scope_bounds(scope: Mapping[str, Any]) -> tuple[int, int | None, str | None, str | None]:
    """The seq range and the time window of a scope, times in the header form (fixed width: string order)."""
    start, end = scope.get("start", 0), scope.get("end")
    after = format_time(_rfc3339(scope["from"], "manifest.scope.from")) if "from" in scope else None
    before = format_time(_rfc3339(scope["to"], "manifest.scope.to")) if "to" in scope else None
    return start, end, after, before


def _parse_again(header: dict[str, Any], data: bytes, seq: int, checked_time: str, error: VerificationError
                 ) -> tuple[dict[str, Any] | None, bytes, VerificationError]:
    """After `parse_header` refused the fast encoding of a header: the full RFC 8785 encoder has the last word.

    The sequencer's encoder writes a float as Python does, where JCS may write an integer (``1.0``
    is ``1``). Returns the parsed header (None if it still is not one), the bytes the entry hash is
    of, and the error to report.
    """
    try:
        full = canonical_json(header)
    except FormatError:
        return None, data, error
    if full == data:
        return None, data, error
    try:
        return parse_header(full, seq=seq, checked_time=checked_time), full, error
    except VerificationError as exc:
        return None, full, exc


def _check_range(b: Bundle, r: BundleRange, checkpoint: Checkpoint, leaves: list[bytes], out: _Outcomes) -> None:
    """The entries are exactly [start, end), and they fold with the proof to the checkpoint's root."""
    expected = r.start
    for entry in b.entries:
        if expected == r.end:
            out.fail("proof", ProofError(f"entry {entry.seq}: beyond the range proof's entries [{r.start}, {r.end})",
                                         seq=entry.seq))
            return
        if entry.seq != expected:
            out.fail("proof", ProofError(f"entry {expected}: missing: the range proof is for entries [{r.start}, "
                                         f"{r.end}) and the bundle holds entry {entry.seq} in its place",
                                         seq=expected))
            return
        expected += 1
    if expected != r.end:
        out.fail("proof", ProofError(f"entry {expected}: missing: the range proof is for entries [{r.start}, "
                                     f"{r.end}) and the bundle ends before it", seq=expected))
        return
    try:
        verify_range(r.start, r.end, checkpoint.size, leaves, [bytes.fromhex(h) for h in r.left],
                     [bytes.fromhex(h) for h in r.right], checkpoint.root)
    except ProofError as exc:
        out.fail("proof", exc)
        return
    out.details["proof"] = f"entries [{r.start}, {r.end}) are in the tree of size {checkpoint.size}"


def _check_inclusions(b: Bundle, proofs: tuple[BundleInclusion, ...], checkpoint: Checkpoint, leaves: list[bytes],
                      out: _Outcomes) -> None:
    by_seq: dict[int, BundleInclusion] = {}
    for p in proofs:
        if p.seq in by_seq:
            out.fail("proof", ProofError(f"entry {p.seq}: two inclusion proofs", seq=p.seq))
        by_seq[p.seq] = p
    size, root = checkpoint.size, checkpoint.root
    for entry, leaf in zip(b.entries, leaves, strict=True):
        seq = entry.seq
        found = by_seq.pop(seq, None)
        if found is None:
            out.fail("proof", ProofError(f"entry {seq}: no inclusion proof", seq=seq))
            continue
        try:
            verify_inclusion(seq, size, leaf, [bytes.fromhex(h) for h in found.proof], root)
        except ProofError as exc:
            exc.fields["seq"] = seq
            exc.message = f"entry {seq}: {exc.message}"
            out.fail("proof", exc)
    for seq in sorted(by_seq):
        out.fail("proof", ProofError(f"entry {seq}: an inclusion proof for an entry not in the bundle", seq=seq))
    out.details["proof"] = f"{len(b.entries)} inclusion proofs lead to the root of the tree of size {size}"


def _check_anchors(b: Bundle, trust: Trust, checkpoint: Checkpoint | None,
                   out: _Outcomes) -> tuple[dict[str, Any], ...]:
    log = b.manifest.log
    results = []
    for i, a in enumerate(b.anchors):
        try:
            if a.log != log:
                raise VerificationError(f"anchors[{i}]: the anchor is of log {a.log!r}, the bundle of {log!r}")
            anchored, key_trusted = open_receipt_checkpoint(a.checkpoint, log, b.vkey, trust)
            result = check_anchor_receipt(a, anchored, key_trusted=key_trusted)
            if checkpoint is not None and anchored.size == checkpoint.size and anchored.root != checkpoint.root:
                raise ProofError(f"anchors[{i}]: the anchored checkpoint has the bundle's tree size and another root",
                                 expected=checkpoint.root, computed=anchored.root)
        except VerificationError as exc:
            if not exc.message.startswith(f"anchors[{i}]"):
                exc.message = f"anchors[{i}]: {exc.message}"
            out.fail("anchors", exc)
            continue
        results.append(result)
    out.details["anchors"] = (
        "no anchors" if not b.anchors else
        f"{len(results)} anchor receipt{'s' if len(results) != 1 else ''} verified offline (rounds "
        f"{', '.join(str(r['round']['id']) for r in results)}; whether they are on chain is not checked)")
    return tuple(results)
