"""The tlog storage layout: index numbering, its inverse, counts, and what sits at each index.

Reference values follow golang.org/x/mod/sumdb/tlog (StoredHashIndex, SplitStoredHashIndex,
StoredHashCount): leaves and completed subtrees share one index space in append order.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.tree import (
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
)
from verification.compact import CompactRange
from verification.merkle import EMPTY_ROOT, leaf_hash, node_hash


def _tlog_stored_hash_index(level: int, n: int) -> int:
    """Line-by-line transcription of tlog's StoredHashIndex loop, as an independent oracle."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


@pytest.mark.parametrize(
    ("level", "n", "index"),
    [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 2),
        (0, 2, 3),
        (0, 3, 4),
        (1, 1, 5),
        (2, 0, 6),
        (0, 4, 7),
        (0, 5, 8),
        (1, 2, 9),
        (0, 6, 10),
        (0, 7, 11),
        (1, 3, 12),
        (2, 1, 13),
        (3, 0, 14),
        (0, 8, 15),
    ],
)
def test_stored_hash_index_known_values(level: int, n: int, index: int) -> None:
    assert stored_hash_index(level, n) == index
    assert split_stored_hash_index(index) == (level, n)


@pytest.mark.parametrize(
    ("size", "count"),
    [(0, 0), (1, 1), (2, 3), (3, 4), (4, 7), (5, 8), (6, 10), (7, 11), (8, 15), (9, 16), (16, 31)],
)
def test_stored_hash_count_known_values(size: int, count: int) -> None:
    assert stored_hash_count(size) == count


def test_stored_hash_count_of_powers_of_two() -> None:
    # a complete tree of 2^k leaves has 2^(k+1) - 1 nodes, all of them stored
    for k in range(40):
        assert stored_hash_count(1 << k) == (2 << k) - 1


def test_index_matches_tlog_loop() -> None:
    for level in range(12):
        for n in range(300):
            assert stored_hash_index(level, n) == _tlog_stored_hash_index(level, n)


def test_split_round_trips_every_index() -> None:
    seen: set[tuple[int, int]] = set()
    for index in range(20_000):
        level, n = split_stored_hash_index(index)
        assert stored_hash_index(level, n) == index
        seen.add((level, n))
    assert len(seen) == 20_000


@given(st.integers(0, 2**62))
def test_split_round_trips_large_indexes(index: int) -> None:
    level, n = split_stored_hash_index(index)
    assert stored_hash_index(level, n) == index


@given(st.integers(0, 60), st.integers(0, 2**40))
def test_index_round_trips_large_coordinates(level: int, n: int) -> None:
    assert split_stored_hash_index(stored_hash_index(level, n)) == (level, n)


def test_append_order_fills_indexes_densely() -> None:
    """CompactRange.append's completed hashes land at consecutive indexes from stored_hash_index(0, n),
    each (level, i) index holds the hash of leaves [i*2^level, (i+1)*2^level)."""
    leaves = [leaf_hash(b"%d" % i) for i in range(300)]
    store: list[bytes] = []
    compact = CompactRange()
    for n, leaf in enumerate(leaves):
        base = stored_hash_index(0, n)
        assert len(store) == base
        completed = compact.append(leaf)
        for level, h in enumerate(completed):
            assert stored_hash_index(level, n >> level) == base + level
            assert split_stored_hash_index(base + level) == (level, n >> level)
            store.append(h)
        assert len(store) == stored_hash_count(n + 1)

    def subtree(level: int, i: int) -> bytes:
        if level == 0:
            return leaves[i]
        return node_hash(subtree(level - 1, 2 * i), subtree(level - 1, 2 * i + 1))

    for index, h in enumerate(store[:600]):
        assert h == subtree(*split_stored_hash_index(index))


def test_tree_hash_of_empty_tree_reads_nothing() -> None:
    def no_read(indexes: object) -> list[bytes]:
        raise AssertionError("no read expected")

    assert tree_hash(0, no_read) == EMPTY_ROOT


def test_short_read_is_not_hidden() -> None:
    with pytest.raises(RuntimeError):
        tree_hash(3, lambda indexes: [])
    with pytest.raises(RuntimeError):
        tree_hash(1, lambda indexes: [b"short"])


def test_out_of_range_arguments() -> None:
    with pytest.raises(ValueError):
        stored_hash_index(-1, 0)
    with pytest.raises(ValueError):
        stored_hash_index(0, -1)
    with pytest.raises(ValueError):
        split_stored_hash_index(-1)
    with pytest.raises(ValueError):
        stored_hash_count(-1)
    with pytest.raises(ValueError):
        tree_hash(-1, lambda indexes: [])
