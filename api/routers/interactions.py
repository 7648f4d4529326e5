"""POST /v1/interactions: log one interaction; 201 with its receipt."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api.auth import Principal
from api.deps import AccessDep, LedgerDep, as_reader, requires
from api.schemas import Appended, InteractionIn
from compliance.access import Permission
from ledger.appender import NewEntry
from ledger.content import encode_json_content
from ledger.errors import CaseExists

router = APIRouter(prefix="/v1", tags=["interactions"])


@router.post("/interactions", status_code=201, response_model=Appended, response_class=JSONResponse,
             responses={201: {"headers": {"Location": {"description": "the entry", "schema": {"type": "string"}}}}})
async def log_interaction(
    body: InteractionIn,
    ledger: LedgerDep,
    access: AccessDep,
    principal: Annotated[Principal, Depends(requires(Permission.LOG_INTERACTIONS))],
) -> Response:
    reader = as_reader(principal)
    content = encode_json_content(body.content)
    for attempt in range(2):
        # an agent's case is looked up in the log (off the loop); supervisors log to any case
        new_case = False
        if reader.role == "agent":
            new_case = await run_in_threadpool(access.may_log, principal.tenant, reader, body.case)
        # checked here, committed by the ledger's background appender with whatever else is queued
        # (group commit); the loop serves other requests until the commit is durable
        pending = ledger.appender.append_future(principal.tenant, [NewEntry(
            kind="interaction", channel=body.channel, case=body.case, subject_ref=body.subject_ref,
            actor=principal.actor, content=content, meta=body.clear_meta(), new_case=new_case,
        )])
        try:
            appended = (await asyncio.wrap_future(pending))[0]
            break
        except CaseExists:  # someone opened the case meanwhile: it may be this agent (another request)
            if attempt:
                raise
    else:  # pragma: no cover - the loop either breaks or raises
        raise AssertionError("unreachable")
    # the receipt is built by the ledger: sent as is, without a second validation pass
    return Response(appended.as_json(), status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/entries/{appended.seq}"})
