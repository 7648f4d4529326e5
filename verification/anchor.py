"""Anchoring rounds and anchor receipts (DESIGN §6), checked offline.

A round takes one signed checkpoint per log and builds an RFC 9162 tree over one leaf per log,
ordered by origin (UTF-8 bytes): the leaf data is JCS({"log": origin, "root": hex root, "size": n}).
Only the round tree's root goes on chain, so a round costs one transaction however many logs it holds.

`AnchorReceipt` is the public format ``caseledger.anchor-receipt`` v 1: `to_json` is its only
serialiser, `from_json` its only parser. Offline, `verify_anchor_receipt` proves that the checkpoint
is signed by a key the verifier trusts for the log and that its leaf is in the round tree of the
stated size and root. Whether that root is on chain (the ``chain`` member) needs an Ethereum node
and is checked by ``contracts/``; here the chain member is only parsed and echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from verification.checkpoint import Checkpoint
from verification.entry import canonical_json
from verification.errors import FormatError, ProofError, SignatureError
from verification.fields import hash_bytes, mapping, type_and_version
from verification.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from verification.tree import inclusion_path, tree_root
from verification.trust import Trust

__all__ = [
    "ANCHOR_RECEIPT_TYPE",
    "ANCHOR_RECEIPT_VERSION",
    "MAX_ROUND_SIZE",
    "AnchorReceipt",
    "RoundLeaf",
    "RoundTree",
    "build_round",
    "check_anchor_receipt",
    "round_leaf",
    "round_leaf_hash",
    "verify_anchor_receipt",
]

ANCHOR_RECEIPT_TYPE = "caseledger.anchor-receipt"
ANCHOR_RECEIPT_VERSION = 1
#: the contract stores a round's leaf count as ``uint32``
MAX_ROUND_SIZE = 2**32 - 1
#: every integer of the format stays exact in any JSON parser (I-JSON, RFC 7493 §2.2)
_MAX_JSON_INT = 2**53 - 1

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_ETH_HASH = re.compile(r"0x[0-9a-f]{64}\Z")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")


# --- the round tree ------------------------------------------------------------------------------


def _log_bytes(log: Any) -> bytes:
    """The UTF-8 bytes of an origin that can be a checkpoint origin (non-empty, one line, no controls)."""
    if not isinstance(log, str) or not log or any(c < " " for c in log):
        raise FormatError(f"a round leaf's log must be a non-empty line of text, got {log!r}")
    try:
        return log.encode("utf-8")
    except UnicodeError:
        raise FormatError(f"a round leaf's log is not valid UTF-8: {log!r}") from None


def round_leaf(log: str, size: int, root: bytes) -> bytes:
    """The leaf data of `log` at tree `size` with `root`: JCS({"log": log, "root": hex root, "size": size}).

    `FormatError` if `log` is not a checkpoint origin, `size` not an integer in [0, 2^53), or
    `root` not 32 bytes.
    """
    _log_bytes(log)
    if type(size) is not int or not 0 <= size <= _MAX_JSON_INT:
        raise FormatError(f"a round leaf's size must be an integer in [0, 2^53), got {size!r}")
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise FormatError(f"a round leaf's root must be {HASH_SIZE} bytes")
    return canonical_json({"log": log, "root": root.hex(), "size": size})


def round_leaf_hash(log: str, size: int, root: bytes) -> bytes:
    """SHA-256(0x00 ‖ `round_leaf`): the RFC 9162 leaf hash of `log`'s leaf in a round tree."""
    return leaf_hash(round_leaf(log, size, root))


@dataclass(frozen=True)
class RoundLeaf:
    """The checkpoint of one log that a round anchors: its origin, tree size and root."""

    log: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        round_leaf(self.log, self.size, self.root)  # FormatError for anything that cannot be a leaf


@dataclass(frozen=True)
class RoundTree:
    """The RFC 9162 tree of one anchoring round, over `leaves` ordered by origin (UTF-8 bytes).

    Built from its leaves: `FormatError` if they are not in that order or a log appears twice.
    `root` and `size` follow from the leaves; `build_round` sorts them first.
    """

    leaves: tuple[RoundLeaf, ...]
    root: bytes = field(init=False)
    size: int = field(init=False)
    _hashes: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        leaves = self.leaves
        if not isinstance(leaves, tuple) or not all(isinstance(leaf, RoundLeaf) for leaf in leaves):
            raise FormatError("a round tree's leaves must be a tuple of RoundLeaf")
        keys = [_log_bytes(leaf.log) for leaf in leaves]
        for i in range(1, len(keys)):
            if keys[i - 1] == keys[i]:
                raise FormatError(f"log {leaves[i].log!r} appears twice in the round", log=leaves[i].log)
            if keys[i - 1] > keys[i]:
                raise FormatError("a round tree's leaves must be ordered by origin (UTF-8 bytes)")
        hashes = tuple(round_leaf_hash(leaf.log, leaf.size, leaf.root) for leaf in leaves)
        object.__setattr__(self, "_hashes", hashes)
        object.__setattr__(self, "_index", {leaf.log: i for i, leaf in enumerate(leaves)})
        object.__setattr__(self, "root", tree_root(hashes))
        object.__setattr__(self, "size", len(leaves))

    def index_of(self, log: str) -> int:
        """The leaf index of `log`; `KeyError` if the round does not hold it."""
        return self._index[log]

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at `index` (``IndexError`` outside the tree)."""
        return self._hashes[index]

    def proof(self, index: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf `index` (``ValueError`` outside the tree)."""
        return inclusion_path(self._hashes, index)


