"""Dependencies shared by the routers, as `Annotated` aliases (STYLE §12), and `authenticate`, the one
place a bearer token is checked.

They are `async def`: FastAPI runs a plain `def` dependency in its threadpool, a thread hop per
dependency per request, and none of these blocks (a token not seen before is verified off the loop).

FastAPI reads and parses a request body before it resolves any dependency, so an anonymous client
could make us read and parse a megabyte (and answer 422 about it) before learning it is not
authenticated. `api.middleware.AuthenticateFirst` therefore checks the token of every request to
a route that depends on a principal (`authenticated_routes`) before the app sees the request; the
principal is kept in the request scope, and the dependency finds it there instead of verifying again.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPBearer
from starlette.routing import compile_path

from api.auth import Principal, TokenIssuer, TokenVerifier, Unauthenticated
from api.settings import ApiSettings
from compliance.access import AccessService, Permission, Reader, require
from ledger.service import Ledger

__all__ = ["AccessDep", "AnyPrincipal", "ApiSettingsDep", "AppState", "AuthenticatedRoute", "LedgerDep", "Purpose",
           "as_reader", "authenticate", "authenticated_routes", "requires"]

#: where a request's verified principal is kept in its ASGI scope
_PRINCIPAL = "caseledger.principal"


@dataclass
class AppState:
    ledger: Ledger
    access: AccessService
    verifier: TokenVerifier
    issuer: TokenIssuer | None
    settings: ApiSettings


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.caseledger
    return state


def _bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(request: Request) -> Principal:
    """The principal of the request's bearer token, verified once per request (then kept in its scope)."""
    principal: Principal | None = request.scope.get(_PRINCIPAL)
    if principal is not None:
        return principal
    token = _bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthenticated()
    verifier = _state(request).verifier
    principal = verifier.cached(token)
    if principal is None:
        # a token not seen before may need the identity provider's JWKS fetched: off the loop
        principal = await run_in_threadpool(verifier.verify, token)
    request.scope[_PRINCIPAL] = principal
    return principal


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
        principal = await authenticate(request)
        if self.permission is not None:
            require(as_reader(principal), self.permission)
        return principal


def requires(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates and checks one permission of the role table."""
    return _Authorised(permission)


def as_reader(principal: Principal) -> Reader:
    return Reader(actor=principal.actor, role=principal.role, perms=principal.perms, cases=principal.cases)


def _needs_principal(dependant: Dependant) -> bool:
    return isinstance(dependant.call, _Authorised) or any(_needs_principal(d) for d in dependant.dependencies)


@dataclass(frozen=True)
class AuthenticatedRoute:
    """A route that depends on a principal: its path template, the regex that matches it, its methods."""

    path: str
    regex: re.Pattern[str]
    methods: frozenset[str]

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.regex.match(path) is not None


def authenticated_routes(app: FastAPI) -> list[AuthenticatedRoute]:
    """The routes of `app` (included routers too) whose dependencies ask for a principal."""
    found = []
    for route in iter_route_contexts(app.routes):
        dependant, path = getattr(route, "dependant", None), route.path
        if isinstance(dependant, Dependant) and path and _needs_principal(dependant):
            regex, _, _ = compile_path(path)
            found.append(AuthenticatedRoute(path, regex, frozenset(route.methods or ())))
    return found


async def _ledger(request: Request) -> Ledger:
    return _state(request).ledger


async def _access(request: Request) -> AccessService:
    return _state(request).access


async def _settings(request: Request) -> ApiSettings:
    return _state(request).settings


AnyPrincipal = Annotated[Principal, Depends(_Authorised(None))]
LedgerDep = Annotated[Ledger, Depends(_ledger)]
AccessDep = Annotated[AccessService, Depends(_access)]
ApiSettingsDep = Annotated[ApiSettings, Depends(_settings)]
Purpose = Annotated[str | None, Header(alias="X-Purpose", description="why the content is read (logged)")]
