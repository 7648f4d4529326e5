"""The API's response schemas carry exactly the members of the public formats they stand for."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from api.schemas import Appended, ConsistencyProof, InclusionProof, RangeProof
from ledger.appender import Appended as AppendedTuple
from verification import proofs

HASH = "ab" * 32


@pytest.mark.parametrize(("schema", "document"), [
    (InclusionProof, proofs.InclusionProof("l", 0, 1, HASH, HASH, (), "note")),
    (ConsistencyProof, proofs.ConsistencyProof("l", 1, 2, HASH, HASH, (HASH,), "note")),
    (RangeProof, proofs.RangeProof("l", 0, 1, 1, HASH, (HASH,), (), (), "note")),
])
def test_proof_schemas_match_the_typed_formats(schema: type[BaseModel], document: object) -> None:
    wire = document.to_json()  # type: ignore[attr-defined]
    assert set(schema.model_fields) == set(wire)
    assert schema.model_validate(wire).model_dump(exclude_none=True) == wire


def test_append_schema_matches_what_the_appender_returns() -> None:
    made = AppendedTuple("l", 3, HASH, {"v": 1})
    assert set(Appended.model_fields) == set(made.as_dict())
    assert Appended.model_validate(made.as_dict()).model_dump() == made.as_dict()
