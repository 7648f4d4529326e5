"""Compliance records over HTTP (DESIGN §10): the retention policy, legal holds, erasure requests and
the run that carries out what has become due. The rules and permissions are `compliance.desk`'s."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as Path_
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse

from api.compliance_schemas import DisclosuresIn, ErasureIn, HoldId, HoldIn, ReleaseIn, RequestId, RetentionIn
from api.deps import AnyPrincipal, AppState, as_reader
from compliance.desk import ComplianceDesk

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["compliance"])
_DESK = "caseledger.compliance"


async def _desk(request: Request) -> ComplianceDesk:
    state: AppState = request.app.state.caseledger
    desk: ComplianceDesk | None = getattr(request.app.state, _DESK, None)
    if desk is None or desk.ledger is not state.ledger:
        desk = ComplianceDesk(state.ledger)
        setattr(request.app.state, _DESK, desk)
    return desk


Desk = Annotated[ComplianceDesk, Depends(_desk)]


@router.get("/retention")
def get_retention(desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    """The tenant's retention policy in force, and every earlier version."""
    return desk.policy(principal.tenant, as_reader(principal))


@router.put("/retention")
def set_retention(body: RetentionIn, desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    """Set the retention policy from now on (a `policy` entry); 403 if a locked policy would shorten."""
    rules = [rule.model_dump(exclude_none=True) for rule in body.rules]
    return desk.set_policy(principal.tenant, as_reader(principal), body.profiles, rules, body.locked).to_json()


@router.post("/holds", status_code=201)
def place_hold(body: HoldIn, response: Response, desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    """Place a legal hold on a case or a subject (a `hold` entry)."""
    hold = desk.place_hold(principal.tenant, as_reader(principal), body.reason, case=body.case,
                           subject_ref=body.subject_ref)
    response.headers["Location"] = f"/v1/holds/{hold.hold_id}"
    return hold.to_json()


@router.get("/holds")
def list_holds(desk: Desk, principal: AnyPrincipal,
               active: Annotated[bool | None, Query(description="only holds in place (true) or released")] = None
               ) -> dict[str, Any]:
    return {"holds": [hold.to_json() for hold in desk.all_holds(principal.tenant, as_reader(principal), active)]}


@router.get("/holds/{hold_id}")
def get_hold(hold_id: Annotated[HoldId, Path()], desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    return desk.hold(principal.tenant, as_reader(principal), hold_id).to_json()


@router.post("/holds/{hold_id}/release")
def release_hold(hold_id: Annotated[HoldId, Path()], body: ReleaseIn, desk: Desk,
                 principal: AnyPrincipal) -> dict[str, Any]:
    """Release a hold (a `hold` entry); 409 if it was released already."""
    return desk.release_hold(principal.tenant, as_reader(principal), hold_id, body.reason).to_json()


@router.post("/erasures", status_code=201)
def request_erasure(body: ErasureIn, response: Response, desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    """Decide an erasure request: carried out at once (with its certificate) or deferred while a
    retention period or a hold applies. The answer's `salt` is shown once: the certificate names the
    subject only by HMAC-SHA256(salt, subject_ref)."""
    decision = desk.request_erasure(principal.tenant, as_reader(principal), body.subject_ref, body.reason)
    response.headers["Location"] = f"/v1/erasures/{decision.request_id}"
    return decision.to_json()


@router.get("/erasures")
def list_erasures(desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    return {"erasures": [d.to_json() for d in desk.all_erasures(principal.tenant, as_reader(principal))]}


@router.get("/erasures/{request_id}")
def get_erasure(request_id: Annotated[RequestId, Path()], desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    return desk.erasure(principal.tenant, as_reader(principal), request_id).to_json()


@router.get("/erasures/{request_id}/certificate.pdf", response_class=FileResponse)
def erasure_certificate_pdf(request_id: Annotated[RequestId, Path()], desk: Desk, principal: AnyPrincipal,
                            background: BackgroundTasks) -> FileResponse:
    """The erasure certificate as a signed PDF page (409 while the erasure is deferred)."""
    directory = Path_(tempfile.mkdtemp(prefix="caseledger-certificate-"))
    background.add_task(shutil.rmtree, directory, True)
    out = directory / "certificate.pdf"
    desk.certificate_pdf(principal.tenant, as_reader(principal), request_id, out)
    return FileResponse(out, media_type="application/pdf", filename=f"erasure-certificate-{request_id}.pdf",
                        headers={"Cache-Control": "no-store"})


@router.post("/compliance/run")
def run_compliance(desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    """Carry out the tenant's erasures and expiries that have become due (admins)."""
    return desk.run(principal.tenant, as_reader(principal))


@router.post("/disclosures")
def disclosures(body: DisclosuresIn, desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    """The accounting of disclosures and the access report of a case or a subject (HIPAA §164.528,
    §164.312(b)): every share, download and revocation, and every internal access, over a period
    (default: the last six years)."""
    return desk.disclosures(principal.tenant, as_reader(principal), case=body.case, subject_ref=body.subject_ref,
                            since=body.since, until=body.until).to_json()


@router.post("/audit")
def run_audit(desk: Desk, principal: AnyPrincipal) -> dict[str, Any]:
    """Run the self-audit of the tenant's log now (verify-log and, where anchored, the anchor): an
    `audit` entry; a failure also makes `/readyz` answer 503 until an audit passes."""
    return desk.audit(principal.tenant, as_reader(principal)).to_json()
