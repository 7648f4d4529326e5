"""Compact ranges (transparency-dev/merkle's ``compact.Range``) and DESIGN §3 range proofs over them.

The *peaks* of a tree of ``size`` leaves are the hashes of its maximal complete subtrees, left to
right, one per set bit of ``size``, largest first. Folding them from the right gives the RFC 9162
root (MTH splits at the largest power of two below ``n``, which is exactly the first peak).
Appending a leaf merges equal-sized peaks like a binary counter carries. A range proof shows that
a run of entries sits at [start, end) of a tree of ``size``: the peaks left of it, the run, and
the complete subtrees right of it fold into the root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from verification.errors import ProofError
from verification.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    NODE_PREFIX,
    _check_hash,
    _check_hashes,
    node_hash,
    trailing_zeros,
)

__all__ = ["CompactRange", "range_decomposition", "root_from_range_proof", "verify_range"]


class CompactRange:
    """The peaks of a tree of ``size`` leaves: all a log needs to append and to compute its root.

    ``peaks`` are the hashes of the maximal complete subtrees, left to right, largest first, one per
    set bit of ``size``. Construction checks that shape (``ValueError`` otherwise): a compact range
    comes from our own storage or a proof already parsed, so a bad one is a programming error.
    """

    __slots__ = ("_peaks", "size")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] | None = None) -> None:
        peaks = [] if peaks is None else list(peaks)
        if type(size) is not int or size < 0 or len(peaks) != size.bit_count():
            raise ValueError(f"{len(peaks)} peaks cannot describe a tree of size {size!r}")
        for peak in peaks:
            if not isinstance(peak, bytes) or len(peak) != HASH_SIZE:
                raise ValueError(f"a peak is a {HASH_SIZE}-byte hash")
        self.size = size
        self._peaks = peaks

    @property
    def peaks(self) -> list[bytes]:
        """A copy of the peaks, largest subtree first."""
        return list(self._peaks)

    def append(self, leaf: bytes) -> list[bytes]:
        """Add one leaf hash; return the subtree hashes it completes, in completion order.

        That is the leaf hash itself, then each parent formed: the order in which Go's
        ``golang.org/x/mod/sumdb/tlog`` stores them, so they go to consecutive storage indexes
        starting at ``stored_hash_index(0, size)``. ``ValueError`` for a leaf that is not 32 bytes.
        """
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        completed = _append(self._peaks, self.size, leaf)
        self.size += 1
        return completed

    def append_subtree(self, level: int, subtree: bytes) -> list[bytes]:
        """Add the hash of a complete subtree of ``2**level`` leaves; return the hashes it completes.

        Precondition (``ValueError``): ``size`` is a multiple of ``2**level``, so the subtree is
        aligned where it lands, and ``subtree`` is 32 bytes.
        """
        if level < 0 or self.size & ((1 << level) - 1) or len(subtree) != HASH_SIZE:
            raise ValueError(f"a subtree of level {level} cannot be appended at size {self.size}")
        completed = [subtree]
        h = subtree
        n = self.size >> level
        while n & 1:
            h = node_hash(self._peaks.pop(), h)
            completed.append(h)
            n >>= 1
        self._peaks.append(h)
        self.size += 1 << level
        return completed

    def root(self) -> bytes:
        """RFC 9162 §2.1.1 MTH of the tree: H(p0, H(p1, … H(p[-2], p[-1]))); EMPTY_ROOT when empty."""
        if not self._peaks:
            return EMPTY_ROOT
        h = self._peaks[-1]
        for p in reversed(self._peaks[:-1]):
            h = node_hash(p, h)
        return h

    def to_bytes(self) -> bytes:
        """The peaks concatenated (the size is stored beside them)."""
        return b"".join(self._peaks)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        """The range `to_bytes` wrote for a tree of ``size``; ``ValueError`` if the length is wrong."""
        if type(size) is not int or size < 0 or len(blob) != HASH_SIZE * size.bit_count():
            raise ValueError(f"{len(blob)} bytes of peaks cannot describe a tree of size {size!r}")
        return cls(size, [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self._peaks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self.size == other.size and self._peaks == other._peaks

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self.size}, peaks=[{', '.join(p.hex()[:8] for p in self._peaks)}])"


def _append(peaks: list[bytes], size: int, leaf: bytes) -> list[bytes]:
    """Append a leaf hash to the peaks of ``size`` in place; the hashes completed (see `CompactRange.append`)."""
    completed = [leaf]
    h = leaf
    while size & 1:  # node_hash written out: verify-log runs this once per entry
        h = hashlib.sha256(NODE_PREFIX + peaks.pop() + h).digest()
        completed.append(h)
        size >>= 1
    peaks.append(h)
    return completed


def range_decomposition(
    start: int, end: int, size: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Where the extra hashes of a range proof for leaves [start, end) of a tree of ``size`` sit.

    Returns ``(left, right)`` as (level, index) coordinates; subtree (L, i) covers leaves
    [i·2^L, (i+1)·2^L). ``left`` decomposes [0, start) into maximal aligned complete subtrees
    (the peaks of a tree of ``start`` leaves, largest first); ``right`` decomposes [end, size)
    greedily left to right (at each position p the largest 2^k with p % 2^k == 0 and
    p + 2^k <= size). Together there are O(log size) of them.

    Precondition ``0 <= start < end <= size``; raises :class:`ProofError` otherwise.
    """
    if not 0 <= start < end <= size:
        raise ProofError(
            f"[{start}, {end}) is not a non-empty range of a tree of size {size}",
            start=start,
            end=end,
            size=size,
        )
    left: list[tuple[int, int]] = []
    lo = 0
    for level in range(start.bit_length() - 1, -1, -1):
        if start >> level & 1:
            left.append((level, lo >> level))
            lo += 1 << level
    right: list[tuple[int, int]] = []
    p = end
    while p < size:
        level = (size - p).bit_length() - 1
        if p:
            level = min(level, trailing_zeros(p))
        right.append((level, p >> level))
        p += 1 << level
    return left, right


