"""`ledger.tree` against the naive RFC 9162 tree of `tests.verification.reference`: every proof it
computes from the tlog-style store is the RFC's, and costs one read of O(log n) stored hashes.

The verifier's own behaviour (mutations, error fields) is tested in `tests/verification`; here the
proofs are only generated and compared, and a sample goes through the verifier end to end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.tree import consistency_proof, inclusion_proof, range_proof, stored_hash_index, tree_hash
from tests.verification.reference import Tree
from verification.compact import CompactRange, verify_range
from verification.merkle import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion

MAX_SIZE = 2048  # the store; Hypothesis draws sizes up to this
EXHAUSTIVE = 70  # every size up to this, every leaf, every pair, every range


@cache
def reference() -> Tree:
    return Tree([leaf_hash(b"entry %d" % i) for i in range(MAX_SIZE)])


@cache
def store() -> tuple[bytes, ...]:
    """tlog storage for MAX_SIZE leaves, filled as the appender fills it; a prefix of it is the
    storage of every smaller tree."""
    hashes: list[bytes] = []
    compact = CompactRange()
    for n, leaf in enumerate(reference().leaves):
        assert len(hashes) == stored_hash_index(0, n)
        hashes.extend(compact.append(leaf))
    return tuple(hashes)


class Reader:
    """A ``read_hashes`` over :func:`store` that records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        self.calls.append(list(indexes))
        return [store()[i] for i in indexes]

    def one_small_read(self, size: int) -> bool:
        """At most one read, never an empty one, of O(log n) indexes."""
        if not self.calls:
            return True
        bound = 2 * math.ceil(math.log2(max(size, 2))) + 2
        return len(self.calls) == 1 and 0 < len(self.calls[0]) <= bound


def test_tree_hash_is_the_mth_of_every_size() -> None:
    assert tree_hash(0, Reader()) == EMPTY_ROOT
    for size in range(1, EXHAUSTIVE * 4):
        read = Reader()
        assert tree_hash(size, read) == reference().root(size)
        assert read.one_small_read(size) and len(read.calls[0]) == size.bit_count()


def test_inclusion_proofs_are_rfc9162_paths() -> None:
    for size in range(1, EXHAUSTIVE + 1):
        for index in range(size):
            read = Reader()
            proof = inclusion_proof(index, size, read)
            assert proof == reference().inclusion(index, size)
            assert read.one_small_read(size)
    single = Reader()
    assert inclusion_proof(0, 1, single) == [] and single.calls == []


def test_consistency_proofs_are_rfc9162_proofs() -> None:
    for size in range(1, EXHAUSTIVE + 1):
        for first in range(1, size + 1):
            read = Reader()
            assert consistency_proof(first, size, read) == reference().consistency(first, size)
            assert read.one_small_read(size)
    equal = Reader()
    assert consistency_proof(5, 5, equal) == [] and equal.calls == []


def test_range_proofs_are_the_reference_decomposition() -> None:
    for size in range(1, EXHAUSTIVE // 2 + 1):
        for start in range(size):
            for end in range(start + 1, size + 1):
                read = Reader()
                left, right = range_proof(start, end, size, read)
                assert (left, right) == tuple(reference().range(start, end, size))
                assert read.one_small_read(size)
    assert range_proof(0, 8, 8, Reader()) == ([], [])


@pytest.mark.parametrize("call", [
    lambda: inclusion_proof(3, 3, Reader()), lambda: inclusion_proof(-1, 3, Reader()),
    lambda: consistency_proof(0, 3, Reader()), lambda: consistency_proof(4, 3, Reader()),
    lambda: range_proof(2, 2, 3, Reader()), lambda: range_proof(0, 4, 3, Reader()),
    lambda: tree_hash(-1, Reader()),
])
def test_out_of_range_arguments_are_value_errors(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_random_large_proofs_verify(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE))
    root = reference().root(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, Reader())
    assert proof == reference().inclusion(index, size)
    verify_inclusion(index, size, reference().leaves[index], proof, root)
    first = data.draw(st.integers(1, size))
    verify_consistency(first, size, consistency_proof(first, size, Reader()), reference().root(first), root)
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start + 1, min(size, start + 64)))
    left, right = range_proof(start, end, size, Reader())
    verify_range(start, end, size, list(reference().leaves[start:end]), left, right, root)
