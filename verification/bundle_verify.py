"""`verify_bundle`: check a bundle (`verification.bundle`) offline, every check in one pass over its entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verification.bundle import Bundle, BundleRange
from verification.bundle_checks import (
    _check_anchors,
    _check_inclusions,
    _check_range,
    _open_checkpoint,
    _Outcomes,
    _parse_again,
    _scope_bounds,
)
from verification.bundle_result import BUNDLE_CHECKS, BundleResult, _scope_text
from verification.document_receipt import file_commitment
from verification.entry import ZERO_HASH, canonical_json, encode_header, parse_header
from verification.errors import ChainError, FormatError, ProofError, VerificationError
from verification.merkle import leaf_hash
from verification.trust import Trust

__all__ = ["BUNDLE_CHECKS", "BundleResult", "verify_bundle"]


def verify_bundle(bundle: Bundle | Mapping[str, Any], trust: Trust, *, root: bytes | None = None,
                  collect: bool = False) -> BundleResult:
    """Check a bundle offline; by default raise the first failed check, with `collect` report them all.

    The checks are named as `BUNDLE_CHECKS`:

    - ``checkpoint_signature``: the checkpoint is signed by a key `trust` holds for
      ``manifest.log`` (or, with ``insecure_embedded_key`` and none trusted, by the bundle's
      ``vkey``: then ``key_trusted`` is false), its origin is ``manifest.log``, and its root is
      `root` if one is given.
    - ``headers``: every header is a canonical version-1 header (`parse_header`) of
      ``manifest.log`` at the entry's seq. ``entry_hashes``: ``entry_hash`` is SHA-256(0x00 ‖
      JCS(header)).
    - ``order``: seqs strictly increase (an entry twice fails here). ``scope``: every entry lies in
      ``manifest.scope`` (its case, subject, seq range, time window).
    - ``proof``: a range proof's entries are exactly seqs [start, end) and, with the left peaks
      and right subtrees, fold to the checkpoint's root at its size; or every entry has exactly
      one inclusion proof, leading to that root.
    - ``hash_chain``: ``prev`` links each entry to the one before it wherever both are in the
      bundle (entry 0 to 64 zeros), and times do not go backwards.
    - ``case_chain``: in a case-scoped bundle, each entry's ``case_prev`` is the previous bundle
      entry's hash and the first is null; in a range, each case's links within it (from the
      case's first entry when the range starts at 0). Elsewhere it does not apply.
    - ``content``: given content matches the header's ``commit`` with its salt; content of an
      entry without a commitment is counted as not verifiable, a redaction as redacted; an entry
      with a commitment and nothing at all in a bundle that includes content fails.
    - ``anchors``: each anchor receipt is of this log, verifies offline under the same keys as
      the checkpoint (`verification.anchor.check_anchor_receipt`), and if its checkpoint is of the
      same size as the bundle's, has the same root.

    Every check runs whatever the others found (against the checkpoint as stated if its
    signature failed), so a collected result says independently what holds. Without `collect`
    the first failed check in that order is raised: a `VerificationError` subclass with
    ``fields["check"]`` and, for an entry, ``fields["seq"]``. A bundle that does not parse raises
    `FormatError` either way.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.from_json(bundle)
    manifest = b.manifest
    log = manifest.log
    out = _Outcomes()
    fail = out.fail
    checkpoint, key_trusted = _open_checkpoint(b, trust, root, out)

    scope = manifest.scope
    case_scope: str | None = scope.get("case")
    subject_scope: str | None = scope.get("subject")
    lowest, beyond, after, before = _scope_bounds(scope)
    bounded = "start" in scope or "end" in scope or "from" in scope or "to" in scope
    proof = b.proof
    contiguous = isinstance(proof, BundleRange)
    from_first = isinstance(proof, BundleRange) and proof.start == 0
    include = manifest.include_content

    leaves: list[bytes] = []
    add_leaf = leaves.append
    redacted: list[int] = []
    unverifiable: list[int] = []
    verified = absent = links = case_links = 0
    last_seq = -1
    last_hash: str | None = None
    last_time = ""
    case_head: str | None = None
    case_heads: dict[str, str] = {}

    for entry in b.entries:
        seq = entry.seq
        if seq <= last_seq:
            fail("order", ChainError(f"entry {seq} is in the bundle twice" if seq == last_seq
                                     else f"entry {seq} comes after entry {last_seq}", seq=seq))
        header = entry.header
        try:
            try:
                data = encode_header(header)
            except (KeyError, TypeError, RecursionError):  # not shaped like a header: the full encoder decides
                data = canonical_json(header)
        except FormatError as exc:
            fail("headers", ChainError(f"entry {seq}: header has no canonical form: {exc.message}", seq=seq))
            add_leaf(bytes.fromhex(entry.entry_hash))  # the proof can still be checked, for what it is
            last_seq, last_hash = seq, None
            continue
        h: dict[str, Any] | None
        try:
            h = parse_header(data, seq=seq, checked_time=last_time)
        except VerificationError as exc:
            h, data, error = _parse_again(header, data, seq, last_time, exc)
        digest = leaf_hash(data)
        hex_digest = digest.hex()
        add_leaf(digest)
        if hex_digest != entry.entry_hash:
            fail("entry_hashes", ProofError(f"entry {seq}: entry_hash is not the hash of its header", seq=seq,
                                            expected=bytes.fromhex(entry.entry_hash), computed=digest))
        if h is None:
            fail("headers", error if error.fields.get("seq") == seq else ChainError(error.message, seq=seq))
            # the links to it are still checked against what it hashes to
            raw_case = header.get("case")
            if case_scope is not None:
                case_head = hex_digest
            elif isinstance(raw_case, str):
                case_heads[raw_case] = hex_digest
            last_seq, last_hash = seq, hex_digest
            continue
        if h["log"] != log:
            fail("headers", ChainError(f"entry {seq}: header is of log {h['log']!r}, the bundle of {log!r}", seq=seq))
        if h["seq"] != seq:
            fail("headers", ChainError(f"entry {seq}: header says seq {h['seq']}", seq=seq))

        prev = h["prev"]
        if seq == last_seq + 1 and last_hash is not None:
            links += 1
            if prev != last_hash:
                fail("hash_chain", ChainError(f"entry {seq}: prev does not link to entry {last_seq}", seq=seq))
        elif seq == 0 and prev != ZERO_HASH:
            fail("hash_chain", ChainError("entry 0: prev is not 64 zeros", seq=seq))
        time = h["time"]
        if time < last_time:
            fail("hash_chain", ChainError(f"entry {seq}: time goes backwards from entry {last_seq}", seq=seq))

        case = h["case"]
        if case_scope is not None:
            if case != case_scope:
                fail("scope", ChainError(f"entry {seq}: of case {case!r}, not of {case_scope!r}", seq=seq))
            else:
                if h["case_prev"] != case_head:
                    fail("case_chain", ChainError(
                        f"entry {seq}: case_prev does not link to the case's previous entry in the bundle"
                        if case_head is not None else
                        f"entry {seq}: the case's first entry in the bundle is not its first (case_prev is set)",
                        seq=seq))
                case_links += case_head is not None
                case_head = hex_digest
        elif contiguous:
            if case is None:
                if h["case_prev"] is not None:
                    fail("case_chain", ChainError(f"entry {seq}: case_prev is set but there is no case", seq=seq))
            else:
                head = case_heads.get(case)
                if (head is not None or from_first) and h["case_prev"] != head:
                    fail("case_chain", ChainError(
                        f"entry {seq}: case_prev does not link to the case's previous entry", seq=seq))
                case_links += head is not None
                case_heads[case] = hex_digest
        if subject_scope is not None and h["subject"] != subject_scope:
            fail("scope", ChainError(f"entry {seq}: of subject {h['subject']!r}, not of {subject_scope!r}", seq=seq))
        if bounded and not (lowest <= seq and (beyond is None or seq < beyond) and (after is None or time >= after)
                            and (before is None or time < before)):
            fail("scope", ChainError(f"entry {seq}: outside the scope's seqs or times", seq=seq))

        committed = entry.committed
        if committed is None:
            if entry.redacted is not None:
                redacted.append(seq)
            elif include and h["commit"] is not None:
                fail("content", VerificationError(
                    f"entry {seq}: content silently dropped (a commitment, but neither content nor a redaction)",
                    seq=seq))
            else:
                absent += 1
        else:
            commit = h["commit"]
            if commit is None:
                unverifiable.append(seq)
            elif file_commitment(bytes.fromhex(entry.salt or ""), (committed,)).commit != bytes.fromhex(commit):
                fail("content", ProofError(f"entry {seq}: content does not match the header's commit with its salt",
                                           seq=seq, expected=bytes.fromhex(commit)))
            else:
                verified += 1
        last_seq, last_hash, last_time = seq, hex_digest, time

    n = len(b.entries)
    out.details["headers"] = f"{n} canonical headers of {log}"
    out.details["entry_hashes"] = f"{n} entry hashes are their headers' hashes"
    out.details["order"] = "seqs strictly increase"
    out.details["scope"] = f"every entry is within {_scope_text(scope)}" if scope else "no restriction"
    out.details["hash_chain"] = (f"{links} prev links between consecutive entries hold"
                                 + (", entry 0 starts the chain" if n and b.entries[0].seq == 0 else ""))
    if case_scope is not None:
        out.details["case_chain"] = (
            f"case {case_scope}: {case_links} case_prev links hold, from the case's first entry" if n
            else f"case {case_scope}: no entries")
    elif contiguous:
        out.details["case_chain"] = f"{case_links} case_prev links within the range hold"
    else:
        out.details["case_chain"] = "not applicable: neither case-scoped nor a range"
    out.details["content"] = (f"{verified} verified, {len(redacted)} redacted, {len(unverifiable)} not verifiable "
                              f"(no commitment), {absent} not included")

    if checkpoint is None:
        out.skipped["proof"] = "the checkpoint cannot be read"
    elif isinstance(proof, BundleRange):
        _check_range(b, proof, checkpoint, leaves, out)
    else:
        _check_inclusions(b, proof, checkpoint, leaves, out)
    if "proof" not in out.failed and "proof" not in out.skipped and "checkpoint_signature" in out.failed:
        out.details["proof"] += " (the checkpoint as stated: its signature did not verify)"
    anchors = _check_anchors(b, trust, checkpoint, out)

    result = BundleResult(
        valid=not out.failed and not out.skipped, log=log, scope=dict(scope),
        proof="range" if contiguous else "inclusion",
        tree_size=None if checkpoint is None else checkpoint.size,
        root=None if checkpoint is None else checkpoint.root.hex(), key_trusted=key_trusted, checks=out.checks(),
        entries=n, content_verified=verified, content_redacted=len(redacted),
        content_unverifiable=len(unverifiable), content_absent=absent, redacted=tuple(redacted),
        unverifiable=tuple(unverifiable), anchors=anchors)
    if not collect and out.failed:
        raise next(out.failed[name] for name in BUNDLE_CHECKS if name in out.failed)
    return result
