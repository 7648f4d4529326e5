"""Shares over HTTP (DESIGN §8): the tenant's staff share a document and revoke the link; the
recipient downloads it, with no account, through the link (`compliance.shares` holds the rules).

`GET /v1/shared/{token}` and `GET /v1/shared/{token}/receipt` depend on no principal, so
`api.middleware.AuthenticateFirst` lets them through without a bearer token: the token in the path
is the capability.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException

from api.deps import AnyPrincipal, AppState, as_reader
from api.documents_schemas import DocumentReceiptOut
from api.shares_schemas import (
    DocumentId,
    ShareCreated,
    ShareId,
    ShareIn,
    ShareList,
    ShareOut,
)
from compliance.shares import Download, ShareService
from ledger.documents import DocumentInfo
from ledger.errors import TooManyRequests

__all__ = ["content_disposition", "router"]

router = APIRouter(prefix="/v1", tags=["shares"])

#: what a file name's ASCII fallback keeps (RFC 6266 §4.3: a quoted-string with nothing to escape)
_FALLBACK_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 !#$&'()+,-.@[]^_{}~")
#: RFC 5987 attr-char besides letters and digits: left as they are in `filename*`
_ATTR_CHAR = "!#$&+-.^_`|~"
_SERVICE = "caseledger.shares"
#: what a downloaded file's response says besides its type, length and name
_DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                     "Content-Security-Policy": "default-src 'none'; sandbox"}
_TOKEN = Annotated[str, Path(description="the link's token: 43 base64url characters")]


async def _service(request: Request) -> ShareService:
    """The app's share service, made on first use (it holds the bad-token limiter of this process)."""
    state: AppState = request.app.state.caseledger
    service: ShareService | None = getattr(request.app.state, _SERVICE, None)
    if service is None or service.ledger is not state.ledger:
        service = ShareService(state.ledger, state.access)
        setattr(request.app.state, _SERVICE, service)
    return service


Shares = Annotated[ShareService, Depends(_service)]


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback that needs no escaping and the exact name as RFC 5987
    ``filename*`` (RFC 6266 §4.3): no quote, backslash or control character reaches the header."""
    # accents come off ("é" → "e"); anything else outside the safe set becomes "_"
    kept = (c for c in unicodedata.normalize("NFKD", name) if unicodedata.category(c) != "Mn")
    fallback = "".join(c if c in _FALLBACK_KEEP else "_" for c in kept).strip(" .") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHAR)}"


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _limited(exc: TooManyRequests) -> HTTPException:
    # the problem handlers render a domain error without headers: Retry-After needs an HTTPException
    return HTTPException(429, "Too Many Requests", headers={"Retry-After": str(exc.fields.get("retry_after", 60))})


def _file_headers(document: DocumentInfo) -> dict[str, str]:
    return {"Content-Type": document.media_type, "Content-Length": str(document.size),
            "Content-Disposition": content_disposition(document.name)} | _DOWNLOAD_HEADERS


@router.post("/documents/{document_id}/shares", status_code=201, response_model=ShareCreated)
def create_share(document_id: Annotated[DocumentId, Path()], body: ShareIn, request: Request, shares: Shares,
                 principal: AnyPrincipal) -> dict[str, Any]:
    """Share a document with a recipient: the link is in `url`, shown this once (a `share` entry)."""
    made = shares.create(principal.tenant, as_reader(principal), document_id, recipient=body.recipient,
                         expires_in=body.expires_in, max_downloads=body.max_downloads, purpose=body.purpose)
    url = str(request.url_for("download_shared", token=made.token))
    return {"share_id": made.share.share_id, "url": url, "expires_at": made.share.expires_at,
            "max_downloads": made.share.max_downloads}


@router.get("/documents/{document_id}/shares", response_model=ShareList)
def list_shares(document_id: Annotated[DocumentId, Path()], shares: Shares, principal: AnyPrincipal) -> dict[str, Any]:
    found = shares.list(principal.tenant, as_reader(principal), document_id)
    return {"document_id": document_id, "shares": [share.as_dict() for share in found]}


@router.delete("/shares/{share_id}", response_model=ShareOut)
def revoke_share(share_id: Annotated[ShareId, Path()], shares: Shares, principal: AnyPrincipal) -> dict[str, Any]:
    """Revoke a link (a `share` entry); the share as it now stands."""
    return shares.revoke(principal.tenant, as_reader(principal), share_id).as_dict()


@router.get("/shared/{token}", name="download_shared", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "the file, as its recorded media type"},
                       404: {"description": "no such share"}, 410: {"description": "expired, revoked or used up"},
                       429: {"description": "too many bad links from this address"}})
def download_shared(token: _TOKEN, request: Request, shares: Shares) -> StreamingResponse:
    """Download a shared document (no account: the token is the capability). Each download is counted
    and recorded as an `access` entry before the first byte; a stored file that does not decrypt
    breaks the transfer instead of completing it."""
    try:
        download: Download = shares.download(token, _client(request))
    except TooManyRequests as exc:
        raise _limited(exc) from None
    # a failure while the body streams propagates out of the app: the server then closes the
    # connection short of Content-Length, and the client sees an incomplete transfer
    return StreamingResponse(download.chunks, headers=_file_headers(download.document))


@router.get("/shared/{token}/receipt", response_model=DocumentReceiptOut, response_model_exclude_none=True,
            responses={404: {"description": "no such share"}, 410: {"description": "expired or revoked"},
                       429: {"description": "too many bad links from this address"}})
def shared_receipt(token: _TOKEN, request: Request, shares: Shares) -> Any:
    """The shared document's receipt (with its anchor once anchored); counts no download."""
    try:
        return shares.receipt(token, _client(request)).to_json()
    except TooManyRequests as exc:
        raise _limited(exc) from None
