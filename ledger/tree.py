"""Merkle proof generation over stored complete-subtree hashes (DESIGN §3).

A port of the storage design of Go's ``golang.org/x/mod/sumdb/tlog``: every complete subtree
hash (leaves included) is stored once, in append order, at a dense index given by
:func:`stored_hash_index`. Appending leaf ``n`` writes the hashes returned by
``verification.merkle.CompactRange.append`` at consecutive indexes from ``stored_hash_index(0, n)``.

Any tree hash or proof for a tree of any size up to the stored one is then a function of
O(log n) stored hashes. Each public function first works out which indexes it needs, then calls
``read_hashes`` once with all of them (tlog's ``HashReader``; one query), then computes. Nothing
here knows the database: storage hands in the reader.

Proof elements that cover a run of leaves which is not a complete subtree (only on the right
border of the tree) are folded from that run's complete-subtree decomposition, as tlog does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from verification.compact import range_decomposition
from verification.merkle import EMPTY_ROOT, HASH_SIZE, node_hash, trailing_zeros

__all__ = [
    "HashReader",
    "consistency_indexes",
    "consistency_proof",
    "inclusion_indexes",
    "inclusion_proof",
    "range_indexes",
    "range_proof",
    "split_stored_hash_index",
    "stored_hash_count",
    "stored_hash_index",
    "tree_hash",
    "tree_hash_indexes",
]

#: ``read_hashes(indexes) -> hashes``, same length and order as ``indexes``.
HashReader = Callable[[Sequence[int]], list[bytes]]


# --- storage layout (tlog's StoredHashIndex / SplitStoredHashIndex / StoredHashCount) ------------


def stored_hash_index(level: int, n: int) -> int:
    """Storage index of the ``n``-th complete subtree hash at ``level`` (level 0 = leaves).

    Same numbering as tlog's ``StoredHashIndex``: the hash (L, n) is written right after the
    hash (L-1, 2n+1) that completes it, and leaf m lands at m + m/2 + m/4 + … (= 2m − popcount m).
    """
    if level < 0 or n < 0:
        raise ValueError(f"no stored hash at level {level}, index {n}")
    m = ((n + 1) << level) - 1  # the last leaf under (level, n)
    return 2 * m - m.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """Inverse of :func:`stored_hash_index`: the (level, n) stored at ``index``."""
    if index < 0:
        raise ValueError(f"no stored hash at index {index}")
    # stored_hash_index(0, n) <= 2n, so the leaf written last before ``index`` is at least
    # index // 2 and at most log2(index) leaves further.
    n = index // 2
    index_n = stored_hash_index(0, n)
    while True:
        # leaf n writes itself and one parent per trailing one bit of n, i.e.
        # 1 + trailing_zeros(n + 1) hashes, so leaf n + 1 is stored right after them
        nxt = index_n + 1 + trailing_zeros(n + 1)
        if nxt > index:
            break
        n += 1
        index_n = nxt
    level = index - index_n
    return level, n >> level


def stored_hash_count(size: int) -> int:
    """Number of hashes stored for a tree of ``size`` leaves (tlog's ``StoredHashCount``)."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    if size == 0:
        return 0
    count = stored_hash_index(0, size - 1) + 1
    i = size - 1
    while i & 1:  # each trailing one of the last leaf's index completes a subtree
        count += 1
        i >>= 1
    return count


# --- indexes needed, then compute -----------------------------------------------------------------


def _subtree_indexes(lo: int, hi: int, need: list[int]) -> None:
    """Indexes of the complete subtrees decomposing leaves [lo, hi), largest first."""
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        k = 1 << level
        if lo & (k - 1):  # callers only ask for ranges aligned like RFC 9162's splits
            raise AssertionError(f"[{lo}, {hi}) is not aligned")
        need.append(stored_hash_index(level, lo >> level))
        lo += k


def _subtree_hash(lo: int, hi: int, hashes: Iterator[bytes]) -> bytes:
    """RFC 9162 MTH of leaves [lo, hi) from the hashes :func:`_subtree_indexes` asked for."""
    parts: list[bytes] = []
    while lo < hi:
        parts.append(next(hashes))
        lo += 1 << ((hi - lo).bit_length() - 1)
    h = parts[-1]
    for p in reversed(parts[:-1]):
        h = node_hash(p, h)
    return h


def _split(lo: int, hi: int) -> int:
    """RFC 9162 §2.1.1 split point: the largest power of two smaller than ``hi - lo``."""
    return 1 << ((hi - lo - 1).bit_length() - 1)


def _inclusion_indexes(lo: int, hi: int, n: int, need: list[int]) -> None:
    if lo + 1 == hi:
        return
    k = _split(lo, hi)
    if n < lo + k:
        _inclusion_indexes(lo, lo + k, n, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _inclusion_indexes(lo + k, hi, n, need)


def _inclusion_path(lo: int, hi: int, n: int, hashes: Iterator[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(n, D[lo:hi]), consuming hashes in :func:`_inclusion_indexes` order."""
    if lo + 1 == hi:
        return []
    k = _split(lo, hi)
    if n < lo + k:
        path = _inclusion_path(lo, lo + k, n, hashes)
        path.append(_subtree_hash(lo + k, hi, hashes))
    else:
        sibling = _subtree_hash(lo, lo + k, hashes)
        path = _inclusion_path(lo + k, hi, n, hashes)
        path.append(sibling)
    return path


def _consistency_indexes(lo: int, hi: int, m: int, need: list[int]) -> None:
    if m == hi:
        if lo != 0:
            _subtree_indexes(lo, hi, need)
        return
    k = _split(lo, hi)
    if m <= lo + k:
        _consistency_indexes(lo, lo + k, m, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _consistency_indexes(lo + k, hi, m, need)


def _consistency_path(lo: int, hi: int, m: int, hashes: Iterator[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:hi], lo == 0)."""
    if m == hi:
        return [] if lo == 0 else [_subtree_hash(lo, hi, hashes)]
    k = _split(lo, hi)
    if m <= lo + k:
        path = _consistency_path(lo, lo + k, m, hashes)
        path.append(_subtree_hash(lo + k, hi, hashes))
    else:
        sibling = _subtree_hash(lo, lo + k, hashes)
        path = _consistency_path(lo + k, hi, m, hashes)
        path.append(sibling)
    return path


def _read(read_hashes: HashReader, indexes: list[int]) -> Iterator[bytes]:
    hashes = read_hashes(indexes)
    if len(hashes) != len(indexes) or any(len(h) != HASH_SIZE for h in hashes):
        raise RuntimeError(f"read_hashes returned {len(hashes)} hashes for {len(indexes)} indexes")
    return iter(hashes)


# --- public: the indexes a computation needs, then the computation --------------------------------


def tree_hash_indexes(size: int) -> list[int]:
    """Stored indexes :func:`tree_hash` reads for ``size``: its ``popcount(size)`` peaks."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    need: list[int] = []
    _subtree_indexes(0, size, need)
    return need


def tree_hash(size: int, read_hashes: HashReader) -> bytes:
    """RFC 9162 §2.1.1 MTH of the first ``size`` leaves (``EMPTY_ROOT`` for 0, without a read).

    Raises ``ValueError`` for a negative size.
    """
    need = tree_hash_indexes(size)
    if not need:
        return EMPTY_ROOT
    return _subtree_hash(0, size, _read(read_hashes, need))


def inclusion_indexes(index: int, size: int) -> list[int]:
    """Stored indexes :func:`inclusion_proof` reads. Requires ``0 <= index < size`` (``ValueError``)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    need: list[int] = []
    _inclusion_indexes(0, size, index, need)
    return need


def inclusion_proof(index: int, size: int, read_hashes: HashReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``size``.

    Requires ``0 <= index < size`` (``ValueError`` otherwise). A tree of one leaf has an empty
    proof and reads nothing; otherwise ``read_hashes`` is called once.
    """
    need = inclusion_indexes(index, size)
    if not need:
        return []
    return _inclusion_path(0, size, index, _read(read_hashes, need))


def consistency_indexes(size1: int, size2: int) -> list[int]:
    """Stored indexes :func:`consistency_proof` reads. Requires ``0 < size1 <= size2`` (``ValueError``)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"cannot prove consistency from size {size1} to size {size2}")
    need: list[int] = []
    _consistency_indexes(0, size2, size1, need)
    return need


def consistency_proof(size1: int, size2: int, read_hashes: HashReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof that the tree of ``size2`` extends that of ``size1``.

    Requires ``0 < size1 <= size2`` (``ValueError`` otherwise: a proof from the empty tree is
    meaningless and ``verification.merkle.verify_consistency`` rejects it). Equal sizes give an
    empty proof without a read; otherwise ``read_hashes`` is called once.
    """
    need = consistency_indexes(size1, size2)
    if not need:
        return []
    return _consistency_path(0, size2, size1, _read(read_hashes, need))


def range_indexes(start: int, end: int, size: int) -> tuple[list[int], list[int]]:
    """Stored indexes of the ``left`` and ``right`` hashes of :func:`range_proof`.

    Requires ``0 <= start < end <= size`` (``ValueError`` otherwise).
    """
    if not 0 <= start < end <= size:
        raise ValueError(f"[{start}, {end}) is not a non-empty range of a tree of size {size}")
    left_at, right_at = range_decomposition(start, end, size)
    return ([stored_hash_index(level, i) for level, i in left_at],
            [stored_hash_index(level, i) for level, i in right_at])


def range_proof(start: int, end: int, size: int, read_hashes: HashReader) -> tuple[list[bytes], list[bytes]]:
    """Range proof (``left``, ``right``) for leaves [start, end) of the tree of ``size`` (DESIGN §3).

    ``left``/``right`` are the stored complete subtrees that ``verification.merkle.
    range_decomposition`` names; the leaf hashes of the range itself are not included. Requires
    ``0 <= start < end <= size`` (``ValueError`` otherwise); ``read_hashes`` is called at most once.
    """
    left, right = range_indexes(start, end, size)
    if not left and not right:
        return [], []
    hashes = list(_read(read_hashes, left + right))
    return hashes[: len(left)], hashes[len(left) :]