def build_round(leaves: Sequence[RoundLeaf]) -> RoundTree:
    """The round tree over `leaves` in origin order (UTF-8 bytes); `FormatError` if a log appears twice."""
    return RoundTree(tuple(sorted(leaves, key=lambda leaf: _log_bytes(leaf.log))))


# --- the anchor receipt --------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], name: str, path: str) -> Any:
    if name not in obj:
        raise FormatError(f"{path!r} is missing", member=path)
    return obj[name]


def _section(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = _get(obj, name, name)
    if not isinstance(value, Mapping):
        raise FormatError(f"{name!r} must be a JSON object", member=name)
    return value


def _check_int(value: Any, path: str, low: int = 0, high: int = _MAX_JSON_INT) -> None:
    if type(value) is not int or not low <= value <= high:
        raise FormatError(f"{path!r} must be an integer in [{low}, {high}]", member=path)


def _check_text(value: Any, path: str) -> None:
    if not isinstance(value, str) or not value:
        raise FormatError(f"{path!r} must be a non-empty string", member=path)


def _check_shape(value: Any, path: str, pattern: re.Pattern[str], shape: str) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        raise FormatError(f"{path!r} must be {shape}", member=path)


def _check_hashes(values: Any, path: str) -> None:
    if not isinstance(values, tuple):
        raise FormatError(f"{path!r} must be a list of hashes", member=path)
    for i, item in enumerate(values):
        _check_shape(item, f"{path}[{i}]", _HEX64, "64 lowercase hex digits")


@dataclass(frozen=True)
class AnchorReceipt:
    """`checkpoint` of `log` is leaf `leaf_index` of the tree of round `round_id`, anchored on chain.

    The round tree has `round_size` leaves and root `round_root`; `proof` is the leaf's RFC 9162
    inclusion proof in it. `chain_id`, `contract`, `tx`, `block` and `block_hash` say where the
    round's root was anchored: only an online check (``contracts/``) can confirm them.

    Construction checks every field (`FormatError` naming the JSON member), so a value of this
    type always serialises to a well-formed document. Digests are lowercase hex, Ethereum hashes
    ``0x`` and 64 lowercase hex digits. `contract` is ``0x`` and 40 hex digits of either case, kept
    as given: its EIP-55 checksum needs Keccak-256, which neither the standard library nor
    ``cryptography`` offers, so it is not checked here; the online check compares addresses
    without regard to case. Integers are within [0, 2^53) so that every JSON parser reads them
    exactly; `chain_id` is at least 1 and `round_size` between 1 and 2^32 - 1 (the contract's
    ``uint32``), with ``leaf_index < round_size``.
    """

    log: str
    checkpoint: str
    round_id: int
    round_size: int
    round_root: str
    leaf_index: int
    proof: tuple[str, ...]
    chain_id: int
    contract: str
    tx: str
    block: int
    block_hash: str

    def __post_init__(self) -> None:
        _check_text(self.log, "log")
        _check_text(self.checkpoint, "checkpoint")
        _check_int(self.round_id, "round.id")
        _check_int(self.round_size, "round.size", 1, MAX_ROUND_SIZE)
        _check_shape(self.round_root, "round.root", _HEX64, "64 lowercase hex digits")
        _check_int(self.leaf_index, "round.leaf_index")
        if self.leaf_index >= self.round_size:
            raise FormatError("'round.leaf_index' must be less than 'round.size'", member="round.leaf_index")
        _check_hashes(self.proof, "round.proof")
        _check_int(self.chain_id, "chain.chain_id", 1)
        _check_shape(self.contract, "chain.contract", _ADDRESS, "an address: 0x and 40 hex digits")
        _check_shape(self.tx, "chain.tx", _ETH_HASH, "0x and 64 lowercase hex digits")
        _check_int(self.block, "chain.block")
        _check_shape(self.block_hash, "chain.block_hash", _ETH_HASH, "0x and 64 lowercase hex digits")

    def _sections(self) -> tuple[dict[str, Any], dict[str, Any]]:
        round_ = {"id": self.round_id, "size": self.round_size, "root": self.round_root,
                  "leaf_index": self.leaf_index, "proof": list(self.proof)}
        chain = {"chain_id": self.chain_id, "contract": self.contract, "tx": self.tx, "block": self.block,
                 "block_hash": self.block_hash}
        return round_, chain

    def to_json(self) -> dict[str, Any]:
        """The document of DESIGN §6; `from_json` reads it back to an equal value."""
        round_, chain = self._sections()
        return {"type": ANCHOR_RECEIPT_TYPE, "v": ANCHOR_RECEIPT_VERSION, "log": self.log,
                "checkpoint": self.checkpoint, "round": round_, "chain": chain}

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        """Parse the document; `FormatError` naming the member for anything malformed.

        An unknown type or version is refused; unknown members are ignored, as in a receipt.
        """
        doc = mapping(obj, "an anchor receipt")
        type_and_version(doc, ANCHOR_RECEIPT_TYPE, ANCHOR_RECEIPT_VERSION)
        round_ = _section(doc, "round")
        chain = _section(doc, "chain")
        proof = _get(round_, "proof", "round.proof")
        if not isinstance(proof, list):
            raise FormatError("'round.proof' must be a list of hashes", member="round.proof")
        # the constructor checks every value and names the member it refuses
        return cls(log=_get(doc, "log", "log"), checkpoint=_get(doc, "checkpoint", "checkpoint"),
                   round_id=_get(round_, "id", "round.id"), round_size=_get(round_, "size", "round.size"),
                   round_root=_get(round_, "root", "round.root"),
                   leaf_index=_get(round_, "leaf_index", "round.leaf_index"), proof=tuple(proof),
                   chain_id=_get(chain, "chain_id", "chain.chain_id"),
                   contract=_get(chain, "contract", "chain.contract"), tx=_get(chain, "tx", "chain.tx"),
                   block=_get(chain, "block", "chain.block"),
                   block_hash=_get(chain, "block_hash", "chain.block_hash"))


def check_anchor_receipt(receipt: AnchorReceipt, checkpoint: Checkpoint, *, key_trusted: bool) -> dict[str, Any]:
    """The offline check after the checkpoint is opened: its leaf is in the round tree the receipt states.

    `checkpoint` must be `receipt.checkpoint` opened (signature verified) by a key of
    `receipt.log`; the caller says whether that key is trusted. Raises `SignatureError` if the
    checkpoint is of another origin, `ProofError` if the leaf is not at ``round.leaf_index`` of
    the tree of ``round.size`` with ``round.root``.
    """
    if checkpoint.origin != receipt.log:
        raise SignatureError(f"the anchored checkpoint is of {checkpoint.origin!r}, not {receipt.log!r}",
                             origin=checkpoint.origin, log=receipt.log)
    leaf = round_leaf_hash(checkpoint.origin, checkpoint.size, checkpoint.root)
    proof = [hash_bytes(p, f"round.proof[{i}]") for i, p in enumerate(receipt.proof)]
    verify_inclusion(receipt.leaf_index, receipt.round_size, leaf, proof,
                     hash_bytes(receipt.round_root, "round.root"))
    _, chain = receipt._sections()
    return {"ok": True, "type": ANCHOR_RECEIPT_TYPE, "log": receipt.log, "size": checkpoint.size,
            "root": checkpoint.root.hex(),
            "round": {"id": receipt.round_id, "size": receipt.round_size, "root": receipt.round_root,
                      "leaf_index": receipt.leaf_index},
            "chain": chain, "key_trusted": key_trusted, "checks": ["offline"]}


def _typed(receipt: AnchorReceipt | Mapping[str, Any]) -> AnchorReceipt:
    return receipt if isinstance(receipt, AnchorReceipt) else AnchorReceipt.from_json(receipt)


def verify_anchor_receipt(receipt: AnchorReceipt | Mapping[str, Any], trust: Trust, *,
                          root: bytes | None = None) -> dict[str, Any]:
    """Check an anchor receipt offline; raise a `VerificationError` subclass on the first failure.

    The checkpoint must be signed by a key `trust` holds for the receipt's log: an anchor receipt
    carries no key of its own, so without one it fails "key not trusted" even with
    ``insecure_embedded_key``. A `root`, if given, must also be the checkpoint's root. The
    ``chain`` member and the round's id are returned as stated, not checked: that needs an
    Ethereum node. So is the round's size as far as the inclusion proof does not fix it (an RFC
    9162 path of leaf i in a tree of n is also the path of leaf i in some larger trees with the
    same root); the online check compares it with the leaf count the contract stores.
    """
    a = _typed(receipt)
    checkpoint = trust.open_checkpoint(a.checkpoint, a.log)
    if root is not None and (not isinstance(root, bytes) or len(root) != HASH_SIZE or root != checkpoint.root):
        raise ProofError("the checkpoint's root is not the trusted root", expected=root, computed=checkpoint.root)
    return check_anchor_receipt(a, checkpoint, key_trusted=True)

