"""Hardening of the HTTP face, each test named after the attack: metric-series flooding, bodies sent
without a token, crashes (request ids, one log line, a closed connection), absurd token times, and
request heads uvicorn cannot parse."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import socket
import string
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Message

from api.app import create_app
from api.auth import TokenIssuer, load_jwt_key
from api.cli.serve import ProblemH11Protocol
from api.settings import ApiSettings
from ledger.errors import DecryptionError, LedgerError
from tests.api.conftest import Api, interaction
from tests.api.test_http_jwt import Builtin

PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def _series(api: Api) -> set[str]:
    """Every labelled sample of our own metrics, as `name{labels}`."""
    with api.client() as http:
        text = http.get("/metrics").text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines()
            if line.startswith("caseledger_") and "{" in line}


# --------------------------------------------------------------------------- metrics


def test_made_up_methods_and_random_paths_do_not_create_metric_series(api: Api) -> None:
    with api.client() as http:
        http.get("/v1/nowhere")  # the series of an unmatched path exist before the flood
        http.request("BREW", "/v1/log")
    before = _series(api)
    rng = random.Random(7)
    with api.client() as http:
        for n in range(300):
            method = "".join(rng.choices(string.ascii_uppercase, k=10))
            path = "/v1/log" if n % 3 == 0 else f"/{uuid.uuid4().hex}/{n}?q={n}"
            assert http.request(method, path).status_code in (404, 405)
    added = _series(api) - before
    # a fixed label set: "other" methods and "unmatched" paths, a handful of statuses
    assert len(added) <= 40, sorted(added)[:10]
    assert not any("BREW" in series or "/nowhere" in series for series in _series(api))


# --------------------------------------------------------------------------- authentication before the body


def test_broken_json_without_a_token_is_401_not_422(api: Api) -> None:
    with api.client() as http:
        response = http.post("/v1/interactions", content=b"{" * MIB, headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_bad_token_with_a_megabyte_body_is_401(api: Api) -> None:
    with api.client(headers={"Authorization": "Bearer not-a-token"}) as http:
        response = http.post("/v1/interactions", content=b"x" * MIB, headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text


def _post_asgi(app: FastAPI, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """POST `body` to /v1/interactions straight into the ASGI app: (status, times the body was received)."""
    received = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/interactions", "raw_path": b"/v1/interactions", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 50000), "server": ("test", 80), "state": {},
    }

    async def run() -> None:
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(run())
    return sent[0]["status"], received


def test_an_anonymous_megabyte_body_is_never_received(api: Api) -> None:
    app = create_app(api.settings)
    status, received = _post_asgi(app, b"{" * MIB, [])
    assert (status, received) == (401, 0)
    status, received = _post_asgi(app, b"{" * MIB, [(b"authorization", b"Bearer " + b"e30." * 100)])
    assert (status, received) == (401, 0)
    # the control: with a valid token the same body is read (and refused for what it is)
    token = api.token("acme", "agent", "lou")
    status, received = _post_asgi(app, b"{" * 100, [(b"authorization", f"Bearer {token}".encode())])
    assert (status, received) == (422, 1)


def test_a_valid_token_still_posts(api: Api) -> None:
    with api.client("acme", "agent", "lou") as http:
        assert http.post("/v1/interactions", json=interaction("H-1")).status_code == 201


# --------------------------------------------------------------------------- crashes


def _crashing_app(settings: ApiSettings) -> FastAPI:
    app = create_app(settings)

    @app.get("/test-only/crash")
    def crash() -> None:
        raise RuntimeError("patient Jane Doe, 555-0100")  # personal data that must not be logged

    @app.get("/test-only/domain-crash")
    def domain_crash() -> None:
        raise DecryptionError()

    return app


def _get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET `path` from the ASGI app in process; an exception escaping the app is raised here (as it
    would reach, and be logged again by, a server)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(get())


def _error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_crash_is_one_log_line_and_a_problem_with_the_request_id(api: Api,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    app = _crashing_app(api.settings)
    with caplog.at_level(logging.INFO):
        response = _get(app, "/test-only/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["connection"] == "close"
    request_id = response.headers["x-request-id"]
    assert response.json() == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                               "request_id": request_id}
    errors = _error_records(caplog)
    assert len(errors) == 1, [record.getMessage() for record in errors]
    line = errors[0].getMessage()
    assert request_id in line and "RuntimeError" in line and "\n" not in line
    assert errors[0].exc_info is None and "Jane" not in line


def test_a_domain_500_carries_the_request_id_and_closes(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    app = _crashing_app(api.settings)
    with caplog.at_level(logging.INFO):
        response = _get(app, "/test-only/domain-crash", {"X-Request-ID": "support-ticket-42"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "support-ticket-42"
    assert response.headers["connection"] == "close"
    assert response.json()["request_id"] == "support-ticket-42"
    errors = _error_records(caplog)
    assert len(errors) == 1 and "support-ticket-42" in errors[0].getMessage()


@pytest.mark.parametrize("incoming", ["a b", "x" * 129, "<script>", "id\u00e9"])
def test_a_hostile_request_id_is_replaced(api: Api, incoming: str) -> None:
    with api.client() as http:
        response = http.get("/healthz", headers={b"X-Request-ID": incoming.encode("utf-8")})
        again = http.get("/healthz", headers={b"X-Request-ID": incoming.encode("utf-8")})
    assert response.status_code == 200
    made = response.headers["x-request-id"]
    assert made != incoming and re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", made)
    assert again.headers["x-request-id"] != made, "each request gets an id of its own"


def test_every_response_has_a_request_id(api: Api) -> None:
    with api.client() as http:
        responses = [http.get("/healthz"), http.get("/v1/log"), http.get("/nowhere"),
                     http.post("/v1/interactions", content=b"x" * (MIB + 1)),
                     http.get("/healthz", headers={"X-Filler": "a" * 20_000}),
                     http.get("/healthz", headers={"X-Request-ID": "abc-123"})]
    ids = [response.headers.get("x-request-id") for response in responses]
    assert all(ids), [(r.status_code, r.headers) for r in responses]
    assert len(set(ids)) == len(ids) and ids[-1] == "abc-123"


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening (an event, not a poll)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def _serving(app: FastAPI, **config: Any) -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    # log_config=None: uvicorn's loggers propagate to the root logger, where caplog sees them
    server = _Server(uvicorn.Config(app, log_config=None, lifespan="off", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(30)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_crash_under_a_real_server_closes_the_connection_and_logs_once(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), _serving(_crashing_app(api.settings), http="h11") as port, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /test-only/crash HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = _read_until_closed(sock)  # returns only because the server closes the connection
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["request_id"].encode() in head
    errors = _error_records(caplog)
    assert len(errors) == 1, [record.getMessage() for record in errors]


# --------------------------------------------------------------------------- absurd token times


def _time_attacks(b: Builtin) -> dict[str, str]:
    now = int(time.time())
    return {
        "exp-numeric-string": b.sign(b.claims(exp="9999999999")),
        "exp-numeric-string-near": b.sign(b.claims(exp=str(now + 600))),
        "exp-ten-years-ahead": b.sign(b.claims(exp=now + 10 * 365 * 86400)),
        "exp-after-year-9999": b.sign(b.claims(exp=253_402_300_800 + 10**6)),
        "exp-huge-int": b.sign(b.claims(exp=10**400)),
        "exp-1e300": b.sign(b.claims(exp=1e300)),
        "exp-infinity": b.sign(b.claims(exp=math.inf)),
        "exp-nan": b.sign(b.claims(exp=math.nan)),
        "exp-true": b.sign(b.claims(exp=True)),
        "exp-list": b.sign(b.claims(exp=[now + 600])),
        "iat-numeric-string": b.sign(b.claims(iat="1")),
        "iat-infinity": b.sign(b.claims(iat=-math.inf)),
        "nbf-numeric-string": b.sign(b.claims(nbf="1")),
        "nbf-null-object": b.sign(b.claims(nbf={"a": 1})),
    }


@pytest.fixture(scope="module")
def builtin(api: Api) -> Builtin:
    return Builtin(api)


@pytest.mark.parametrize("attack", [
    "exp-numeric-string", "exp-numeric-string-near", "exp-ten-years-ahead", "exp-after-year-9999", "exp-huge-int",
    "exp-1e300", "exp-infinity", "exp-nan", "exp-true", "exp-list", "iat-numeric-string", "iat-infinity",
    "nbf-numeric-string", "nbf-null-object"])
def test_absurd_token_times_are_401_never_500(api: Api, builtin: Builtin, attack: str) -> None:
    token = _time_attacks(builtin)[attack]
    with api.client() as http:
        response = http.get("/v1/log", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {"type": "https://caseledger.dev/problems/unauthenticated", "title": "Unauthorized",
                               "status": 401}


def test_a_token_within_the_lifetime_is_accepted(api: Api, builtin: Builtin) -> None:
    now = int(time.time())
    with api.client() as http:
        response = http.get("/v1/log", headers={
            "Authorization": f"Bearer {builtin.sign(builtin.claims(exp=now + 6 * 86400, nbf=None))}"})
    assert response.status_code == 200, response.text


def test_the_issuer_refuses_a_ttl_beyond_the_maximum_lifetime(api: Api) -> None:
    settings = api.settings
    key = load_jwt_key(settings)
    assert key is not None
    with pytest.raises(LedgerError, match="CASELEDGER_JWT_MAX_LIFETIME"):
        TokenIssuer(key, settings).issue("acme", "agent", "lou", ttl=settings.jwt_max_lifetime + 1)


# --------------------------------------------------------------------------- heads uvicorn cannot parse


def test_an_unparseable_request_head_is_a_problem_document(api: Api) -> None:
    with _serving(create_app(api.settings), http=ProblemH11Protocol) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # A head just over h11's 16 KiB limit, sent whole: h11 refuses it, not our middleware. Sent whole so
        # the server has read every byte before it answers and closes; bytes it had not read would turn its
        # close into a reset that discards the answer before the client reads it.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: " + b"a" * (16 * 1024 + 64))
        answer = _read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 400
