"""Entries and case timelines. Content is decrypted only where the role allows, and each read is logged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Principal
from api.deps import AccessDep, AnyPrincipal, ApiSettingsDep, LedgerDep, Purpose, as_reader, requires
from api.schemas import CaseId, EntriesPage, EntryOut, Receipt, Timeline
from compliance.access import Permission

router = APIRouter(prefix="/v1", tags=["entries"])
_MAX_SEQ = 2**62


@router.get("/entries/{seq}", response_model=EntryOut, response_model_exclude_none=True)
def get_entry(
    seq: Annotated[int, Path(ge=0, le=_MAX_SEQ)],
    access: AccessDep,
    principal: AnyPrincipal,
    purpose: Purpose = None,
    content: Annotated[bool, Query(description="decrypt the content (logged as an access entry)")] = False,
) -> dict[str, Any]:
    return access.entry(principal.tenant, as_reader(principal), seq, content, purpose)


@router.get("/entries/{seq}/receipt", response_model=Receipt, response_model_exclude_none=True)
def get_receipt(seq: Annotated[int, Path(ge=0, le=_MAX_SEQ)], access: AccessDep, principal: AnyPrincipal) -> Any:
    """The entry's `caseledger.receipt`; once the entry is anchored, against the anchored checkpoint and
    with its anchor."""
    return access.receipt(principal.tenant, as_reader(principal), seq).to_json()


@router.get("/entries", response_model=EntriesPage, response_model_exclude_unset=True)
def list_entries(
    ledger: LedgerDep,
    settings: ApiSettingsDep,
    principal: Annotated[Principal, Depends(requires(Permission.READ_HEADERS))],
    after: Annotated[int, Query(ge=-1, le=_MAX_SEQ, description="last seq already seen")] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    size = min(limit, settings.max_page)
    page = ledger.reads.headers(principal.tenant, after, size)
    entries = [{"seq": entry.seq, "entry_hash": entry.entry_hash, "header": entry.header} for entry in page]
    return {"entries": entries, "next_after": page[-1].seq if len(page) == size else None}


@router.get("/cases/{case}/timeline", response_model=Timeline, response_model_exclude_none=True)
def case_timeline(
    case: Annotated[CaseId, Path()],
    access: AccessDep,
    principal: AnyPrincipal,
    purpose: Purpose = None,
) -> dict[str, Any]:
    return access.timeline(principal.tenant, as_reader(principal), case, purpose)
