"""Prove with ``ledger.tree``, verify with ``verification.merkle``: every size, every leaf, every pair.

Proofs are generated from an in-memory tlog-style store filled by ``CompactRange.append`` and checked
against a naive, recursive transcription of RFC 9162 §2.1 (MTH, PATH, PROOF/SUBPROOF). Every
mutation of a valid proof must raise ProofError. ``read_hashes`` must be called once per proof
with O(log n) indexes.

Note on "change the size" mutations: an RFC 9162 proof does not bind the tree size on its own
(e.g. the inclusion proof of leaf 0 in a tree of 3 leaves has the same shape as in a tree of 4),
so a size is only ever meaningful together with the root of that size (the signed checkpoint).
The size mutations below therefore pair the changed size with that size's real root.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.tree import (
    consistency_proof,
    inclusion_proof,
    range_proof,
    stored_hash_index,
    tree_hash,
)
from verification.errors import ProofError
from verification.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    leaf_hash,
    node_hash,
    range_decomposition,
    root_from_inclusion_proof,
    root_from_range_proof,
    verify_consistency,
    verify_inclusion,
    verify_range,
)

MAX_SIZE = 4096  # the store; Hypothesis draws sizes up to this
EXHAUSTIVE_INCLUSION = 200  # every size 1..200, every leaf
EXHAUSTIVE_CONSISTENCY = 100  # every pair 1 <= m <= n <= 100
EXHAUSTIVE_RANGE = 40  # every [start, end) of every size 1..40
MUTATE = 64  # mutation tests: every proof of every size up to this


# --- fixtures: a store and a naive RFC 9162 --------------------------------------------------------


@cache
def leaves() -> tuple[bytes, ...]:
    return tuple(leaf_hash(b"entry %d" % i) for i in range(MAX_SIZE))


@cache
def store() -> tuple[bytes, ...]:
    """tlog storage for MAX_SIZE leaves; a prefix of it is the storage of every smaller tree."""
    hashes: list[bytes] = []
    compact = CompactRange()
    for n, leaf in enumerate(leaves()):
        assert len(hashes) == stored_hash_index(0, n)
        hashes.extend(compact.append(leaf))
    return tuple(hashes)


class Reader:
    """A ``read_hashes`` over :func:`store` that records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        self.calls.append(list(indexes))
        hashes = store()
        return [hashes[i] for i in indexes]

    def check_one_read(self, size: int) -> None:
        """At most one read, never an empty one, O(log n) indexes."""
        assert len(self.calls) <= 1, self.calls
        if self.calls:
            assert self.calls[0], "read_hashes called with no indexes"
            assert len(self.calls[0]) <= 2 * math.ceil(math.log2(size)) + 2, (size, self.calls[0])


