"""The transparency-dev RFC 9162 vectors in ``shared/vectors/rfc9162``: every file, its own test.

The folder sits beside the checkout (``<checkout>/../shared``); ``CASELEDGER_SHARED`` overrides
the ``shared`` folder. A missing folder fails the run, it never skips.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from verification.compact import CompactRange
from verification.errors import ProofError
from verification.merkle import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion


def _vector_dir() -> Path:
    shared = os.environ.get("CASELEDGER_SHARED")
    base = Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared"
    return base / "vectors" / "rfc9162"


def _cases(kind: str) -> list[Path]:
    # An empty parameter set would only skip; a missing folder must fail, so stand in a path
    # that does not exist and let the test trip over it.
    return sorted(VECTORS.glob(f"{kind}/**/*.json")) or [VECTORS / kind / "MISSING.json"]


VECTORS = _vector_dir()
INCLUSION = _cases("inclusion")
CONSISTENCY = _cases("consistency")


def _id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in value or []]


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert isinstance(data["wantErr"], bool), f"{path}: wantErr must be a boolean"
    return data


def test_vector_folder_is_present() -> None:
    assert VECTORS.is_dir(), f"RFC 9162 vectors not found at {VECTORS} (set CASELEDGER_SHARED)"
    assert (VECTORS / "reference-tree.json").is_file()
    # as shipped: 98 inclusion and 98 consistency cases; a partial copy must not pass silently
    assert len(INCLUSION) >= 98, len(INCLUSION)
    assert len(CONSISTENCY) >= 98, len(CONSISTENCY)


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), _proof(v["proof"]), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (v["size1"], v["size2"], _proof(v["proof"]), _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_reference_tree_roots_for_every_prefix() -> None:
    ref = json.loads((VECTORS / "reference-tree.json").read_text(encoding="utf-8"))
    leaves = [leaf_hash(bytes.fromhex(x)) for x in ref["leaf_inputs_hex"]]
    roots = [bytes.fromhex(x) for x in ref["root_hex_by_size"]]
    assert len(roots) == len(leaves) + 1
    assert roots[0] == EMPTY_ROOT

    compact = CompactRange()
    assert compact.root() == roots[0]
    for size, leaf in enumerate(leaves):
        compact.append(leaf)
        assert compact.root() == roots[size + 1], f"root of size {size + 1}"
