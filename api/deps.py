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
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


async def _state(request: Request) -> AppState:
    state: AppState = request.app.state.caseledger
    return state


_bearer = HTTPBearer(auto_error=False, description="A JWT from the built-in issuer or the configured IdP")


async def _principal(
    state: Annotated[AppState, Depends(_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    principal = state.verifier.cached(credentials.credentials)
    if principal is not None:
        return principal
    # a token not seen before may need the identity provider's JWKS fetched: off the event loop
    return await run_in_threadpool(state.verifier.verify, credentials.credentials)


def requires(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that authenticates and checks one permission of the role table."""

    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        require(as_reader(principal), permission)
        return principal

    return check


def as_reader(principal: Principal) -> Reader:
    return Reader(actor=principal.actor, role=principal.role, perms=principal.perms, cases=principal.cases)


async def _ledger(state: Annotated[AppState, Depends(_state)]) -> Ledger:
    return state.ledger


async def _access(state: Annotated[AppState, Depends(_state)]) -> AccessService:
    return state.access


AnyPrincipal = Annotated[Principal, Depends(_principal)]
LedgerDep = Annotated[Ledger, Depends(_ledger)]
AccessDep = Annotated[AccessService, Depends(_access)]
Purpose = Annotated[str | None, Header(alias="X-Purpose", description="why the content is read (logged)")]
