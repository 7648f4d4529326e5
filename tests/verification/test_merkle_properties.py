"""Prove with a naive RFC 9162 tree (`tests.verification.reference`), verify with ``verification.merkle``.

Every size, every leaf, every pair; every mutation of a valid proof must raise ProofError. How the
ledger *generates* proofs from stored hashes is tested in ``tests/ledger``; nothing here imports it.

Note on "change the size" mutations: an RFC 9162 proof does not bind the tree size on its own
(e.g. the inclusion proof of leaf 0 in a tree of 3 leaves has the same shape as in a tree of 4),
so a size is only ever meaningful together with the root of that size (the signed checkpoint).
The size mutations below therefore pair the changed size with that size's real root.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.verification.reference import Tree
from verification.compact import CompactRange, range_decomposition, root_from_range_proof, verify_range
from verification.errors import ProofError
from verification.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    trailing_zeros,
    verify_consistency,
    verify_inclusion,
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
def tree() -> Tree:
    return Tree(leaves())


def inclusion_proof(index: int, size: int) -> list[bytes]:
    return tree().inclusion(index, size)


def consistency_proof(size1: int, size2: int) -> list[bytes]:
    return tree().consistency(size1, size2)


def range_proof(start: int, end: int, size: int) -> tuple[list[bytes], list[bytes]]:
    return tree().range(start, end, size)


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


def test_reference_tree_is_rfc9162() -> None:
    for size in range(EXHAUSTIVE_CONSISTENCY + 1):
        assert tree().root(size) == mth(leaves()[:size])
    d = leaves()[:64]
    for size in range(1, 65):
        for index in range(size):
            assert inclusion_proof(index, size) == rfc_path(index, d[:size])
        for size1 in range(1, size + 1):
            assert consistency_proof(size1, size) == rfc_subproof(size1, d[:size], True)


def test_compact_range_root_is_mth_for_every_size() -> None:
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for size in range(1, EXHAUSTIVE_INCLUSION + 1):
        completed = compact.append(leaves()[size - 1])
        assert completed[0] == leaves()[size - 1] and len(completed) == 1 + trailing_zeros(size)
        assert compact.root() == root(size)
        assert compact.size == size and len(compact.peaks) == size.bit_count()
        assert CompactRange.from_bytes(size, compact.to_bytes()) == compact
        assert len(compact.to_bytes()) == HASH_SIZE * size.bit_count()


def test_compact_range_copy_is_independent() -> None:
    compact = CompactRange()
    for leaf in leaves()[:5]:
        compact.append(leaf)
    copy = compact.copy()
    copy.append(leaves()[5])
    assert compact.size == 5 and compact.root() == root(5)
    assert copy.size == 6 and copy.root() == root(6)
    assert compact != copy


@pytest.mark.parametrize(("size", "peaks"), [
    (3, [OTHER]), (-1, []), (1, []), (0, [OTHER]), (1, [OTHER[:31]]), (2, ["00" * 32]),
])
def test_compact_range_rejects_peaks_of_the_wrong_shape(size: int, peaks: list[Any]) -> None:
    with pytest.raises(ValueError):
        CompactRange(size, peaks)


def test_compact_range_from_bytes_checks_the_length() -> None:
    with pytest.raises(ValueError):
        CompactRange.from_bytes(3, OTHER)
    with pytest.raises(ValueError):
        CompactRange.from_bytes(1, OTHER + b"\x00")
    with pytest.raises(ValueError):
        CompactRange().append(OTHER[:31])


def test_compact_range_append_subtree_must_be_aligned() -> None:
    compact = CompactRange()
    compact.append(leaves()[0])
    with pytest.raises(ValueError):
        compact.append_subtree(1, OTHER)
    compact.append(leaves()[1])
    assert compact.append_subtree(1, tree().mth(2, 4)) == [tree().mth(2, 4), root(4)]
    assert compact.root() == root(4)


def test_trailing_zeros() -> None:
    for n in range(1, 1 << 12):
        assert trailing_zeros(n) == len(bin(n)) - len(bin(n).rstrip("0"))


def test_compact_range_append_returns_completed_subtrees() -> None:
    compact = CompactRange()
    for n in range(64):
        completed = compact.append(leaves()[n])
        assert len(completed) == 1 + ((n + 1) & -(n + 1)).bit_length() - 1
        for level, h in enumerate(completed):
            first = (n >> level) << level
            assert h == mth(leaves()[first : n + 1])
        assert len(compact.peaks) == (n + 1).bit_count()


def test_compact_range_rejects_peaks_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        CompactRange(3, [OTHER])
    with pytest.raises(ValueError):
        CompactRange(-1, [])
    with pytest.raises(ValueError):
        CompactRange.from_bytes(3, OTHER)


# --- inclusion ----------------------------------------------------------------------------------


def test_inclusion_every_size_every_leaf() -> None:
    for size in range(1, EXHAUSTIVE_INCLUSION + 1):
        for index in range(size):
            proof = inclusion_proof(index, size)
            verify_inclusion(index, size, leaves()[index], proof, root(size))


def test_inclusion_mutations_fail() -> None:
    for size in range(1, MUTATE + 1):
        rt = root(size)
        for index in range(size):
            leaf = leaves()[index]
            proof = inclusion_proof(index, size)
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
    proof = inclusion_proof(3, 10)
    with pytest.raises(ProofError) as info:
        verify_inclusion(3, 10, OTHER, proof, root(10))
    assert info.value.expected == root(10)
    assert info.value.computed == root_from_inclusion_proof(3, 10, OTHER, proof)
    assert info.value.computed is not None and len(info.value.computed) == HASH_SIZE


def test_consistency_every_pair() -> None:
    for size2 in range(1, EXHAUSTIVE_CONSISTENCY + 1):
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(size1, size2)
            verify_consistency(size1, size2, proof, root(size1), root(size2))


def test_consistency_mutations_fail() -> None:
    for size2 in range(1, MUTATE + 1):
        r2 = root(size2)
        for size1 in range(1, size2 + 1):
            r1 = root(size1)
            proof = consistency_proof(size1, size2)
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
                left, right = range_proof(start, end, size)
                left_at, right_at = range_decomposition(start, end, size)
                for (level, i), h in zip(left_at + right_at, left + right, strict=True):
                    assert h == mth(d[i << level : (i + 1) << level])
                verify_range(start, end, size, d[start:end], left, right, rt)


def test_range_of_one_leaf_agrees_with_inclusion() -> None:
    size = 37
    for index in range(size):
        left, right = range_proof(index, index + 1, size)
        got = root_from_range_proof(index, index + 1, size, [leaves()[index]], left, right)
        assert got == root_from_inclusion_proof(
            index, size, leaves()[index], inclusion_proof(index, size)
        )


def test_range_mutations_fail() -> None:
    for size in range(1, 25):
        rt = root(size)
        d = leaves()[:size]
        for start in range(size):
            for end in range(start + 1, size + 1):
                run = list(d[start:end])
                left, right = range_proof(start, end, size)
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
    left, right = range_proof(2, 5, 9)
    run = list(leaves()[2:5])
    for start, end, size in [(3, 3, 9), (5, 2, 9), (-1, 5, 9), (2, 10, 9), (0, 1, 0)]:
        with pytest.raises(ProofError):
            verify_range(start, end, size, run, left, right, root(9))
    with pytest.raises(ProofError):
        verify_range(2, 5, 9, run, left, right, root(9)[:31])


def test_full_range_needs_no_hashes() -> None:
    assert range_proof(0, 16, 16) == ([], [])
    verify_range(0, 16, 16, leaves()[:16], [], [], root(16))


# --- Hypothesis: large random trees -------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_inclusion(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size)
    rt = root(size)
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
    proof = consistency_proof(size1, size2)
    r1, r2 = root(size1), root(size2)
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
    left, right = range_proof(start, end, size)
    rt = root(size)
    run = list(leaves()[start:end])
    verify_range(start, end, size, run, left, right, rt)
    i = data.draw(st.integers(0, len(run) - 1))
    with pytest.raises(ProofError):
        verify_range(start, end, size, [*run[:i], OTHER, *run[i + 1 :]], left, right, rt)
