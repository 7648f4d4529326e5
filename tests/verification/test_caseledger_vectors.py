"""Our published vectors in ``tests/vectors/caseledger``: our code must reproduce or refuse each one.

The vectors are computed by ``generate.py`` from the specifications alone (hashlib, rfc8785,
cryptography, hand-written strings); these tests run the `verification` package against them, and
check that the files are exactly what the generator writes. The envelope vectors are run against
the ledger's envelope code in ``tests/ledger``: nothing here imports the ledger.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verification.chain import LogVerifier
from verification.checkpoint import (
    Checkpoint,
    key_id,
    open_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
)
from verification.entry import canonical_json, entry_hash, parse_header
from verification.errors import ChainError, VerificationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "caseledger"
FILES = ("entries.json", "checkpoints.json", "envelopes.json")


def _load(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return cases


def _params(name: str, want_err: bool) -> list[Any]:
    return [pytest.param(case, id=case["desc"][:80]) for case in _load(name) if case["wantErr"] is want_err]


@cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("caseledger_vector_generator", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", FILES)
def test_files_are_what_the_generator_writes(name: str) -> None:
    generator = _generator()
    assert (VECTORS / name).read_text(encoding="utf-8") == generator.render(generator.build()[name]), (
        f"{name} is stale: run python tests/vectors/caseledger/generate.py"
    )


@pytest.mark.parametrize("name", FILES)
def test_every_case_is_described_and_both_kinds_exist(name: str) -> None:
    cases = _load(name)
    assert all(isinstance(case["desc"], str) and case["desc"] for case in cases)
    assert len({case["desc"] for case in cases}) == len(cases)
    assert {case["wantErr"] for case in cases} == {True, False}


# --- entries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _params("entries.json", want_err=False))
def test_entry_vector(case: dict[str, Any]) -> None:
    header, jcs = case["header"], case["jcs"].encode("utf-8")
    assert canonical_json(header) == jcs
    assert entry_hash(header).hex() == case["entry_hash"]
    assert parse_header(jcs) == header
    assert parse_header(jcs, seq=header["seq"]) == header


@pytest.mark.parametrize("case", _params("entries.json", want_err=True))
def test_entry_vector_refused(case: dict[str, Any]) -> None:
    with pytest.raises(ChainError):
        parse_header(case["jcs"].encode("utf-8"), seq=1)


@pytest.mark.parametrize("case", _params("entries.json", want_err=False))
def test_mutated_entry_vector_is_refused(case: dict[str, Any]) -> None:
    jcs = case["jcs"]
    for bad in (jcs + " ", jcs.replace('"v":1', '"v":2'), jcs.replace('":', '": ', 1), jcs[:-1]):
        with pytest.raises(ChainError):
            parse_header(bad.encode("utf-8"))
    changed = {**case["header"], "actor": "user:mallory"}
    assert entry_hash(changed).hex() != case["entry_hash"]


def test_entry_vectors_form_one_valid_log() -> None:
    """The positive entries are entries 0..n-1 of one log, and the checkpoint vectors sign its root."""
    cases = [case for case in _load("entries.json") if not case["wantErr"]]
    verifier = LogVerifier(cases[0]["header"]["log"])
    for case in cases:
        verifier.add(case["jcs"].encode("utf-8"), bytes.fromhex(case["entry_hash"]))
    signed = {(cp["size"], cp["root"]) for cp in _load("checkpoints.json") if not cp["wantErr"]}
    assert (verifier.size, verifier.root.hex()) in signed
    assert (1, cases[0]["entry_hash"]) in signed


# --- checkpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _params("checkpoints.json", want_err=False))
def test_checkpoint_vector(case: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(case["seed"]))
    checkpoint = Checkpoint(case["origin"], case["size"], bytes.fromhex(case["root"]))
    assert sign_checkpoint(checkpoint, key) == case["note"]
    assert verifier_key(case["origin"], key.public_key()) == case["vkey"]
    assert key_id(case["origin"], key.public_key().public_bytes_raw()).hex() == case["key_id"]
    verifier = parse_verifier_key(case["vkey"])
    assert open_checkpoint(case["note"], verifier) == checkpoint


@pytest.mark.parametrize("case", _params("checkpoints.json", want_err=True))
def test_checkpoint_vector_refused(case: dict[str, Any]) -> None:
    with pytest.raises(VerificationError):
        open_checkpoint(case["note"], parse_verifier_key(case["vkey"]))


@pytest.mark.parametrize("case", _params("checkpoints.json", want_err=False))
def test_mutated_checkpoint_vector_is_refused(case: dict[str, Any]) -> None:
    note: str = case["note"]
    verifier = parse_verifier_key(case["vkey"])
    body, _, signature = note.partition("\n\n")
    lines = body.split("\n")
    mutations = [
        "\n".join([lines[0], str(case["size"] + 1), *lines[2:]]) + "\n\n" + signature,
        "\n".join([lines[0] + "x", *lines[1:]]) + "\n\n" + signature,
        note.replace(signature, signature[:-3] + ("A" if signature[-3] != "A" else "B") + signature[-2:]),
    ]
    for bad in mutations:
        assert bad != note
        with pytest.raises(VerificationError):
            open_checkpoint(bad, verifier)
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    with pytest.raises(VerificationError):
        open_checkpoint(note, parse_verifier_key(verifier_key(case["origin"], other.public_key())))
