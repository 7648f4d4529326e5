"""A naive RFC 9162 Merkle tree in memory: the proofs `verification` must accept, made without `ledger`.

Proofs are transcribed from RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (SUBPROOF); range proofs from
DESIGN §3 (the peaks left of the range, then the greedy aligned subtrees right of it). Subtree
hashes are memoised, so proofs over a few thousand leaves stay cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _split(n: int) -> int:
    """The largest power of two smaller than ``n > 1``."""
    return 1 << ((n - 1).bit_length() - 1)


class Tree:
    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = tuple(leaves)
        self._memo: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        """RFC 9162 §2.1.1 MTH of leaves [lo, hi)."""
        key = (lo, hi)
        if key not in self._memo:
            if hi == lo:
                value = hashlib.sha256(b"").digest()
            elif hi - lo == 1:
                value = self.leaves[lo]
            else:
                k = lo + _split(hi - lo)
                value = hashlib.sha256(b"\x01" + self.mth(lo, k) + self.mth(k, hi)).digest()
            self._memo[key] = value
        return self._memo[key]

    def root(self, size: int) -> bytes:
        return self.mth(0, size)

    def inclusion(self, m: int, size: int) -> list[bytes]:
        """PATH(m, D[0:size])."""
        if not 0 <= m < size <= len(self.leaves):
            raise ValueError(f"no leaf {m} in a tree of {size}")
        return self._path(m, 0, size)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = _split(hi - lo)
        if m < k:
            return [*self._path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self._path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def consistency(self, m: int, size: int) -> list[bytes]:
        """PROOF(m, D[0:size]) = SUBPROOF(m, D[0:size], true)."""
        if not 0 < m <= size <= len(self.leaves):
            raise ValueError(f"no consistency proof from {m} to {size}")
        return self._subproof(m, 0, size, True)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if whole else [self.mth(lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self.mth(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def range(self, start: int, end: int, size: int) -> tuple[list[bytes], list[bytes]]:
        """(left, right) of a range proof for [start, end) of the tree of `size`."""
        if not 0 <= start < end <= size <= len(self.leaves):
            raise ValueError(f"[{start}, {end}) is not a range of a tree of {size}")
        left, lo = [], 0
        for level in range(start.bit_length() - 1, -1, -1):
            if start >> level & 1:
                left.append(self.mth(lo, lo + (1 << level)))
                lo += 1 << level
        right, p = [], end
        while p < size:
            width = 1
            while p % (width * 2) == 0 and p + width * 2 <= size:
                width *= 2
            right.append(self.mth(p, p + width))
            p += width
        return left, right
