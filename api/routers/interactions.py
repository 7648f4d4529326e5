"""POST /v1/interactions: log one interaction; 201 with its receipt."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from api.auth import Principal
from api.deps import LedgerDep, as_reader, requires
from api.schemas import Appended, InteractionIn
from compliance.access import AccessService, Permission
from ledger.appender import NewEntry
from ledger.content import encode_json_content

router = APIRouter(prefix="/v1", tags=["interactions"])


@router.post("/interactions", status_code=201, response_model=Appended, response_class=JSONResponse,
             responses={201: {"headers": {"Location": {"description": "the entry", "schema": {"type": "string"}}}}})
async def log_interaction(
    body: InteractionIn,
    ledger: LedgerDep,
    principal: Annotated[Principal, Depends(requires(Permission.LOG_INTERACTIONS))],
) -> Response:
    # whether the agent works on the case is checked by the appender under the log's lock
    rule = AccessService.rule_for(as_reader(principal), body.case)
    content = encode_json_content(body.content)
    # checked here, committed by the ledger's background appender with whatever else is queued
    # (group commit); the loop serves other requests until the commit is durable
    pending = ledger.appender.append_future(principal.tenant, [NewEntry(
        kind="interaction", channel=body.channel, case=body.case, subject_ref=body.subject_ref,
        actor=principal.actor, content=content, meta=body.clear_meta(), case_rule=rule,
    )])
    appended = (await asyncio.wrap_future(pending))[0]
    # the receipt is built by the ledger: sent as is, without a second validation pass
    return Response(appended.as_json(), status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/entries/{appended.seq}"})
