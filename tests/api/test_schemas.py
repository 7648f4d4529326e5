"""The API's response schemas carry exactly the members of the public formats they stand for."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from api.documents_schemas import DocumentReceiptOut
from api.schemas import AnchorReceipt, Appended, ConsistencyProof, InclusionProof, RangeProof, Receipt, ReceiptAnchor
from ledger.appender import Appended as AppendedTuple
from verification import anchor, document_receipt, proofs, receipt

HASH = "ab" * 32
ANCHOR = anchor.AnchorReceipt("l", "note", 7, 3, HASH, 2, (HASH, HASH), 31337, "0x" + "Ab" * 20, "0x" + HASH,
                              12, "0x" + "cd" * 32)
RECEIPT = receipt.Receipt("l", 4, HASH, {"v": 1, "seq": 4}, 5, (HASH,), "note", "vkey")
ANCHORED = receipt.Receipt("l", 4, HASH, {"v": 1, "seq": 4}, 5, (HASH,), "note", "vkey",
                           receipt.ReceiptAnchor(ANCHOR, (HASH,)))
DOCUMENT = document_receipt.DocumentReceipt("0b1e5a64-8d7a-4c39-9a0e-6f2d1c3b4a59", "scan.pdf", "application/pdf",
                                            1234, "cd" * 32, ANCHORED)


def _model(annotation: Any) -> type[BaseModel] | None:
    """The schema a field holds, through `X | None` and `list[X]`; None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        found = [m for m in map(_model, typing.get_args(annotation)) if m is not None]
        return found[0] if found else None
    return None


def _same_members(schema: type[BaseModel], wire: dict[str, Any], path: str = "") -> None:
    """`schema` names exactly the members of `wire`, at every level where a schema stands for an object."""
    assert set(schema.model_fields) == set(wire), f"{schema.__name__} at {path or 'the top'}"
    for name, info in schema.model_fields.items():
        nested = _model(info.annotation)
        if nested is not None:
            _same_members(nested, wire[name], f"{path}{name}.")


def _carries(schema: type[BaseModel], document: Any) -> None:
    wire = document.to_json()
    _same_members(schema, wire)
    assert schema.model_validate(wire).model_dump(exclude_none=True) == wire


@pytest.mark.parametrize(("schema", "document"), [
    (InclusionProof, proofs.InclusionProof("l", 0, 1, HASH, HASH, (), "note")),
    (ConsistencyProof, proofs.ConsistencyProof("l", 1, 2, HASH, HASH, (HASH,), "note")),
    (RangeProof, proofs.RangeProof("l", 0, 1, 1, HASH, (HASH,), (), (), "note")),
])
def test_proof_schemas_match_the_typed_formats(schema: type[BaseModel], document: object) -> None:
    _carries(schema, document)


@pytest.mark.parametrize(("schema", "document"), [
    pytest.param(AnchorReceipt, ANCHOR, id="anchor-receipt"),
    pytest.param(ReceiptAnchor, ANCHORED.anchor, id="receipt-anchor"),
    pytest.param(Receipt, ANCHORED, id="receipt-anchored"),
    pytest.param(DocumentReceiptOut, DOCUMENT, id="document-receipt"),
])
def test_receipt_schemas_match_the_typed_formats(schema: type[BaseModel], document: object) -> None:
    """A member added to `verification`'s types but not to the response schema would be dropped
    silently by `response_model`: each schema carries the whole of its format, nested parts too."""
    _carries(schema, document)


def test_a_receipt_before_its_anchor_has_no_anchor_member() -> None:
    wire = RECEIPT.to_json()
    assert "anchor" not in wire
    assert Receipt.model_validate(wire).model_dump(exclude_none=True) == wire


def test_append_schema_matches_what_the_appender_returns() -> None:
    made = AppendedTuple("l", 3, HASH, {"v": 1})
    assert set(Appended.model_fields) == set(made.as_dict())
    assert Appended.model_validate(made.as_dict()).model_dump() == made.as_dict()
