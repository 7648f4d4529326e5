"""An RFC 9162 Merkle tree held in memory: its root and inclusion paths, from a list of leaf hashes.

For small trees that are built whole, such as an anchoring round's tree (one leaf per log, DESIGN
§6). A log's own tree is never rebuilt: its proofs come from stored subtree hashes (``ledger.tree``).
Checking a path is `verification.merkle.verify_inclusion`; this module only computes.

Every function costs O(n) hashes for n leaves and recurses only log2(n) deep. Arguments are our
own data, so a malformed one (a leaf that is not a 32-byte hash, an index outside the tree) is a
programming error and raises ``ValueError`` before anything is hashed.
"""

from __future__ import annotations

from collections.abc import Sequence

from verification.merkle import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = ["inclusion_path", "tree_root"]


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    for i, value in enumerate(leaf_hashes):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} is not {HASH_SIZE} bytes")


def _split(n: int) -> int:
    """RFC 9162 §2.1.1 k: the largest power of two smaller than ``n > 1``."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for ``hi > lo``, without the argument checks."""
    if hi - lo == 1:
        return leaf_hashes[lo]
    k = lo + _split(hi - lo)
    return node_hash(_mth(leaf_hashes, lo, k), _mth(leaf_hashes, k, hi))


def tree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH of the leaves (given as leaf hashes); `EMPTY_ROOT` for none."""
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def inclusion_path(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:n]): the audit path of leaf `index`, bottom up.

    Precondition: ``0 <= index < len(leaf_hashes)`` (``ValueError`` otherwise, and for a bool).
    """
    _check_leaves(leaf_hashes)
    if type(index) is not int or not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index!r} is outside a tree of size {len(leaf_hashes)}")
    path: list[bytes] = []
    lo, hi = 0, len(leaf_hashes)
    while hi - lo > 1:  # descend from the root; each sibling subtree goes in front of the path below it
        k = lo + _split(hi - lo)
        if index < k:
            path.append(_mth(leaf_hashes, k, hi))
            hi = k
        else:
            path.append(_mth(leaf_hashes, lo, k))
            lo = k
    path.reverse()
    return path
