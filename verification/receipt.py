"""Receipts (DESIGN §7): one entry's header, its inclusion proof and the signed checkpoint it leads to.

`Receipt` is the public format (``caseledger.receipt``, v 1): `to_json` is its only serialiser,
`from_json` its only parser. Unknown top-level members are ignored; an unknown type or version is
refused.

A receipt may carry an ``anchor`` (DESIGN §6): the anchor receipt of a checkpoint at or after the
receipt's, and the consistency proof from the receipt's checkpoint to it. Then the entry is shown
to be in a tree whose root was anchored on chain; offline, everything but the chain is checked.

A receipt is checked with a key the verifier trusts for its log (`Trust`). Its own ``vkey`` is
used only with ``Trust(insecure_embedded_key=True)``, and the result then says
``key_trusted: false``: a receipt under its own key proves no more than that it is self-consistent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from verification.anchor import AnchorReceipt, check_anchor_receipt
from verification.checkpoint import Checkpoint, open_checkpoint, parse_verifier_key
from verification.entry import MAX_JSON_DEPTH, canonical_json, json_depth, parse_header
from verification.errors import FormatError, ProofError, VerificationError
from verification.fields import hash_bytes, hex_hash, hex_hashes, integer, mapping, text, type_and_version
from verification.merkle import HASH_SIZE, leaf_hash, verify_consistency, verify_inclusion
from verification.trust import Trust

__all__ = ["RECEIPT_TYPE", "RECEIPT_VERSION", "Receipt", "ReceiptAnchor", "open_receipt_checkpoint", "verify_receipt",
           "verify_receipt_anchor"]

RECEIPT_TYPE = "caseledger.receipt"
RECEIPT_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class ReceiptAnchor:
    """A receipt's ``anchor``: the anchor `receipt` of a checkpoint of the same log, at or after the
    receipt's tree size, and the RFC 9162 `consistency` proof (lowercase hex) from the receipt's
    checkpoint to the anchored one (empty when both are of the same size)."""

    receipt: AnchorReceipt
    consistency: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"receipt": self.receipt.to_json(), "consistency": list(self.consistency)}

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        anchor = mapping(obj, "'anchor'")
        if "receipt" not in anchor:
            raise FormatError("'anchor.receipt' is missing", member="anchor.receipt")
        try:
            receipt = AnchorReceipt.from_json(anchor["receipt"])
        except FormatError as exc:
            fields = dict(exc.fields)
            if "member" in fields:
                fields["member"] = f"anchor.receipt.{fields['member']}"
            raise FormatError(f"'anchor.receipt': {exc.message}", **fields) from None
        consistency = anchor.get("consistency")
        if not isinstance(consistency, list):
            raise FormatError("'anchor.consistency' must be a list of hashes", member="anchor.consistency")
        for i, item in enumerate(consistency):
            if not isinstance(item, str) or not _HEX64.match(item):
                raise FormatError(f"'anchor.consistency[{i}]' must be 64 lowercase hex digits",
                                  member=f"anchor.consistency[{i}]")
        return cls(receipt, tuple(consistency))


@dataclass(frozen=True)
class Receipt:
    """Entry `seq` of `log`, with hash `entry_hash`, is in the tree of `tree_size` that `checkpoint` signs."""

    log: str
    seq: int
    entry_hash: str
    header: dict[str, Any]
    tree_size: int
    proof: tuple[str, ...]
    checkpoint: str
    vkey: str
    anchor: ReceiptAnchor | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"v": RECEIPT_VERSION, "type": RECEIPT_TYPE, "log": self.log, "seq": self.seq,
               "entry_hash": self.entry_hash, "header": self.header,
               "inclusion": {"tree_size": self.tree_size, "proof": list(self.proof)},
               "checkpoint": self.checkpoint, "vkey": self.vkey}
        if self.anchor is not None:
            out["anchor"] = self.anchor.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        doc = mapping(obj, "a receipt")
        type_and_version(doc, RECEIPT_TYPE, RECEIPT_VERSION)
        header = doc.get("header")
        if not isinstance(header, dict):
            raise FormatError("'header' must be a JSON object")
        if json_depth(header, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise FormatError(f"'header' nests deeper than {MAX_JSON_DEPTH} levels")
        inclusion = mapping(doc.get("inclusion"), "'inclusion'")
        vkey = text(doc, "vkey")
        parse_verifier_key(vkey)
        anchor = ReceiptAnchor.from_json(doc["anchor"]) if "anchor" in doc else None
        return cls(text(doc, "log"), integer(doc, "seq"), hex_hash(doc, "entry_hash"), header,
                   integer(inclusion, "tree_size"), hex_hashes(inclusion, "proof"), text(doc, "checkpoint"), vkey,
                   anchor)


def open_receipt_checkpoint(note: str, log: str, vkey: str, trust: Trust) -> tuple[Checkpoint, bool]:
    """Open a checkpoint of `log` with a trusted key, else (if allowed) the receipt's own `vkey`.

    Returns the checkpoint and whether its key is trusted.
    """
    if trust.keys_for(log):
        return trust.open_checkpoint(note, log), True
    if trust.insecure_embedded_key:
        verifier = parse_verifier_key(vkey)
        if verifier.name != log:
            raise VerificationError(f"the receipt's key is for {verifier.name!r}, not {log!r}")
        return open_checkpoint(note, verifier), False
    raise VerificationError(f"key not trusted: no trusted verifier key for {log!r}", log=log)


def verify_receipt_anchor(r: Receipt, anchor: ReceiptAnchor, checkpoint: Checkpoint, trust: Trust) -> dict[str, Any]:
    """The anchor of receipt `r`, whose `checkpoint` is verified: same log, same key, consistent trees."""
    a = anchor.receipt
    if not isinstance(a, AnchorReceipt):
        raise FormatError("'anchor.receipt' must be an anchor receipt")
    if a.log != r.log:
        raise VerificationError(f"the anchor is for log {a.log!r}, the receipt for {r.log!r}", log=a.log)
    anchored, key_trusted = open_receipt_checkpoint(a.checkpoint, r.log, r.vkey, trust)
    result = check_anchor_receipt(a, anchored, key_trusted=key_trusted)
    if anchored.size < checkpoint.size:
        raise ProofError(f"the anchored checkpoint (size {anchored.size}) is older than the receipt's "
                         f"(size {checkpoint.size})", size1=checkpoint.size, size2=anchored.size)
    if not isinstance(anchor.consistency, tuple | list):
        raise FormatError("'anchor.consistency' must be a list of hashes")
    proof = [hash_bytes(p, f"'anchor.consistency[{i}]'") for i, p in enumerate(anchor.consistency)]
    verify_consistency(checkpoint.size, anchored.size, proof, checkpoint.root, anchored.root)
    return result


def verify_receipt(receipt: Receipt | Mapping[str, Any], trust: Trust, *, root: bytes | None = None
                   ) -> dict[str, Any]:
    """Check a receipt end to end; raise `VerificationError` (a subclass) on the first failure.

    The checkpoint must be signed by a key `trust` holds for the receipt's log ("key not trusted"
    otherwise), unless `trust.insecure_embedded_key`. A `root`, if given, must also be the
    checkpoint's root.

    With an ``anchor``, its anchor receipt is checked offline under the same keys (the receipt's
    own key too, with ``insecure_embedded_key``), for the same log, and the receipt's tree must be
    a prefix of the anchored one (the consistency proof); the result then holds the anchor's result
    under ``"anchor"`` and ``"checks": ["offline"]``: whether the round is on chain is not checked.
    """
    r = receipt if isinstance(receipt, Receipt) else Receipt.from_json(receipt)
    if not isinstance(r.header, dict) or json_depth(r.header, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise FormatError(f"'header' must be a JSON object nested at most {MAX_JSON_DEPTH} levels")
    header_bytes = canonical_json(r.header)
    header = parse_header(header_bytes, seq=r.seq)
    if header["log"] != r.log or header["seq"] != r.seq:
        raise VerificationError("the header belongs to another log or position than the receipt says")
    digest = leaf_hash(header_bytes)
    claimed = hash_bytes(r.entry_hash, "entry_hash")
    if digest != claimed:
        raise ProofError("entry_hash is not the hash of the header", expected=claimed, computed=digest)
    checkpoint, key_trusted = open_receipt_checkpoint(r.checkpoint, r.log, r.vkey, trust)
    if r.tree_size != checkpoint.size:
        raise VerificationError("the inclusion proof is not for the checkpoint's tree size")
    if root is not None and (not isinstance(root, bytes) or len(root) != HASH_SIZE or root != checkpoint.root):
        raise ProofError("the checkpoint's root is not the trusted root", expected=root, computed=checkpoint.root)
    proof = [hash_bytes(p, f"proof[{i}]") for i, p in enumerate(r.proof)]
    verify_inclusion(r.seq, checkpoint.size, digest, proof, checkpoint.root)
    result: dict[str, Any] = {"ok": True, "type": RECEIPT_TYPE, "log": r.log, "seq": r.seq,
                              "entry_hash": digest.hex(), "tree_size": checkpoint.size,
                              "root": checkpoint.root.hex(), "key_trusted": key_trusted}
    if r.anchor is not None:
        result["anchor"] = verify_receipt_anchor(r, r.anchor, checkpoint, trust)
        result["checks"] = ["offline"]
    return result
