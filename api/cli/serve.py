"""Serving: ``caseledger serve`` (with ``--demo``) and ``caseledger token`` from the built-in issuer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from contextlib import suppress
from typing import Annotated

import h11
import typer
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.auth import ROLES, TokenIssuer, load_jwt_key
from api.cli.common import TenantOpt, app, load_settings, state
from api.settings import ApiSettings
from ledger.errors import ConfigurationError, Conflict
from ledger.service import Ledger


def _issuer(settings: ApiSettings) -> TokenIssuer:
    key = load_jwt_key(settings)
    if key is None:
        raise ConfigurationError(f"no token signing key at {settings.jwt_key_path}: run `caseledger init`")
    return TokenIssuer(key, settings)


@app.command()
def token(
    tenant: TenantOpt,
    role: Annotated[str, typer.Option(help="agent, supervisor, auditor, admin or client")],
    sub: Annotated[str, typer.Option(help="pseudonymous user id")],
    ttl: Annotated[int | None, typer.Option(min=1, help="lifetime in seconds")] = None,
    perm: Annotated[list[str] | None, typer.Option(help="extra permission, e.g. content (auditors)")] = None,
    case: Annotated[list[str] | None, typer.Option(help="a case assigned to this agent (repeatable)")] = None,
) -> None:
    """Print a bearer token from the built-in issuer."""
    sys.stdout.write(_issuer(load_settings()).issue(tenant, role, sub, ttl, perm or (), case) + "\n")


def _prepare_demo(settings: ApiSettings, base: str) -> None:
    Ledger.initialise(settings)
    load_jwt_key(settings, create=True)
    opened = Ledger.open(settings)
    try:
        with suppress(Conflict):
            opened.tenants.create("demo")
    finally:
        opened.close()
    issuer = _issuer(settings)
    lines = [f"caseledger is serving the tenant 'demo' at {base}", f"  API docs: {base}/docs", "  tokens (24 h):"]
    for role in ROLES:
        perms = ("content",) if role == "auditor" else ()
        lines.append(f"    {role:<10} {issuer.issue('demo', role, f'demo-{role}', 86400, perms)}")
    lines.append(f"  try: curl -H 'Authorization: Bearer <agent token>' {base}/v1/log")
    print("\n".join(lines), flush=True)


class ProblemH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering a request it cannot parse (a malformed head, or a head over
    16 KiB that arrived in pieces) with a problem document instead of its text/plain 400."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"type": "https://caseledger.dev/problems/bad-request", "title": "Bad Request",
                           "status": 400, "detail": "the request is not valid HTTP/1.1 or its head exceeds "
                                                    "16 KiB"}).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def _listening_socket(host: str, port: int) -> socket.socket:
    """The socket the workers share. Created with IPPROTO_TCP: asyncio sets TCP_NODELAY only on
    connections accepted from such a socket, and uvicorn's own (protocol 0) costs ~40 ms a response."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
    demo: Annotated[bool, typer.Option(help="initialise, create tenant 'demo' and print tokens first")] = False,
) -> None:
    """Serve the HTTP API under uvicorn (several workers may share one PostgreSQL database)."""
    import uvicorn

    settings = load_settings()
    if state.get("data_dir") is not None:
        os.environ["CASELEDGER_DATA_DIR"] = str(state["data_dir"])
    if demo:
        _prepare_demo(settings, f"http://{host}:{port}")
    else:
        settings.check_production()
    if workers > 1:
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # h11, not httptools: h11 caps a request head at 16 KiB however slowly it arrives
    config = uvicorn.Config("api.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                            http=ProblemH11Protocol, log_level="warning", access_log=False, timeout_keep_alive=5,
                            limit_concurrency=1000, timeout_graceful_shutdown=10)
    if workers == 1:
        uvicorn.Server(config).run()
        return
    from uvicorn.supervisors import Multiprocess

    Multiprocess(config, sockets=[_listening_socket(host, port)]).run()
