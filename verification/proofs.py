"""Proof documents (DESIGN §3, §7): inclusion, consistency and range proofs as public, typed formats.

Each is one frozen type whose `to_json` is its only serialiser and `from_json` its only parser
(`FormatError` for anything malformed). Hashes are 64 lowercase hex digits. A proof may carry a
``checkpoint``: the log's signed note for the proof's tree size (for consistency, the second size).

A proof shows a relation to a root, so it means something only against a root the verifier
already trusts: either its checkpoint opened with a trusted key (`Trust`), or a root given
explicitly. Without one, the `verify_*` functions refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from verification.compact import verify_range
from verification.errors import FormatError, ProofError, VerificationError
from verification.fields import (
    hash_bytes,
    hex_hash,
    hex_hashes,
    integer,
    mapping,
    optional_text,
    text,
    type_and_version,
)
from verification.merkle import HASH_SIZE, verify_consistency, verify_inclusion
from verification.trust import Trust

__all__ = [
    "CONSISTENCY_PROOF_TYPE",
    "INCLUSION_PROOF_TYPE",
    "PROOF_VERSION",
    "RANGE_PROOF_TYPE",
    "ConsistencyProof",
    "InclusionProof",
    "RangeProof",
    "verify_consistency_proof",
    "verify_inclusion_proof",
    "verify_range_proof",
]

PROOF_VERSION = 1
INCLUSION_PROOF_TYPE = "caseledger.inclusion-proof"
CONSISTENCY_PROOF_TYPE = "caseledger.consistency-proof"
RANGE_PROOF_TYPE = "caseledger.range-proof"


def _with_checkpoint(out: dict[str, Any], checkpoint: str | None) -> dict[str, Any]:
    if checkpoint is not None:
        out["checkpoint"] = checkpoint
    return out


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 §2.1.3: the leaf `leaf_hash` is at `leaf_index` of the tree of `tree_size` with `root`."""

    TYPE: ClassVar[str] = INCLUSION_PROOF_TYPE

    log: str
    leaf_index: int
    tree_size: int
    leaf_hash: str
    root: str
    proof: tuple[str, ...]
    checkpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _with_checkpoint({
            "type": self.TYPE, "v": PROOF_VERSION, "log": self.log, "leaf_index": self.leaf_index,
            "tree_size": self.tree_size, "leaf_hash": self.leaf_hash, "root": self.root, "proof": list(self.proof),
        }, self.checkpoint)

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        doc = mapping(obj, "an inclusion proof")
        type_and_version(doc, cls.TYPE, PROOF_VERSION)
        return cls(text(doc, "log"), integer(doc, "leaf_index"), integer(doc, "tree_size"),
                   hex_hash(doc, "leaf_hash"), hex_hash(doc, "root"), hex_hashes(doc, "proof"),
                   optional_text(doc, "checkpoint"))


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 §2.1.4: the tree of `second` with `second_root` extends that of `first` with `first_root`."""

    TYPE: ClassVar[str] = CONSISTENCY_PROOF_TYPE

    log: str
    first: int
    second: int
    first_root: str
    second_root: str
    proof: tuple[str, ...]
    checkpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _with_checkpoint({
            "type": self.TYPE, "v": PROOF_VERSION, "log": self.log, "first": self.first, "second": self.second,
            "first_root": self.first_root, "second_root": self.second_root, "proof": list(self.proof),
        }, self.checkpoint)

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        doc = mapping(obj, "a consistency proof")
        type_and_version(doc, cls.TYPE, PROOF_VERSION)
        return cls(text(doc, "log"), integer(doc, "first"), integer(doc, "second"), hex_hash(doc, "first_root"),
                   hex_hash(doc, "second_root"), hex_hashes(doc, "proof"), optional_text(doc, "checkpoint"))


@dataclass(frozen=True)
class RangeProof:
    """DESIGN §3: `entry_hashes` are exactly positions [start, end) of the tree of `tree_size` with `root`.

    `left` are the peaks of the tree of `start` leaves, `right` the subtrees covering [end, tree_size)
    (see `verification.merkle.range_decomposition`).
    """

    TYPE: ClassVar[str] = RANGE_PROOF_TYPE

    log: str
    start: int
    end: int
    tree_size: int
    root: str
    entry_hashes: tuple[str, ...]
    left: tuple[str, ...]
    right: tuple[str, ...]
    checkpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _with_checkpoint({
            "type": self.TYPE, "v": PROOF_VERSION, "log": self.log, "start": self.start, "end": self.end,
            "tree_size": self.tree_size, "root": self.root, "entry_hashes": list(self.entry_hashes),
            "left": list(self.left), "right": list(self.right),
        }, self.checkpoint)

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        doc = mapping(obj, "a range proof")
        type_and_version(doc, cls.TYPE, PROOF_VERSION)
        return cls(text(doc, "log"), integer(doc, "start"), integer(doc, "end"), integer(doc, "tree_size"),
                   hex_hash(doc, "root"), hex_hashes(doc, "entry_hashes"), hex_hashes(doc, "left"),
                   hex_hashes(doc, "right"), optional_text(doc, "checkpoint"))


def _hashes(values: tuple[str, ...], what: str) -> list[bytes]:
    if not isinstance(values, tuple | list):
        raise FormatError(f"{what} must be a list of hashes")
    return [hash_bytes(value, f"{what}[{i}]") for i, value in enumerate(values)]


def trusted_root(log: str, size: int, claimed: bytes, checkpoint: str | None, trust: Trust,
                 root: bytes | None) -> tuple[bytes, str]:
    """The root of the tree of `size` that the verifier trusts, and where the trust comes from.

    An explicit `root` (32 bytes) wins; else the `checkpoint` opened with a trusted key of `log`
    must be for `size`. Either way it must equal `claimed`, the root the proof states (`ProofError`).
    """
    if root is not None:
        if not isinstance(root, bytes) or len(root) != HASH_SIZE:
            raise FormatError(f"a trusted root is {HASH_SIZE} bytes")
        if claimed != root:
            raise ProofError("the proof is for another root than the trusted one", expected=root, computed=claimed)
        return root, "root"
    if checkpoint is None:
        raise VerificationError("no trusted root: give the tree's root or a checkpoint signed by a trusted key")
    if not trust.keys_for(log):
        raise VerificationError(f"no trusted root: the checkpoint's key for {log!r} is not trusted", log=log)
    opened = trust.open_checkpoint(checkpoint, log)
    if opened.size != size:
        raise ProofError(f"the checkpoint is for tree size {opened.size}, the proof for {size}",
                         checkpoint_size=opened.size, size=size)
    if opened.root != claimed:
        raise ProofError("the proof is for another root than the signed checkpoint's", expected=opened.root,
                         computed=claimed)
    return opened.root, "checkpoint"


def _typed(value: Any, cls: type[Any]) -> Any:
    return value if isinstance(value, cls) else cls.from_json(value)


def verify_inclusion_proof(proof: InclusionProof | Mapping[str, Any], trust: Trust, *,
                           root: bytes | None = None) -> dict[str, Any]:
    """Check an inclusion proof against a trusted root; raise a `VerificationError` subclass if it fails."""
    p: InclusionProof = _typed(proof, InclusionProof)
    good, source = trusted_root(p.log, p.tree_size, hash_bytes(p.root, "root"), p.checkpoint, trust, root)
    verify_inclusion(p.leaf_index, p.tree_size, hash_bytes(p.leaf_hash, "leaf_hash"), _hashes(p.proof, "proof"),
                     good)
    return {"ok": True, "type": p.TYPE, "log": p.log, "leaf_index": p.leaf_index, "tree_size": p.tree_size,
            "root": good.hex(), "trusted_root": source}


def verify_consistency_proof(proof: ConsistencyProof | Mapping[str, Any], trust: Trust, *,
                             root: bytes | None = None) -> dict[str, Any]:
    """Check a consistency proof against a trusted root of the second (newer) tree."""
    p: ConsistencyProof = _typed(proof, ConsistencyProof)
    good, source = trusted_root(p.log, p.second, hash_bytes(p.second_root, "second_root"), p.checkpoint, trust,
                                root)
    verify_consistency(p.first, p.second, _hashes(p.proof, "proof"), hash_bytes(p.first_root, "first_root"), good)
    return {"ok": True, "type": p.TYPE, "log": p.log, "first": p.first, "second": p.second,
            "first_root": p.first_root, "second_root": good.hex(), "trusted_root": source}


def verify_range_proof(proof: RangeProof | Mapping[str, Any], trust: Trust, *,
                       root: bytes | None = None) -> dict[str, Any]:
    """Check a range proof against a trusted root of its tree."""
    p: RangeProof = _typed(proof, RangeProof)
    good, source = trusted_root(p.log, p.tree_size, hash_bytes(p.root, "root"), p.checkpoint, trust, root)
    verify_range(p.start, p.end, p.tree_size, _hashes(p.entry_hashes, "entry_hashes"), _hashes(p.left, "left"),
                 _hashes(p.right, "right"), good)
    return {"ok": True, "type": p.TYPE, "log": p.log, "start": p.start, "end": p.end, "tree_size": p.tree_size,
            "root": good.hex(), "trusted_root": source}
