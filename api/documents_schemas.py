"""Bodies of the document routes (DESIGN §8): the upload form's fields, the document receipt, a
document's info and the verdict of `POST /v1/verify/document`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from api.schemas import CaseId, Hex, Receipt

__all__ = ["UPLOAD_BODY", "UPLOAD_FIELDS", "VERIFY_BODY", "VERIFY_FIELDS", "DocumentInfoOut", "DocumentPart",
           "DocumentReceiptOut", "UploadFields", "VerifyCheck", "VerifyResult", "multipart_body"]

#: a title: 1-200 characters, no control characters (the engine's rule)
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")]
SubjectRef = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UploadFields(BaseModel):
    """The text fields of `POST /v1/documents`, which come before the file part. There is no ``meta``:
    a document entry's clear meta holds only its size (DESIGN §8)."""

    model_config = ConfigDict(extra="forbid")

    case: CaseId
    title: Title
    subject_ref: SubjectRef | None = None


UPLOAD_FIELDS = frozenset(UploadFields.model_fields)
VERIFY_FIELDS = frozenset({"receipt"})


class DocumentPart(BaseModel):
    id: str
    name: str
    media_type: str
    size: int


class DocumentReceiptOut(BaseModel):
    """`caseledger.document-receipt` v 1 (DESIGN §8)."""

    type: str
    v: int
    document: DocumentPart
    salt: Hex
    receipt: Receipt


class DocumentInfoOut(BaseModel):
    """What is known of a document: name, title and media type only for readers of the case's content."""

    id: str
    seq: int
    case: str | None = None
    size: int
    name: str | None = None
    title: str | None = None
    media_type: str | None = None


class VerifyCheck(BaseModel):
    name: str
    ok: bool
    detail: str


class VerifyResult(BaseModel):
    """The verdict: valid when every check is ok. Checks: log, entry_hash, checkpoint_signature,
    inclusion, anchor, commitment, size, consistent."""

    valid: bool
    checks: list[VerifyCheck]


def multipart_body(fields: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    """The OpenAPI request body of a streamed form whose fields come before its ``file`` part."""
    properties = fields | {"file": {"type": "string", "format": "binary", "description": "the file: the last part"}}
    return {"requestBody": {"required": True, "description": description, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": properties, "required": [*required, "file"]},
        "encoding": {"file": {"contentType": "application/octet-stream"}}}}}}


#: the upload form as OpenAPI shows it (the fields' constraints are those of `UploadFields`)
UPLOAD_BODY = multipart_body(
    {name: schema for name, schema in UploadFields.model_json_schema()["properties"].items()},
    ["case", "title"], "The fields first (case, title, optional subject_ref), then the file part, last.")
VERIFY_BODY = multipart_body(
    {"receipt": {"type": "string", "description": "the document receipt (JSON), before the file"}},
    ["receipt"], "The document receipt as a field, then the file part, last.")
