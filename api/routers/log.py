"""The log head, its signed checkpoint and proofs: what client apps and auditors verify against."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from api.auth import Principal
from api.deps import LedgerDep, requires
from api.schemas import ConsistencyProof, InclusionProof, LogInfo, RangeProof
from compliance.access import Permission

router = APIRouter(prefix="/v1", tags=["log"])
Size = Annotated[int, Query(ge=0, le=2**62)]
Reading = Annotated[Principal, Depends(requires(Permission.READ_PROOFS))]
Signed = Annotated[bool, Query(alias="checkpoint", description="attach a checkpoint signed for the proof's tree")]


@router.get("/log", response_model=LogInfo)
def log_info(ledger: LedgerDep, principal: Annotated[Principal, Depends(requires(Permission.READ_LOG))]) -> Any:
    info = ledger.tenants.info(principal.tenant)
    return {"origin": info.origin, "size": info.size, "root": info.root, "vkey": info.vkey}


@router.get("/checkpoint", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "C2SP signed-note checkpoint"}})
def checkpoint(ledger: LedgerDep,
               principal: Annotated[Principal, Depends(requires(Permission.READ_LOG))]) -> PlainTextResponse:
    return PlainTextResponse(ledger.checkpoints.issue(principal.tenant))


@router.get("/proofs/inclusion", response_model=InclusionProof, response_model_exclude_none=True)
def inclusion(ledger: LedgerDep, principal: Reading, seq: Size, size: Size | None = None,
              signed: Signed = False) -> Any:
    return ledger.proofs.inclusion(principal.tenant, seq, size, signed=signed).to_json()


@router.get("/proofs/consistency", response_model=ConsistencyProof, response_model_exclude_none=True)
def consistency(ledger: LedgerDep, principal: Reading, first: Size, second: Size | None = None,
                signed: Signed = False) -> Any:
    return ledger.proofs.consistency(principal.tenant, first, second, signed=signed).to_json()


@router.get("/proofs/range", response_model=RangeProof, response_model_exclude_none=True)
def range_(ledger: LedgerDep, principal: Reading, start: Size, end: Size, size: Size | None = None,
           signed: Signed = False) -> Any:
    return ledger.proofs.range(principal.tenant, start, end, size, signed=signed).to_json()
