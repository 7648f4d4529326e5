"""Pure ASGI middleware: request ids and the last-resort 500, the request body limit (before any
parsing) and Prometheus metrics."""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
import traceback
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import AuthenticatedRoute, authenticate
from api.problems import domain_problem
from ledger.errors import LedgerError, TooLarge

__all__ = ["LATENCY", "METHODS", "REQUESTS", "AuthenticateFirst", "BodyLimit", "Metrics", "RequestIds", "method_label",
           "route_label"]
#: the scope key where `AuthenticateFirst` notes the template of the route it matched
_MATCHED = "caseledger.route"

REQUESTS = Counter("caseledger_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("caseledger_http_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


#: request head limit (h11's default): h11 enforces it only on heads that arrive in pieces
MAX_HEADER_BYTES = 16 * 1024
#: the methods that have a metrics label of their own; any other is counted as "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: an incoming X-Request-ID we pass on; anything else is replaced by a fresh id
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}\Z")
log = logging.getLogger("caseledger.api")
#: request ids this process makes: a random prefix per process and a counter (unique, and no
#: system call per request as uuid4 would make)
_ID_PREFIX = uuid.uuid4().hex[:12]
_ID_COUNTER = itertools.count()


def _new_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


def method_label(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in METHODS else "other"


def route_label(scope: Scope) -> str:
    """The matched route's template (never the raw path, which the client chooses), or "unmatched"."""
    path = getattr(scope.get("route"), "path", None) or scope.get(_MATCHED)
    return path if isinstance(path, str) else "unmatched"


def _refusal(status: int, code: str, title: str, detail: str | None = None,
             headers: tuple[tuple[bytes, bytes], ...] = (), **extra: str) -> tuple[Message, Message]:
    document: dict[str, Any] = {"type": f"https://caseledger.dev/problems/{code}" if code != "about:blank" else code,
                                "title": title, "status": status}
    if detail:
        document["detail"] = detail
    body = json.dumps(document | extra).encode()
    # no "Connection: close" here: closing with an unread body resets the connection and the client
    # may never see the answer; uvicorn keeps the connection and discards the rest of the body instead
    start: Message = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
        *headers]}
    return start, {"type": "http.response.body", "body": body}


def _too_large(limit: int) -> tuple[Message, Message]:
    return _refusal(413, "too-large", "Content Too Large", f"request bodies are limited to {limit} bytes")


class BodyLimit:
    """Refuse bodies over `limit` bytes: at once from Content-Length, or as soon as a chunked body exceeds it.

    Request heads over `MAX_HEADER_BYTES` are refused too (431), however the bytes arrived.
    """

    def __init__(self, app: ASGIApp, limit: int, uploads: frozenset[str] = frozenset(), upload_limit: int = 0) -> None:
        self.app, self.default_limit = app, limit
        #: paths that take files (documents), with their own, larger limit
        self.uploads, self.upload_limit = uploads, upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] in self.uploads else self.default_limit
        if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            for message in _refusal(431, "headers-too-large", "Request Header Fields Too Large",
                                    f"request headers are limited to {MAX_HEADER_BYTES} bytes"):
                await send(message)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                for message in _too_large(limit):
                    await send(message)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI turns any other error raised while it reads a body into a 400; an
                    # HTTPException passes through, and the problem handler renders its cause
                    raise HTTPException(413) from TooLarge(f"request bodies are limited to {limit} bytes")
            return message

        await self.app(scope, limited, send)


class RequestIds:
    """Give every request an id, send it back as X-Request-ID, and be the last resort for errors.

    The id is the client's X-Request-ID if it is sane (1-128 of letters, digits and ``. _ : -``),
    otherwise a fresh one; handlers find it in ``request.state.request_id``. An exception that
    escaped every handler is logged here as one line (its type and where it was raised, with the
    request id; not its message, which may quote personal data) and answered as a problem document
    carrying the id, with ``Connection: close``. It is not raised further, so the server does not
    log its traceback a second time. Every 500 closes its connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        request_id = incoming.decode() if _SANE_REQUEST_ID.match(incoming) else _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", ()), id_header]
                if message["status"] == 500:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the last resort: whatever it is, one line and a 500
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f"{frame.filename}:{frame.lineno}" if frame else "?"
            log.error("unhandled %s at %s in %s %s (request_id=%s)", type(exc).__name__, where,
                      method_label(scope), route_label(scope), request_id)
            if started:
                return  # the response is cut short; the server closes the connection
            for message in _refusal(500, "about:blank", "Internal Server Error", None,
                                    (id_header, (b"connection", b"close")), request_id=request_id):
                await send(message)


class AuthenticateFirst:
    """Authenticate requests to routes that depend on a principal before the app reads their body.

    FastAPI reads and parses a body before it resolves dependencies; here a request without a valid
    bearer token is answered 401 without a byte of its body received. The principal stays in the
    scope for the route's dependency (`api.deps.authenticate` is the one token check).
    """

    def __init__(self, app: ASGIApp, routes: list[AuthenticatedRoute]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = next((r for r in self.routes if r.matches(scope["method"], scope["path"])), None)
            if route is not None:
                scope[_MATCHED] = route.path
                request = Request(scope)
                try:
                    await authenticate(request)
                except LedgerError as exc:
                    await domain_problem(request, exc)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class Metrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            # a fixed label set: the client must not be able to create series (and our memory) at will
            name = route_label(scope)
            key = (method_label(scope), name, status[0])
            children = self._children.get(key)
            if children is None:  # `labels()` validates and locks on every call: look each set up once
                children = self._children[key] = (REQUESTS.labels(key[0], name, str(key[2])), LATENCY.labels(name))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