def root_from_range_proof(
    start: int,
    end: int,
    size: int,
    leaves: Sequence[bytes],
    left: Sequence[bytes],
    right: Sequence[bytes],
) -> bytes:
    """Compute the root implied by a range proof for the leaf hashes of [start, end).

    DESIGN §3 range proofs (compact ranges): ``left`` are the peaks of the tree of ``start``
    leaves, ``leaves`` are appended one by one, then each ``right`` subtree is merged at its
    aligned position, and the root is folded from the resulting peaks of ``size``
    (RFC 9162 §2.1.1). See :func:`range_decomposition` for what ``left``/``right`` hold.

    Preconditions, checked before hashing: ``0 <= start < end <= size``,
    ``len(leaves) == end - start``, ``len(left)``/``len(right)`` match the decomposition, every
    hash is 32 bytes. Violations raise :class:`ProofError`.
    """
    left_at, right_at = range_decomposition(start, end, size)
    if len(leaves) != end - start:
        raise ProofError(
            f"range [{start}, {end}) needs {end - start} leaf hashes, got {len(leaves)}",
            start=start,
            end=end,
            size=size,
        )
    if len(left) != len(left_at) or len(right) != len(right_at):
        raise ProofError(
            f"range proof for [{start}, {end}) of {size} needs {len(left_at)} left and "
            f"{len(right_at)} right hashes, got {len(left)} and {len(right)}",
            start=start,
            end=end,
            size=size,
        )
    _check_hashes("leaves", leaves)
    _check_hashes("left", left)
    _check_hashes("right", right)

    compact = CompactRange(start, left)
    for leaf in leaves:
        compact.append(leaf)
    for (level, _), subtree in zip(right_at, right, strict=True):
        compact.append_subtree(level, subtree)
    return compact.root()


def verify_range(
    start: int,
    end: int,
    size: int,
    leaves: Sequence[bytes],
    left: Sequence[bytes],
    right: Sequence[bytes],
    root: bytes,
) -> None:
    """Check that ``leaves`` (leaf hashes) are exactly positions [start, end) of the tree of
    ``size`` with ``root``. Raises :class:`ProofError` (``expected=root``, ``computed=``) when
    not; see :func:`root_from_range_proof` for the preconditions."""
    _check_hash("root", root)
    computed = root_from_range_proof(start, end, size, leaves, left, right)
    if computed != root:
        raise ProofError(
            f"range proof for [{start}, {end}) of {size} does not lead to the expected root",
            expected=root,
            computed=computed,
            start=start,
            end=end,
            size=size,
        )
