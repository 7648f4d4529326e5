"""Dependencies shared by the routers, as `Annotated` aliases (STYLE §12).

They are `async def`: FastAPI runs a plain `def` dependency in its threadpool, a thread hop per
dependency per request, and none of these blocks (a token not seen before is verified off the loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from api.auth import Principal, TokenIssuer, TokenVerifier, Unauthenticated
from compliance.access import AccessService, Permission, Reader, require
from ledger.service import Ledger

__all__ = ["AccessDep", "AnyPrincipal", "AppState", "LedgerDep", "Purpose", "as_reader", "requires"]


@dataclass
class AppState:
    ledger: Ledger
    access: AccessService
    verifier: TokenVerifier
    issuer: TokenIssuer | None


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.caseledger
    return state


class _Authorised(HTTPBearer):
    """Authenticate the bearer token and check one permission (or none) of the role table.

    One dependency that is also the OpenAPI security scheme: FastAPI re-inspects every node of a
    dependency tree on every request, so the tree is kept to this node.
    """

    def __init__(self, permission: Permission | None) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer",
                         description="A JWT from the built-in issuer or the configured IdP")
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthenticated()
        verifier = _state(request).verifier
        principal = verifier.cached(credentials.credentials)
        if principal is None:
            # a token not seen before may need the identity provider's JWKS fetched: off the loop
            principal = await run_in_threadpool(verifier.verify, credentials.credentials)
        if self.permission is not None:
            require(as_reader(principal), self.permission)
        return principal


def requires(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates and checks one permission of the role table."""
    return _Authorised(permission)


def as_reader(principal: Principal) -> Reader:
    return Reader(actor=principal.actor, role=principal.role, perms=principal.perms, cases=principal.cases)


async def _ledger(request: Request) -> Ledger:
    return _state(request).ledger


async def _access(request: Request) -> AccessService:
    return _state(request).access


AnyPrincipal = Annotated[Principal, Depends(_Authorised(None))]
LedgerDep = Annotated[Ledger, Depends(_ledger)]
AccessDep = Annotated[AccessService, Depends(_access)]
Purpose = Annotated[str | None, Header(alias="X-Purpose", description="why the content is read (logged)")]
