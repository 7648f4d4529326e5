"""RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proof verification.

Everything here is pure: the standard library only, no storage, no clock. Proof *generation* over
stored hashes lives in ``ledger.tree``; this module is what a client needs to check our data.

Conventions: every hash is ``bytes`` of :data:`HASH_SIZE`; a *leaf hash* is ``leaf_hash(data)``
(for caseledger the entry hash); sizes count leaves; indexes are 0-based. Every verifier checks
all lengths and ranges before it hashes anything and raises :class:`ProofError` on any mismatch,
so malformed input never reaches the hashing loop.

Compact ranges and range proofs over them are in `verification.compact`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from verification.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "trailing_zeros",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1 interior node hash: SHA-256(0x01 ‖ left ‖ right).

    Precondition (not checked, this is the hot path): both are 32-byte hashes.
    """
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


# --- helpers ------------------------------------------------------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes):
        raise ProofError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_hashes(what: str, values: Sequence[bytes]) -> None:
    for i, value in enumerate(values):
        _check_hash(f"{what}[{i}]", value)


def trailing_zeros(n: int) -> int:
    """Number of trailing zero bits of ``n > 0`` (the level of the largest aligned subtree ending there)."""
    return (n & -n).bit_length() - 1


def _inclusion_proof_length(index: int, size: int) -> int:
    """Length of the RFC 9162 §2.1.3.1 audit path for leaf ``index`` of a tree of ``size``.

    ``inner`` levels are where the paths to ``index`` and to the last leaf differ (a sibling always
    exists there); above them the path follows the right border, which has a left sibling exactly
    where ``index`` has a set bit.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


# --- inclusion ----------------------------------------------------------------------------------


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Compute the root implied by an inclusion proof (RFC 9162 §2.1.3.2).

    ``leaf`` is the *leaf hash* (not the leaf data). Preconditions, checked before hashing:
    ``0 <= index < size``, ``leaf`` and every proof element are 32 bytes, and ``len(proof)`` is
    exactly the audit-path length for (``index``, ``size``). Violations raise :class:`ProofError`.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}", index=index, size=size)
    _check_hash("leaf hash", leaf)
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} has {len(proof)} hashes, expected {want}",
            index=index,
            size=size,
        )
    _check_hashes("proof", proof)

    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:  # unreachable after the length check; kept as RFC 9162 states it
            raise ProofError("inclusion proof is too long", index=index, size=size)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short", index=index, size=size)
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a leaf hash) is at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Raises :class:`ProofError` (``expected=root``, ``computed=`` the root the
    proof leads to) when it does not; see :func:`root_from_inclusion_proof` for preconditions.
    """
    _check_hash("root", root)
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} does not lead to the expected root",
            expected=root,
            computed=computed,
            index=index,
            size=size,
        )


# --- consistency --------------------------------------------------------------------------------


def _consistency_proof_length(size1: int, size2: int) -> int:
    """Length of the RFC 9162 §2.1.4.1 consistency proof for ``0 < size1 < size2``.

    The proof is the inclusion path of the largest complete subtree ending at ``size1`` within
    the tree of ``size2``, preceded by that subtree's hash unless ``size1`` is a power of two
    (then it is root1, which the verifier already has).
    """
    level = trailing_zeros(size1)
    index = (size1 - 1) >> level
    seed = 0 if index == 0 else 1
    return seed + _inclusion_proof_length(index, ((size2 - 1) >> level) + 1)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    RFC 9162 §2.1.4.2, with the edge cases pinned down by the transparency-dev reference vectors:

    - ``size1 > size2`` or negative sizes: rejected.
    - ``size1 == 0``: rejected, even with an empty proof. Nothing can be proved about an empty
      tree; a caller that wants to accept growth from zero must check ``root1 == EMPTY_ROOT``
      itself.
    - ``size1 == size2``: the proof must be empty and the roots equal (they are only compared).
    - otherwise both roots and every proof hash must be 32 bytes and the proof exactly as long as
      RFC 9162 §2.1.4.1 produces for these sizes, checked before hashing.

    Raises :class:`ProofError`; a root mismatch carries ``expected`` and ``computed``.
    """
    if size1 < 0 or size2 < size1:
        raise ProofError(
            f"cannot prove consistency from size {size1} to size {size2}", size1=size1, size2=size2
        )
    if size1 == 0:
        raise ProofError("a consistency proof from an empty tree proves nothing", size1=size1, size2=size2)
    if size1 == size2:
        if proof:
            raise ProofError(
                f"trees of equal size need an empty consistency proof, got {len(proof)} hashes",
                size1=size1,
                size2=size2,
            )
        if root1 != root2:
            raise ProofError(
                f"trees of equal size {size1} have different roots",
                expected=root1,
                computed=root2,
                size1=size1,
                size2=size2,
            )
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    want = _consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise ProofError(
            f"consistency proof from {size1} to {size2} has {len(proof)} hashes, expected {want}",
            size1=size1,
            size2=size2,
        )
    _check_hashes("proof", proof)

    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: a power of two is its own largest subtree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as RFC 9162 states it
            raise ProofError("consistency proof is too long", size1=size1, size2=size2)
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short", size1=size1, size2=size2)
    if fr != root1:
        raise ProofError(
            f"consistency proof does not lead to the root of size {size1}",
            expected=root1,
            computed=fr,
            size1=size1,
            size2=size2,
        )
    if sr != root2:
        raise ProofError(
            f"consistency proof does not lead to the root of size {size2}",
            expected=root2,
            computed=sr,
            size1=size1,
            size2=size2,
        )
