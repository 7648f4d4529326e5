"""The in-memory RFC 9162 tree (`verification.tree`): roots and inclusion paths.

Checked three ways: against the transparency-dev vectors in ``shared/vectors/rfc9162`` (the
reference tree's root of every prefix, and the audit paths of its positive inclusion cases),
against the naive tree of `tests.verification.reference`, and by prove-then-verify with
`verification.merkle.verify_inclusion` for every size up to 70 and every leaf.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.verification.reference import Tree
from tests.verification.test_merkle_vectors import INCLUSION, VECTORS
from verification.errors import ProofError
from verification.merkle import EMPTY_ROOT, leaf_hash, verify_inclusion
from verification.tree import inclusion_path, tree_root

MAX_SIZE = 70


@cache
def _leaves(n: int) -> tuple[bytes, ...]:
    return tuple(leaf_hash(i.to_bytes(4, "big")) for i in range(n))


def _reference() -> tuple[list[bytes], list[bytes]]:
    ref = json.loads((VECTORS / "reference-tree.json").read_text(encoding="utf-8"))
    return ([leaf_hash(bytes.fromhex(x)) for x in ref["leaf_inputs_hex"]],
            [bytes.fromhex(x) for x in ref["root_hex_by_size"]])


def test_roots_of_the_reference_tree() -> None:
    leaves, roots = _reference()
    assert len(roots) == len(leaves) + 1
    for size, root in enumerate(roots):
        assert tree_root(leaves[:size]) == root, f"size {size}"
    assert tree_root([]) == EMPTY_ROOT


def _positive_on_reference(path: Path) -> dict[str, Any] | None:
    """A positive inclusion vector whose tree is a prefix of the reference tree (5 of the 6), or None."""
    v: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    leaves, roots = _reference()
    if v["wantErr"] or not 0 <= v["leafIdx"] < v["treeSize"] <= len(leaves):
        return None
    on_reference = (base64.b64decode(v["root"]) == roots[v["treeSize"]]
                    and base64.b64decode(v["leafHash"]) == leaves[v["leafIdx"]])
    return v if on_reference else None


REFERENCE_CASES = [p for p in INCLUSION if p.is_file() and _positive_on_reference(p)]


def test_reference_cases_are_found() -> None:
    assert len(REFERENCE_CASES) >= 5, REFERENCE_CASES


@pytest.mark.parametrize("path", REFERENCE_CASES, ids=lambda p: p.relative_to(VECTORS).as_posix())
def test_paths_of_the_inclusion_vectors(path: Path) -> None:
    v = _positive_on_reference(path)
    assert v is not None
    leaves, _ = _reference()
    size, index = v["treeSize"], v["leafIdx"]
    assert inclusion_path(leaves[:size], index) == [base64.b64decode(p) for p in v["proof"] or []]


def test_single_entry_vector() -> None:
    v = json.loads((VECTORS / "inclusion" / "single-entry" / "matching-root-and-leaf.json").read_text("utf-8"))
    leaf = base64.b64decode(v["leafHash"])
    assert tree_root([leaf]) == base64.b64decode(v["root"])
    assert inclusion_path([leaf], 0) == [] == (v["proof"] or [])


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_prove_then_verify_every_leaf(size: int) -> None:
    leaves = _leaves(size)
    naive = Tree(leaves)
    root = tree_root(leaves)
    assert root == naive.root(size)
    for index in range(size):
        path = inclusion_path(leaves, index)
        assert path == naive.inclusion(index, size)
        verify_inclusion(index, size, leaves[index], path, root)
        if size > 1:  # the path is of this leaf, this size and this root only
            with pytest.raises(ProofError):
                verify_inclusion((index + 1) % size, size, leaves[index], path, root)
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaves[(index + 1) % size], path, root)
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaves[index], path, tree_root(leaves[:-1]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=300), st.data())
def test_random_trees(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1), label="index")
    root = tree_root(leaves)
    assert root == Tree(leaves).root(len(leaves))
    path = inclusion_path(leaves, index)
    verify_inclusion(index, len(leaves), leaves[index], path, root)
    if path:  # flip one bit of one hash: the path no longer leads to the root
        i = data.draw(st.integers(0, len(path) - 1), label="i")
        bit = data.draw(st.integers(0, 255), label="bit")
        bad = bytearray(path[i])
        bad[bit // 8] ^= 1 << (bit % 8)
        path[i] = bytes(bad)
        with pytest.raises(ProofError):
            verify_inclusion(index, len(leaves), leaves[index], path, root)


def test_the_root_of_one_leaf_is_that_leaf() -> None:
    leaf = hashlib.sha256(b"x").digest()
    assert tree_root([leaf]) == leaf


@pytest.mark.parametrize(("leaves", "index"), [
    pytest.param([], 0, id="empty tree"),
    pytest.param(list(_leaves(3)), 3, id="index = size"),
    pytest.param(list(_leaves(3)), -1, id="negative index"),
    pytest.param(list(_leaves(3)), True, id="bool index"),
    pytest.param([*_leaves(2), b"short"], 0, id="short leaf"),
    pytest.param([*_leaves(2), "00" * 32], 0, id="hex text leaf"),
])
def test_bad_arguments_are_programming_errors(leaves: list[Any], index: Any) -> None:
    with pytest.raises(ValueError):
        inclusion_path(leaves, index)


def test_bad_leaf_for_the_root() -> None:
    with pytest.raises(ValueError):
        tree_root([*_leaves(4), bytes(31)])
