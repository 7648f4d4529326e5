"""The committed artifact is exactly what the pinned compiler makes of the committed source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from contracts.artifact import ARTIFACT_PATH, load_artifact
from contracts.compile import SOURCE_PATH, compile_contract, render
from contracts.errors import CompileError


def test_recompiling_the_source_reproduces_the_committed_artifact_byte_for_byte() -> None:
    committed = ARTIFACT_PATH.read_text(encoding="utf-8")
    fresh = compile_contract()
    assert fresh["bytecode"] == json.loads(committed)["bytecode"]
    assert fresh["deployedBytecode"] == json.loads(committed)["deployedBytecode"]
    assert fresh["source_sha256"] == hashlib.sha256(SOURCE_PATH.read_bytes()).hexdigest()
    assert render(fresh) == committed


def test_the_artifact_pins_compiler_optimizer_and_evm_version() -> None:
    data = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))
    assert data["compiler"].startswith("0.8.37+commit.")
    assert data["optimizer"] == {"enabled": True, "runs": 200}
    assert data["evmVersion"] == "cancun"
    assert "pragma solidity 0.8.37;" in SOURCE_PATH.read_text(encoding="utf-8")
    assert load_artifact().source_sha256 == data["source_sha256"]


def test_a_missing_compiler_fails_with_a_one_line_hint(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as caught:
        compile_contract(solcjs=tmp_path / "solcjs")
    assert "make contracts" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_source_that_does_not_compile_fails_with_the_first_problem(tmp_path: Path) -> None:
    broken = tmp_path / "LedgerAnchor.sol"
    broken.write_text("// SPDX-License-Identifier: Apache-2.0\npragma solidity 0.8.37;\ncontract LedgerAnchor {\n")
    with pytest.raises(CompileError, match="ParserError") as caught:
        compile_contract(source_path=broken)
    assert "\n" not in str(caught.value)
