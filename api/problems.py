"""Domain errors become RFC 9457 problem documents here, and only here (STYLE §6).

Any other exception is the last-resort 500 of `api.middleware.RequestIds`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Unauthenticated
from ledger.errors import (
    ConfigurationError,
    Conflict,
    DecryptionError,
    Gone,
    InvalidInput,
    LedgerError,
    NotFound,
    PolicyViolation,
    TooLarge,
    TooManyRequests,
    VerificationError,
)
from verification.entry import MAX_JSON_DEPTH

__all__ = ["domain_problem", "install_problem_handlers", "problem"]

PROBLEM_TYPE = "https://caseledger.dev/problems/"
_STATUS: list[tuple[type[LedgerError], int, str]] = [
    (Unauthenticated, 401, "Unauthorized"),
    (NotFound, 404, "Not Found"),
    (Gone, 410, "Gone"),
    (TooManyRequests, 429, "Too Many Requests"),
    (TooLarge, 413, "Content Too Large"),
    (InvalidInput, 400, "Bad Request"),
    (PolicyViolation, 403, "Forbidden"),
    (Conflict, 409, "Conflict"),
    (ConfigurationError, 503, "Service Unavailable"),
    (DecryptionError, 500, "Internal Server Error"),
    (VerificationError, 500, "Internal Server Error"),
]
log = logging.getLogger("caseledger.api")


def problem(status: int, title: str, detail: str | None = None, code: str = "about:blank",
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": code if code == "about:blank" else PROBLEM_TYPE + code,
                            "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body |= extra
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _request_id(request: Request) -> str | None:
    request_id = getattr(request.state, "request_id", None)
    return request_id if isinstance(request_id, str) else None


def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    status, title = next(((status, title) for kind, status, title in _STATUS if isinstance(exc, kind)),
                         (400, "Bad Request"))
    if isinstance(exc, Unauthenticated):
        return problem(401, title, code=exc.code, headers={"WWW-Authenticate": "Bearer"})
    if status >= 500:
        request_id = _request_id(request)
        log.error("request failed: %s: %s (request_id=%s)", type(exc).__name__, exc, request_id)
        extra: dict[str, Any] = {"request_id": request_id} if request_id else {}
        return problem(status, title, code=exc.code, **extra)
    return problem(status, title, exc.message, code=exc.code)


def domain_problem(request: Request, exc: LedgerError) -> JSONResponse:
    """The problem document of a domain error, for code that runs outside the exception handlers."""
    return _ledger_error(request, exc)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else str(first["msg"])
    return problem(422, "Unprocessable Content", detail, code="invalid-request", errors=errors)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, LedgerError):  # a domain error raised where only HTTPException passes
        return _ledger_error(_request, exc.__cause__)
    if isinstance(exc.__cause__, RecursionError):
        # FastAPI decodes a JSON body with `json.loads`, which gives up on ~1000 levels of nesting, and
        # turns that into a 400 "error parsing the body": refused here as any body nested too deep is
        return _validation_error(_request, RequestValidationError([{
            "type": "json_too_deep", "loc": ("body",), "msg": f"JSON nests deeper than {MAX_JSON_DEPTH} levels",
            "input": {}}]))
    return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
