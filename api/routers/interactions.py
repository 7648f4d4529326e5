"""POST /v1/interactions: log one interaction; 201 with its receipt."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from api.auth import Principal
from api.deps import LedgerDep, as_reader, requires
from api.schemas import InteractionIn, Receipt
from compliance.access import Permission, check_can_log
from ledger.errors import FormatError, InvalidInput
from ledger.service import NewEntry
from verification.entry import canonical_json

router = APIRouter(prefix="/v1", tags=["interactions"])


@router.post("/interactions", status_code=201, response_model=Receipt, response_class=JSONResponse,
             responses={201: {"headers": {"Location": {"description": "the entry", "schema": {"type": "string"}}}}})
async def log_interaction(
    body: InteractionIn,
    ledger: LedgerDep,
    principal: Annotated[Principal, Depends(requires(Permission.LOG_INTERACTIONS))],
) -> Response:
    check_can_log(as_reader(principal), body.case)
    try:  # unsafe integers, NaN/Infinity and lone surrogates have no RFC 8785 form: the client's error
        content = canonical_json(body.content)
    except FormatError as exc:
        raise InvalidInput(f"content: {exc.message}") from None
    # checked here, committed by the ledger's background appender with whatever else is queued
    # (group commit); the loop serves other requests until the commit is durable
    pending = ledger.append_future(principal.tenant, [NewEntry(
        kind="interaction", channel=body.channel, case=body.case, subject_ref=body.subject_ref,
        actor=principal.actor, content=content, meta=body.clear_meta(),
    )])
    receipt = (await asyncio.wrap_future(pending))[0]
    # the receipt is built by the ledger: sent as is, without a second validation pass
    return Response(receipt.as_json(), status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/entries/{receipt.seq}"})
