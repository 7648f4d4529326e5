"""Pure ASGI middleware: request body limit (before any parsing) and Prometheus metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import TooLarge

__all__ = ["LATENCY", "REQUESTS", "BodyLimit", "Metrics"]

REQUESTS = Counter("caseledger_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("caseledger_http_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


#: request head limit (h11's default): h11 enforces it only on heads that arrive in pieces
MAX_HEADER_BYTES = 16 * 1024


def _refusal(status: int, code: str, title: str, detail: str) -> tuple[Message, Message]:
    body = json.dumps({"type": f"https://caseledger.dev/problems/{code}", "title": title,
                       "status": status, "detail": detail}).encode()
    # no "Connection: close": closing with an unread body resets the connection and the client may
    # never see the answer; uvicorn keeps the connection and discards the rest of the body instead
    start: Message = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


def _too_large(limit: int) -> tuple[Message, Message]:
    return _refusal(413, "too-large", "Content Too Large", f"request bodies are limited to {limit} bytes")


class BodyLimit:
    """Refuse bodies over `limit` bytes: at once from Content-Length, or as soon as a chunked body exceeds it.

    Request heads over `MAX_HEADER_BYTES` are refused too (431), however the bytes arrived.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            for message in _refusal(431, "headers-too-large", "Request Header Fields Too Large",
                                    f"request headers are limited to {MAX_HEADER_BYTES} bytes"):
                await send(message)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                for message in _too_large(self.limit):
                    await send(message)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # FastAPI turns any other error raised while it reads a body into a 400; an
                    # HTTPException passes through, and the problem handler renders its cause
                    raise HTTPException(413) from TooLarge(f"request bodies are limited to {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


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
            route: Any = scope.get("route")
            name = getattr(route, "path", "unmatched")
            key = (scope["method"], name, status[0])
            children = self._children.get(key)
            if children is None:  # `labels()` validates and locks on every call: look each set up once
                children = self._children[key] = (REQUESTS.labels(key[0], name, str(key[2])), LATENCY.labels(name))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
