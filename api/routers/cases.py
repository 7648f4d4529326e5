"""Case assignments: supervisors put agents on cases and take them off; each change is an entry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from api.auth import Principal
from api.deps import AccessDep, LedgerDep, requires
from api.schemas import Appended, AssignmentIn, CaseAssignmentsOut, CaseId
from compliance.access import Permission

router = APIRouter(prefix="/v1", tags=["cases"])
Supervisor = Annotated[Principal, Depends(requires(Permission.ASSIGN_CASES))]
Agent = Annotated[str, Path(pattern=r"^user:[A-Za-z0-9._@:-]{1,120}$")]


@router.get("/cases/{case}/assignments", response_model=CaseAssignmentsOut)
def list_assignments(case: Annotated[CaseId, Path()], ledger: LedgerDep, principal: Supervisor) -> Any:
    staff = ledger.cases.staff(principal.tenant, case)
    return {"case": case, "exists": staff.exists, "opener": staff.opener, "agents": sorted(staff.agents)}


@router.post("/cases/{case}/assignments", status_code=201, response_model=Appended)
def assign(case: Annotated[CaseId, Path()], body: AssignmentIn, access: AccessDep, principal: Supervisor) -> Response:
    appended = access.assignments.assign(principal.tenant, principal.actor, case, body.agent)
    return Response(appended.as_json(), status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/entries/{appended.seq}"})


@router.delete("/cases/{case}/assignments/{agent}", response_model=Appended)
def unassign(case: Annotated[CaseId, Path()], agent: Agent, access: AccessDep, principal: Supervisor) -> Response:
    appended = access.assignments.unassign(principal.tenant, principal.actor, case, agent)
    return Response(appended.as_json(), media_type="application/json")
