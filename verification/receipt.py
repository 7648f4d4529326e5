"""Receipts (DESIGN §7): one entry's header, its inclusion proof and the signed checkpoint it leads to.

`Receipt` is the public format (``caseledger.receipt``, v 1): `to_json` is its only serialiser,
`from_json` its only parser. Unknown top-level members (such as a future ``anchor``, §6) are
ignored; an unknown type or version is refused.

A receipt is checked with a key the verifier trusts for its log (`Trust`). Its own ``vkey`` is
used only with ``Trust(insecure_embedded_key=True)``, and the result then says
``key_trusted: false``: a receipt under its own key proves no more than that it is self-consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from verification.checkpoint import open_checkpoint, parse_verifier_key
from verification.entry import MAX_JSON_DEPTH, canonical_json, json_depth, parse_header
from verification.errors import FormatError, ProofError, VerificationError
from verification.fields import hash_bytes, hex_hash, hex_hashes, integer, mapping, text, type_and_version
from verification.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from verification.trust import Trust

__all__ = ["RECEIPT_TYPE", "RECEIPT_VERSION", "Receipt", "verify_receipt"]

RECEIPT_TYPE = "caseledger.receipt"
RECEIPT_VERSION = 1


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

    def to_json(self) -> dict[str, Any]:
        return {"v": RECEIPT_VERSION, "type": RECEIPT_TYPE, "log": self.log, "seq": self.seq,
                "entry_hash": self.entry_hash, "header": self.header,
                "inclusion": {"tree_size": self.tree_size, "proof": list(self.proof)},
                "checkpoint": self.checkpoint, "vkey": self.vkey}

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
        return cls(text(doc, "log"), integer(doc, "seq"), hex_hash(doc, "entry_hash"), header,
                   integer(inclusion, "tree_size"), hex_hashes(inclusion, "proof"), text(doc, "checkpoint"), vkey)


def verify_receipt(receipt: Receipt | Mapping[str, Any], trust: Trust, *, root: bytes | None = None
                   ) -> dict[str, Any]:
    """Check a receipt end to end; raise `VerificationError` (a subclass) on the first failure.

    The checkpoint must be signed by a key `trust` holds for the receipt's log ("key not trusted"
    otherwise), unless `trust.insecure_embedded_key`. A `root`, if given, must also be the
    checkpoint's root.
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
    key_trusted = bool(trust.keys_for(r.log))
    if key_trusted:
        checkpoint = trust.open_checkpoint(r.checkpoint, r.log)
    elif trust.insecure_embedded_key:
        verifier = parse_verifier_key(r.vkey)
        if verifier.name != r.log:
            raise VerificationError(f"the receipt's key is for {verifier.name!r}, not {r.log!r}")
        checkpoint = open_checkpoint(r.checkpoint, verifier)
    else:
        raise VerificationError(f"key not trusted: no trusted verifier key for {r.log!r}", log=r.log)
    if r.tree_size != checkpoint.size:
        raise VerificationError("the inclusion proof is not for the checkpoint's tree size")
    if root is not None and (not isinstance(root, bytes) or len(root) != HASH_SIZE or root != checkpoint.root):
        raise ProofError("the checkpoint's root is not the trusted root", expected=root, computed=checkpoint.root)
    proof = [hash_bytes(p, f"proof[{i}]") for i, p in enumerate(r.proof)]
    verify_inclusion(r.seq, checkpoint.size, digest, proof, checkpoint.root)
    return {"ok": True, "type": RECEIPT_TYPE, "log": r.log, "seq": r.seq, "entry_hash": digest.hex(),
            "tree_size": checkpoint.size, "root": checkpoint.root.hex(), "key_trusted": key_trusted}
