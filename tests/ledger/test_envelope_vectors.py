"""Our own envelope vectors (tests/vectors/caseledger/envelopes.json) against the one AES-GCM module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.envelope import content_aad, open_envelope
from ledger.errors import DecryptionError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "caseledger"


def _params(want_err: bool) -> list[Any]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / "envelopes.json").read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["desc"][:80]) for case in cases if case["wantErr"] is want_err]


@pytest.mark.parametrize("case", _params(want_err=False))
def test_envelope_vector(case: dict[str, Any]) -> None:
    aad = content_aad(case["log"], case["id"], case["key_id"])
    assert aad == case["aad"].encode("utf-8")
    envelope = bytes.fromhex(case["envelope"])
    assert envelope[0] == 0x01 and envelope[1:13].hex() == case["nonce"]
    assert open_envelope(bytes.fromhex(case["key"]), envelope, aad).hex() == case["plaintext"]


@pytest.mark.parametrize("case", _params(want_err=True))
def test_envelope_vector_refused(case: dict[str, Any]) -> None:
    aad = content_aad(case["log"], case["id"], case["key_id"])
    assert aad == case["aad"].encode("utf-8")
    with pytest.raises(DecryptionError):
        open_envelope(bytes.fromhex(case["key"]), bytes.fromhex(case["envelope"]), aad)


@pytest.mark.parametrize("case", _params(want_err=False))
def test_mutated_envelope_vector_is_refused(case: dict[str, Any]) -> None:
    key, envelope = bytes.fromhex(case["key"]), bytes.fromhex(case["envelope"])
    aad = content_aad(case["log"], case["id"], case["key_id"])
    for index in (0, 1, 13, len(envelope) - 1):
        bad = bytearray(envelope)
        bad[index] ^= 0x80
        with pytest.raises(DecryptionError):
            open_envelope(key, bytes(bad), aad)
    with pytest.raises(DecryptionError):
        open_envelope(key, envelope, content_aad(case["log"], case["id"], case["key_id"] + "0"))
