"""Exports over HTTP (DESIGN §9): ask for one (202 and a Location to follow), follow it, download its
files — the signed PDF, the bundle, JSONL and CSV. The rules are `compliance.exports`'."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import FileResponse

from api.compliance_schemas import ExportIn, RequestId
from api.deps import AnyPrincipal, as_reader
from compliance.exports import FILE_NAMES, MEDIA_TYPES, ExportRequest, ExportRunner, Exports

__all__ = ["EXPORT_RUNNER", "router"]

router = APIRouter(prefix="/v1", tags=["exports"])
#: where the app keeps its export runner (`app.state`)
EXPORT_RUNNER = "caseledger_exports"


def runner(request: Request) -> ExportRunner:
    """The app's export runner (started by the app's lifespan)."""
    made: ExportRunner = getattr(request.app.state, EXPORT_RUNNER)
    return made


async def _exports(request: Request) -> Exports:
    return runner(request).exports


ExportsDep = Annotated[Exports, Depends(_exports)]
ExportId = Annotated[RequestId, Path(description="the export's id")]


@router.post("/exports", status_code=202)
def create_export(body: ExportIn, request: Request, response: Response, exports: ExportsDep,
                  principal: AnyPrincipal) -> dict[str, Any]:
    """Ask for an export (an `export` entry); it is built in the background: follow `Location`."""
    job = exports.create(principal.tenant, as_reader(principal), ExportRequest(
        case=body.case, subject_ref=body.subject_ref, start=body.start, end=body.end, since=body.since,
        until=body.until, include_content=body.include_content, redact=tuple(body.redact), format=body.format))
    runner(request).submit(principal.tenant, job.export_id)
    response.headers["Location"] = f"/v1/exports/{job.export_id}"
    return job.to_json()


@router.get("/exports/{export_id}")
def get_export(export_id: ExportId, exports: ExportsDep, principal: AnyPrincipal) -> dict[str, Any]:
    """Where the export stands: queued, running, done (with its files) or failed (with why)."""
    return exports.get(principal.tenant, as_reader(principal), export_id).to_json()


@router.get("/exports/{export_id}/files/{name}", response_class=FileResponse)
def download_export(export_id: ExportId, name: Annotated[Literal["pdf", "bundle", "jsonl", "csv"], Path()],
                    exports: ExportsDep, principal: AnyPrincipal) -> FileResponse:
    """A finished export's file; 409 while it is being built."""
    path = exports.file(principal.tenant, as_reader(principal), export_id, name)
    return FileResponse(path, media_type=MEDIA_TYPES[name], filename=f"caseledger-{export_id}-{FILE_NAMES[name]}",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
