"""Documents over HTTP (DESIGN §8): upload, info, receipt, and verification of a file against its receipt.

The two routes that take a file read their multipart body as a stream (`api.multipart`), fields
first, the file part last; the rules are `compliance.documents`'.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from api.auth import Principal
from api.deps import AccessDep, AnyPrincipal, Purpose, as_reader, requires
from api.documents_schemas import (
    UPLOAD_BODY,
    UPLOAD_FIELDS,
    VERIFY_BODY,
    VERIFY_FIELDS,
    DocumentInfoOut,
    DocumentReceiptOut,
    UploadFields,
    VerifyResult,
)
from api.multipart import StreamedForm, form_error
from compliance.access import Permission
from compliance.documents import DocumentAccess
from verification.document_receipt import DocumentReceipt
from verification.errors import FormatError

router = APIRouter(prefix="/v1", tags=["documents"])
M = TypeVar("M", bound=BaseModel)

DocumentId = Annotated[str, Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                                 description="the document's entry id (a lowercase UUID)")]


async def _documents(access: AccessDep) -> DocumentAccess:
    return DocumentAccess(access)


Documents = Annotated[DocumentAccess, Depends(_documents)]


def _validated(model: type[M], values: dict[str, str]) -> M:
    """The form's fields as `model`; a 422 naming each bad one (a missing one may have come after the file)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise RequestValidationError([
            {**error, "loc": ("body", *error["loc"])}
            | ({"msg": "Field required, before the 'file' part"} if error["type"] == "missing" else {})
            for error in exc.errors()]) from None


_CREATED: dict[int | str, dict[str, Any]] = {
    201: {"headers": {"Location": {"description": "the document", "schema": {"type": "string"}}}}}


@router.post("/documents", status_code=201, response_model=DocumentReceiptOut, response_class=JSONResponse,
             openapi_extra=UPLOAD_BODY, responses=_CREATED)
async def upload_document(
    request: Request,
    documents: Documents,
    principal: Annotated[Principal, Depends(requires(Permission.LOG_INTERACTIONS))],
) -> Response:
    """Upload a file into a case; 201 with its document receipt. The body is multipart/form-data with
    the fields first and the file part last, streamed: never held whole in memory."""
    form = StreamedForm(request, UPLOAD_FIELDS)
    values, file = await form.fields()
    fields = _validated(UploadFields, values)
    if file is None:
        raise form_error("file", "the form has no 'file' part (it comes last, after the fields)")
    doc = await run_in_threadpool(partial(
        documents.new_document, principal.tenant, as_reader(principal), case=fields.case, title=fields.title,
        name=file.filename, declared_type=file.content_type, subject_ref=fields.subject_ref))
    receipt = await form.feed(partial(documents.upload, principal.tenant, doc))
    return JSONResponse(receipt.to_json(), status_code=201,
                        headers={"Location": f"/v1/documents/{receipt.document_id}"})


@router.get("/documents/{document_id}", response_model=DocumentInfoOut, response_model_exclude_none=True)
def get_document(document_id: DocumentId, documents: Documents, principal: AnyPrincipal,
                 purpose: Purpose = None) -> dict[str, Any]:
    """id, seq, case and size; with name, title and media type for readers of the case's content
    (logged as an access entry)."""
    return documents.info(principal.tenant, as_reader(principal), document_id, purpose)


@router.get("/documents/{document_id}/receipt", response_model=DocumentReceiptOut, response_model_exclude_none=True)
def get_document_receipt(document_id: DocumentId, documents: Documents, principal: AnyPrincipal,
                         purpose: Purpose = None) -> Any:
    """The document receipt, for readers of the case's content (logged as an access entry); with its
    anchor once the entry is anchored."""
    return documents.receipt(principal.tenant, as_reader(principal), document_id, purpose).to_json()


@router.post("/verify/document", response_model=VerifyResult, openapi_extra=VERIFY_BODY)
async def verify_document(request: Request, documents: Documents, principal: AnyPrincipal) -> Any:
    """Check a file against its document receipt with the key and the log of the caller's tenant: every
    check named, valid when all pass. The file is streamed through the check, never held."""
    form = StreamedForm(request, VERIFY_FIELDS)
    values, file = await form.fields()
    if "receipt" not in values:
        raise form_error("receipt", "the document receipt is missing (a JSON field before the file)")
    try:
        receipt = DocumentReceipt.from_json(json.loads(values["receipt"]))
    except (ValueError, RecursionError):
        raise form_error("receipt", "the document receipt is not JSON") from None
    except FormatError as exc:
        raise form_error("receipt", f"not a document receipt: {exc.message}") from None
    if file is None:
        raise form_error("file", "the form has no 'file' part (it comes last, after the receipt)")
    return await form.feed(partial(documents.verify, principal.tenant, receipt))
