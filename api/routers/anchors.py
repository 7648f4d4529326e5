"""Anchors (DESIGN §6): the rounds that anchored the caller's log, and anchor receipts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.auth import Principal
from api.deps import LedgerDep, requires
from api.schemas import AnchorProof, Anchors
from compliance.access import Permission

router = APIRouter(prefix="/v1", tags=["anchors"])


@router.get("/anchors", response_model=Anchors)
def anchors(ledger: LedgerDep, principal: Annotated[Principal, Depends(requires(Permission.READ_LOG))],
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    return {"rounds": [log_round.as_dict() for log_round in ledger.anchoring.rounds_of(principal.tenant, limit)]}


@router.get("/anchors/receipt", response_model=AnchorProof, response_model_exclude_none=True)
def anchor_receipt(ledger: LedgerDep, principal: Annotated[Principal, Depends(requires(Permission.READ_PROOFS))],
                   size: Annotated[int | None, Query(ge=0, le=2**62, description="default: the newest anchor")] = None
                   ) -> Any:
    return ledger.anchoring.receipt(principal.tenant, size).as_dict()
