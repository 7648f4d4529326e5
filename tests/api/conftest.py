"""HTTP fixtures: the real app under a real uvicorn server, on SQLite and on a fresh PostgreSQL database.

Servers are module-scoped (starting one costs a migration and a key load), each with its own data
directory and database, so test modules never see each other's entries.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.auth import TokenIssuer, load_jwt_key
from api.settings import ApiSettings
from ledger.service import Ledger
from tests.conftest import TEST_MASTER_KEY, fresh_pg_database

TENANTS = ("acme", "globex")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(data directory, database URL) for one test module and one database engine."""
    data_dir = tmp_path_factory.mktemp(f"http-{request.param}") / "data"
    if request.param == "sqlite":
        yield data_dir, f"sqlite:///{data_dir.parent / 'ledger.db'}"
        return
    with fresh_pg_database("cl_http") as url:
        yield data_dir, url


def make_settings(data_dir: Path, db_url: str, **overrides: Any) -> ApiSettings:
    return ApiSettings(data_dir=data_dir, database_url=db_url, master_key=TEST_MASTER_KEY, **overrides)


def prepare(settings: ApiSettings) -> None:
    """What `caseledger init` and `tenant create` do: database, keys, the two tenants."""
    Ledger.initialise(settings)
    load_jwt_key(settings, create=True)
    ledger = Ledger.open(settings)
    try:
        for tenant in TENANTS:
            ledger.tenants.create(tenant)
    finally:
        ledger.close()


@contextmanager
def serve(settings: ApiSettings) -> Iterator[str]:
    """Run `create_app(settings)` under uvicorn in a thread; yields the base URL."""
    # proto IPPROTO_TCP, not 0: only then does asyncio set TCP_NODELAY on accepted connections
    # (without it every response waits ~40 ms for a delayed ACK between its head and its body)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the uvicorn server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "the uvicorn server did not stop"


@dataclass
class Api:
    """A running server and the means to call it as anyone."""

    url: str
    settings: ApiSettings
    issuer: TokenIssuer
    _clients: list[httpx.Client] = field(default_factory=list)

    def token(self, tenant: str, role: str, sub: str, perms: tuple[str, ...] = ()) -> str:
        return self.issuer.issue(tenant, role, sub, ttl=None, perms=perms)

    def auth(self, tenant: str, role: str, sub: str, perms: tuple[str, ...] = ()) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, role, sub, perms)}"}

    def client(self, tenant: str | None = None, role: str = "", sub: str = "", perms: tuple[str, ...] = (),
               headers: dict[str, str] | None = None) -> httpx.Client:
        """A client for `tenant`/`role`/`sub`, or an anonymous one when `tenant` is None."""
        merged = dict(headers or {})
        if tenant is not None:
            merged |= self.auth(tenant, role, sub, perms)
        made = httpx.Client(base_url=self.url, headers=merged, timeout=30)
        self._clients.append(made)
        return made

    def origin(self, tenant: str) -> str:
        return f"{self.settings.instance}/{tenant}"

    def close(self) -> None:
        for made in self._clients:
            made.close()


@contextmanager
def running(settings: ApiSettings) -> Iterator[Api]:
    key = load_jwt_key(settings)
    assert key is not None
    with serve(settings) as url:
        api = Api(url, settings, TokenIssuer(key, settings))
        try:
            yield api
        finally:
            api.close()


@pytest.fixture(scope="module")
def api(module_db: tuple[Path, str]) -> Iterator[Api]:
    """A server with tenants "acme" and "globex" and no entries, fresh for each test module."""
    settings = make_settings(*module_db)
    prepare(settings)
    with running(settings) as made:
        yield made


def interaction(case: str, channel: str = "phone", **content: Any) -> dict[str, Any]:
    """A valid POST /v1/interactions body."""
    return {"case": case, "channel": channel, "direction": "inbound", "subject_ref": f"CRM-{case}",
            "content": content or {"note": f"call about {case}"}}