def read(indexes: Sequence[int]) -> list[bytes]:
    hashes = store()
    return [hashes[i] for i in indexes]


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def mth(d: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 over leaf hashes."""
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = _split(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


@cache
def root(size: int) -> bytes:
    return mth(leaves()[:size])


def rfc_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), mth(d[:k])]


def rfc_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = _split(len(d))
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), mth(d[:k])]


def flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[(bit // 8) % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


OTHER = leaf_hash(b"not in the tree")


# --- the naive model itself ---------------------------------------------------------------------


def test_tree_hash_matches_naive_mth_for_every_size() -> None:
    assert tree_hash(0, read) == EMPTY_ROOT
    compact = CompactRange()
    for size in range(1, EXHAUSTIVE_INCLUSION + 1):
        compact.append(leaves()[size - 1])
        r = Reader()
        assert tree_hash(size, r) == root(size) == compact.root()
        r.check_one_read(size)
        assert len(r.calls[0]) == size.bit_count()


# --- inclusion ----------------------------------------------------------------------------------


def test_inclusion_every_size_every_leaf() -> None:
    for size in range(1, EXHAUSTIVE_INCLUSION + 1):
        for index in range(size):
            r = Reader()
            proof = inclusion_proof(index, size, r)
            r.check_one_read(size)
            verify_inclusion(index, size, leaves()[index], proof, root(size))


def test_inclusion_proofs_are_rfc9162_paths() -> None:
    for size in range(1, 65):
        d = leaves()[:size]
        for index in range(size):
            assert inclusion_proof(index, size, read) == rfc_path(index, d)


def test_inclusion_mutations_fail() -> None:
    for size in range(1, MUTATE + 1):
        rt = root(size)
        for index in range(size):
            leaf = leaves()[index]
            proof = inclusion_proof(index, size, read)
            bad: list[tuple[int, int, bytes, list[bytes], bytes]] = []
            for i, h in enumerate(proof):
                for bit in (0, 7 * i + 100, 255):
                    bad.append((index, size, leaf, [*proof[:i], flip(h, bit), *proof[i + 1 :]], rt))
                bad.append((index, size, leaf, proof[:i] + proof[i + 1 :], rt))  # drop
                bad.append((index, size, leaf, [*proof[:i], h[:-1], *proof[i + 1 :]], rt))  # short
            bad.append((index, size, leaf, [*proof, OTHER], rt))  # add at the end
            bad.append((index, size, leaf, [OTHER, *proof], rt))  # add at the front
            bad.append((index, size, leaf, [*proof, rt], rt))
            bad.append((index, size, flip(leaf, 3), proof, rt))
            bad.append((index, size, OTHER, proof, rt))
            bad.append((index, size, leaf, proof, flip(rt, 9)))
            bad.append((index, size, leaf, proof, EMPTY_ROOT))
            bad.append((index, size, leaf, proof, rt[:-1]))
            for other in (index - 1, index + 1, index ^ 1, index ^ 2, size, -1, 2**64 - 1):
                if other != index:
                    bad.append((other, size, leaf, proof, rt))
            for other in (size - 1, size + 1, 2 * size, size // 2):
                if other != size:
                    bad.append((index, other, leaf, proof, root(other)))
            if size > 1:
                bad.append((index, size, leaf, proof, root(size - 1)))  # a root of another size
            for args in bad:
                with pytest.raises(ProofError):
                    verify_inclusion(*args)


def test_inclusion_error_carries_roots() -> None:
    proof = inclusion_proof(3, 10, read)
    with pytest.raises(ProofError) as info:
        verify_inclusion(3, 10, OTHER, proof, root(10))
    assert info.value.expected == root(10)
    assert info.value.computed == root_from_inclusion_proof(3, 10, OTHER, proof)
    assert info.value.computed is not None and len(info.value.computed) == HASH_SIZE


def test_inclusion_proof_rejects_out_of_range() -> None:
    for index, size in [(0, 0), (1, 1), (-1, 5), (5, 5)]:
        with pytest.raises(ValueError):
            inclusion_proof(index, size, read)


def test_single_leaf_tree_reads_nothing() -> None:
    r = Reader()
    assert inclusion_proof(0, 1, r) == []
    assert r.calls == []


# --- consistency --------------------------------------------------------------------------------


def test_consistency_every_pair() -> None:
    for size2 in range(1, EXHAUSTIVE_CONSISTENCY + 1):
        for size1 in range(1, size2 + 1):
            r = Reader()
            proof = consistency_proof(size1, size2, r)
            r.check_one_read(size2)
            verify_consistency(size1, size2, proof, root(size1), root(size2))


def test_consistency_proofs_are_rfc9162_proofs() -> None:
    for size2 in range(1, 65):
        d = leaves()[:size2]
        for size1 in range(1, size2 + 1):
            assert consistency_proof(size1, size2, read) == rfc_subproof(size1, d, True)


def test_consistency_mutations_fail() -> None:
    for size2 in range(1, MUTATE + 1):
        r2 = root(size2)
        for size1 in range(1, size2 + 1):
            r1 = root(size1)
            proof = consistency_proof(size1, size2, read)
            bad: list[tuple[int, int, list[bytes], bytes, bytes]] = []
            for i, h in enumerate(proof):
                for bit in (0, 7 * i + 100, 255):
                    bad.append((size1, size2, [*proof[:i], flip(h, bit), *proof[i + 1 :]], r1, r2))
                bad.append((size1, size2, proof[:i] + proof[i + 1 :], r1, r2))
                bad.append((size1, size2, [*proof[:i], h + b"\x00", *proof[i + 1 :]], r1, r2))
            bad.append((size1, size2, [*proof, OTHER], r1, r2))
            bad.append((size1, size2, [OTHER, *proof], r1, r2))
            bad.append((size1, size2, [r1, *proof], r1, r2))
            bad.append((size1, size2, [*proof, r2], r1, r2))
            bad.append((size1, size2, proof, flip(r1, 1), r2))
            bad.append((size1, size2, proof, r1, flip(r2, 1)))
            bad.append((size1, size2, proof, r1[:-1], r2))
            if size1 != size2:
                bad.append((size1, size2, proof, r2, r1))  # swapped roots
                bad.append((size1, size2, proof, r1, r1))
            for other in (size1 - 1, size1 + 1, size1 ^ 2, 0):
                if other != size1 and other <= size2:
                    bad.append((other, size2, proof, root(other), r2))
            bad.append((size2 + 1, size2, proof, r1, r2))  # size1 > size2
            for other in (size2 - 1, size2 + 1, 2 * size2):
                if other != size2 and other >= size1:
                    bad.append((size1, other, proof, r1, root(other)))
            for args in bad:
                with pytest.raises(ProofError):
                    verify_consistency(*args)


def test_consistency_from_empty_tree_is_refused() -> None:
    with pytest.raises(ProofError):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError):
        verify_consistency(0, 5, [], EMPTY_ROOT, root(5))
    for size1, size2 in [(0, 1), (0, 0), (2, 1), (-1, 3)]:
        with pytest.raises(ValueError):
            consistency_proof(size1, size2, read)


def test_equal_sizes_need_no_read() -> None:
    r = Reader()
    assert consistency_proof(7, 7, r) == []
    assert r.calls == []


# --- ranges -------------------------------------------------------------------------------------


def test_range_decomposition_covers_the_tree() -> None:
    for size in range(1, 101):
        for start in range(size):
            for end in range(start + 1, size + 1):
                left, right = range_decomposition(start, end, size)
                assert len(left) + len(right) <= 2 * math.ceil(math.log2(size)) + 2
                pos = 0
                for level, i in left:
                    assert i << level == pos
                    pos += 1 << level
                assert pos == start
                assert [lv for lv, _ in left] == sorted((lv for lv, _ in left), reverse=True)
                pos = end
                for level, i in right:
                    assert i << level == pos
                    pos += 1 << level
                assert pos == size


def test_range_every_range_of_every_size() -> None:
    for size in range(1, EXHAUSTIVE_RANGE + 1):
        rt = root(size)
        d = leaves()[:size]
        for start in range(size):
            for end in range(start + 1, size + 1):
                r = Reader()
                left, right = range_proof(start, end, size, r)
                r.check_one_read(size)
                left_at, right_at = range_decomposition(start, end, size)
                for (level, i), h in zip(left_at + right_at, left + right, strict=True):
                    assert h == mth(d[i << level : (i + 1) << level])
                verify_range(start, end, size, d[start:end], left, right, rt)


def test_range_of_one_leaf_agrees_with_inclusion() -> None:
    size = 37
    for index in range(size):
        left, right = range_proof(index, index + 1, size, read)
        got = root_from_range_proof(index, index + 1, size, [leaves()[index]], left, right)
        assert got == root_from_inclusion_proof(
            index, size, leaves()[index], inclusion_proof(index, size, read)
        )


def test_range_mutations_fail() -> None:
    for size in range(1, 25):
        rt = root(size)
        d = leaves()[:size]
        for start in range(size):
            for end in range(start + 1, size + 1):
                run = list(d[start:end])
                left, right = range_proof(start, end, size, read)
                bad: list[tuple[int, int, int, list[bytes], list[bytes], list[bytes], bytes]] = []
                for name, hs in (("leaves", run), ("left", left), ("right", right)):
                    for i, h in enumerate(hs):
                        for changed in (
                            [*hs[:i], flip(h, 5 * i + 17), *hs[i + 1 :]],  # bit flip
                            hs[:i] + hs[i + 1 :],  # drop
                            [*hs[:i], h[:-1], *hs[i + 1 :]],  # short hash
                        ):
                            parts = {"leaves": run, "left": left, "right": right, name: changed}
                            bad.append((start, end, size, parts["leaves"], parts["left"], parts["right"], rt))
                    if name != "leaves":  # an added leaf is a different range, covered below
                        parts = {"leaves": run, "left": left, "right": right, name: [*hs, OTHER]}
                        bad.append((start, end, size, parts["leaves"], parts["left"], parts["right"], rt))
                if len(run) > 1:
                    bad.append((start, end, size, run[::-1], left, right, rt))  # reordered
                # shifted or resized ranges over the same leaf hashes
                for s, e in ((start - 1, end - 1), (start + 1, end + 1), (start, end + 1), (start + 1, end)):
                    if 0 <= s < e <= size and (s, e) != (start, end):
                        bad.append((s, e, size, list(d[s:e]), left, right, rt))
                        if e - s == end - start:
                            bad.append((s, e, size, run, left, right, rt))
                bad.append((start, end, size, run, left, right, flip(rt, 2)))
                if size > 1:
                    bad.append((start, end, size, run, left, right, root(size - 1)))
                for other in (size - 1, size + 1):
                    if end <= other:
                        bad.append((start, end, other, run, left, right, root(other)))
                for args in bad:
                    with pytest.raises(ProofError):
                        verify_range(*args)


def test_range_preconditions() -> None:
    left, right = range_proof(2, 5, 9, read)
    run = list(leaves()[2:5])
    for start, end, size in [(3, 3, 9), (5, 2, 9), (-1, 5, 9), (2, 10, 9), (0, 1, 0)]:
        with pytest.raises(ProofError):
            verify_range(start, end, size, run, left, right, root(9))
        with pytest.raises(ValueError):
            range_proof(start, end, size, read)
    with pytest.raises(ProofError):
        verify_range(2, 5, 9, run, left, right, root(9)[:31])


def test_full_range_reads_nothing() -> None:
    r = Reader()
    assert range_proof(0, 16, 16, r) == ([], [])
    assert r.calls == []
    verify_range(0, 16, 16, leaves()[:16], [], [], root(16))


# --- Hypothesis: large random trees -------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_inclusion(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE))
    index = data.draw(st.integers(0, size - 1))
    r = Reader()
    proof = inclusion_proof(index, size, r)
    r.check_one_read(size)
    rt = tree_hash(size, read)
    verify_inclusion(index, size, leaves()[index], proof, rt)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1))
        with pytest.raises(ProofError):
            verify_inclusion(
                index, size, leaves()[index], [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]], rt
            )
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(ProofError):
            verify_inclusion(other, size, leaves()[index], proof, rt)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_consistency(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, MAX_SIZE))
    size1 = data.draw(st.integers(1, size2))
    r = Reader()
    proof = consistency_proof(size1, size2, r)
    r.check_one_read(size2)
    r1, r2 = tree_hash(size1, read), tree_hash(size2, read)
    verify_consistency(size1, size2, proof, r1, r2)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof[:i] + proof[i + 1 :], r1, r2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, [*proof[:i], flip(proof[i], 77), *proof[i + 1 :]], r1, r2)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_random_range(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE))
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start + 1, min(size, start + 300)))
    r = Reader()
    left, right = range_proof(start, end, size, r)
    r.check_one_read(size)
    rt = tree_hash(size, read)
    run = list(leaves()[start:end])
    verify_range(start, end, size, run, left, right, rt)
    i = data.draw(st.integers(0, len(run) - 1))
    with pytest.raises(ProofError):
        verify_range(start, end, size, [*run[:i], OTHER, *run[i + 1 :]], left, right, rt)
