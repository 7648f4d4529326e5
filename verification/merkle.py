"""RFC 9162 §2.1 Merkle tree hashing and proof verification, plus compact ranges.

Everything here is pure: the standard library only, no storage, no clock. Proof *generation* over
stored hashes lives in ``ledger.tree``; this module is what a client needs to check our data.

Conventions: every hash is ``bytes`` of :data:`HASH_SIZE`; a *leaf hash* is ``leaf_hash(data)``
(for caseledger the entry hash); sizes count leaves; indexes are 0-based. Every verifier checks
all lengths and ranges before it hashes anything and raises :class:`ProofError` on any mismatch,
so malformed input never reaches the hashing loop.

Compact ranges: the *peaks* of a tree of ``size`` leaves are the hashes of its maximal complete
subtrees, left to right, one per set bit of ``size``, largest first. Folding them from the right
gives the RFC 9162 root (MTH splits at the largest power of two below ``n``, which is exactly the
first peak). Appending a leaf merges equal-sized peaks like a binary counter carries.
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
    "CompactRange",
    "leaf_hash",
    "node_hash",
    "range_decomposition",
    "root_from_inclusion_proof",
    "root_from_range_proof",
    "trailing_zeros",
    "verify_consistency",
    "verify_inclusion",
    "verify_range",
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


# --- compact ranges -----------------------------------------------------------------------------


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
