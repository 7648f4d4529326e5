"""Offline verification of what caseledger hands out: receipts and proof documents (DESIGN §7).

A receipt is self-contained: header, inclusion proof and signed checkpoint. Whoever holds the log's
verifier key from a trusted source passes it as `trusted_vkey`; without it the key inside the
receipt is used and the result says so, since a receipt can then only prove it is self-consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verification.checkpoint import open_checkpoint, parse_verifier_key
from verification.entry import canonical_json, parse_header
from verification.errors import FormatError, ProofError, VerificationError
from verification.merkle import leaf_hash, verify_consistency, verify_inclusion, verify_range

__all__ = ["verify_document", "verify_receipt"]

RECEIPT_TYPE = "caseledger.receipt"


def _field(doc: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise FormatError(f"{name!r} is missing or not of the right type")
    return value


def _hex(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise FormatError(f"{name!r} must be 64 lowercase hex digits")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise FormatError(f"{name!r} must be 64 lowercase hex digits") from None
    if raw.hex() != value:
        raise FormatError(f"{name!r} must be 64 lowercase hex digits")
    return raw


def _hex_list(doc: Mapping[str, Any], name: str) -> list[bytes]:
    return [_hex(item, name) for item in _field(doc, name, list)]


def verify_receipt(receipt: Mapping[str, Any], trusted_vkey: str | None = None) -> dict[str, Any]:
    """Check a receipt end to end; raise `VerificationError` (a subclass) on the first failure."""
    if receipt.get("type") != RECEIPT_TYPE or type(receipt.get("v")) is not int or receipt.get("v") != 1:
        raise FormatError("not a version-1 caseledger receipt")
    log = _field(receipt, "log", str)
    seq = _field(receipt, "seq", int)
    header = _field(receipt, "header", dict)
    header_bytes = canonical_json(header)
    parse_header(header_bytes, seq=seq)
    if header["log"] != log or header["seq"] != seq:
        raise VerificationError("the header belongs to another log or position than the receipt says")
    digest = leaf_hash(header_bytes)
    claimed = _hex(receipt.get("entry_hash"), "entry_hash")
    if digest != claimed:
        raise ProofError("entry_hash is not the hash of the header", expected=claimed, computed=digest)
    verifier = parse_verifier_key(trusted_vkey if trusted_vkey is not None else _field(receipt, "vkey", str))
    if verifier.name != log:
        raise VerificationError(f"the verifier key is for {verifier.name!r}, not {log!r}")
    checkpoint = open_checkpoint(_field(receipt, "checkpoint", str), verifier)
    inclusion = _field(receipt, "inclusion", dict)
    if _field(inclusion, "tree_size", int) != checkpoint.size:
        raise VerificationError("the inclusion proof is not for the checkpoint's tree size")
    verify_inclusion(seq, checkpoint.size, digest, _hex_list(inclusion, "proof"), checkpoint.root)
    return {"ok": True, "type": RECEIPT_TYPE, "log": log, "seq": seq, "entry_hash": digest.hex(),
            "tree_size": checkpoint.size, "root": checkpoint.root.hex(), "key_trusted": trusted_vkey is not None}


def verify_document(doc: Mapping[str, Any], trusted_vkey: str | None = None) -> dict[str, Any]:
    """Verify any caseledger JSON document by its shape: a receipt or a proof from `prove`."""
    if "type" in doc:
        return verify_receipt(doc, trusted_vkey)
    if "leaf_index" in doc:
        verify_inclusion(_field(doc, "leaf_index", int), _field(doc, "tree_size", int),
                         _hex(doc.get("leaf_hash"), "leaf_hash"), _hex_list(doc, "proof"),
                         _hex(doc.get("root"), "root"))
        return {"ok": True, "type": "inclusion", "log": doc.get("log"), "tree_size": doc["tree_size"]}
    if "first_root" in doc:
        verify_consistency(_field(doc, "first", int), _field(doc, "second", int), _hex_list(doc, "proof"),
                           _hex(doc.get("first_root"), "first_root"), _hex(doc.get("second_root"), "second_root"))
        return {"ok": True, "type": "consistency", "log": doc.get("log"), "first": doc["first"],
                "second": doc["second"]}
    if "entry_hashes" in doc:
        verify_range(_field(doc, "start", int), _field(doc, "end", int), _field(doc, "tree_size", int),
                     _hex_list(doc, "entry_hashes"), _hex_list(doc, "left"), _hex_list(doc, "right"),
                     _hex(doc.get("root"), "root"))
        return {"ok": True, "type": "range", "log": doc.get("log"), "start": doc["start"], "end": doc["end"]}
    raise FormatError("not a caseledger receipt or proof document")
