"""Schemathesis against the served OpenAPI document: no 5xx for any role, and auth on every /v1 operation.

One real uvicorn server (in a thread, on a free port) over SQLite serves the app for the whole module;
tenant "acme" has a few interactions, so proofs, reads and timelines reach real data. Each operation
gets positive (schema-valid) and negative (schema-violating) examples as every role.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.openapi import from_url

from api.app import create_app
from api.auth import ROLES, TokenIssuer, load_jwt_key
from api.settings import ApiSettings
from ledger.appender import NewEntry
from ledger.service import Ledger
from tests.conftest import TEST_MASTER_KEY

TENANT = "acme"
#: the operations anyone may call without a token
PUBLIC = frozenset({"/healthz", "/readyz", "/metrics"})
#: a share link's token is the capability: no JWT (DESIGN §8)
CAPABILITY = frozenset({"/v1/shared/{token}", "/v1/shared/{token}/receipt"})
#: examples per operation, per role and generation mode
EXAMPLES = 25
#: extra grants per role (auditors may be granted content)
PERMS: dict[str, tuple[str, ...]] = {"auditor": ("content",)}
CASES = ("C-100", "C-200", "C-300")


@dataclass(frozen=True)
class Served:
    url: str
    schema: Any
    issuer: TokenIssuer

    def auth(self, role: str) -> dict[str, str]:
        token = self.issuer.issue(TENANT, role, f"fuzz-{role}", perms=PERMS.get(role, ()))
        return {"Authorization": f"Bearer {token}"}

    def operations(self) -> list[APIOperation[Any, Any, Any, Any]]:
        found = [result.ok() for result in self.schema.get_all_operations()]
        return sorted(found, key=lambda op: (op.path, op.method))


def _seed(settings: ApiSettings) -> None:
    Ledger.initialise(settings)
    load_jwt_key(settings, create=True)
    ledger = Ledger.open(settings)
    try:
        ledger.tenants.create(TENANT)
        for number in range(9):
            case = CASES[number % len(CASES)]
            ledger.appender.append(TENANT, NewEntry(
                kind="interaction", channel="phone", case=case, subject_ref=f"CRM-{number % 2}",
                actor="user:fuzz-agent", content=b'{"note":"seeded"}', meta={"direction": "inbound"}))
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("schemathesis")
    data_dir = root / "data"
    app_settings = ApiSettings(data_dir=data_dir, database_url=f"sqlite:///{root / 'ledger.db'}",
                            master_key=TEST_MASTER_KEY)
    _seed(app_settings)
    key = load_jwt_key(app_settings)
    assert key is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(app_settings), host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-fuzz", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the uvicorn server did not start"
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        schema = from_url(f"{url}/openapi.json")
        yield Served(url, schema, TokenIssuer(key, app_settings))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive(), "the uvicorn server did not stop"


def _explore(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, examples: int,
             body: Callable[[Case[Any]], None]) -> str | None:
    """Run `body` on up to `examples` generated cases; the failure (shrunk), or None."""

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def explore(case: Case[Any]) -> None:
        body(case)

    try:
        explore()
    except Unsatisfiable:
        # negative mode has nothing to break in an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE, f"no cases for {operation.method.upper()} {operation.path}"
        return None
    except AssertionError as exc:
        notes = "\n".join(getattr(exc, "__notes__", []))
        return f"{operation.method.upper()} {operation.path} [{mode.value}]: {exc}\n{notes}".strip()
    return None


def _without_auth(case: Case[Any]) -> None:
    if case.headers:
        for name in [name for name in case.headers if name.lower() == "authorization"]:
            del case.headers[name]


def test_openapi_lists_every_route(served: Served) -> None:
    paths = {op.path for op in served.operations()}
    assert paths >= PUBLIC | {"/v1/interactions", "/v1/entries", "/v1/entries/{seq}", "/v1/cases/{case}/timeline",
                              "/v1/log", "/v1/checkpoint", "/v1/proofs/inclusion", "/v1/proofs/consistency",
                              "/v1/proofs/range"}


@pytest.mark.parametrize("role", ROLES)
def test_no_server_errors(served: Served, role: str) -> None:
    headers = served.auth(role)
    statuses: dict[int, int] = {}

    def call(case: Case[Any]) -> None:
        response = case.call(base_url=served.url, headers=headers, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (
            f"{response.status_code} for {case.as_curl_command(headers={'Authorization': 'Bearer …'})}: "
            f"{response.text[:500]}")

    failures = [failure for operation in served.operations()
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                if (failure := _explore(operation, mode, EXAMPLES, call)) is not None]
    assert not failures, "\n\n".join(failures)
    # the fuzzing reached the handlers, not only the validation layer
    assert any(200 <= status < 300 for status in statuses), statuses


def test_every_v1_operation_requires_a_token(served: Served) -> None:
    protected = [op for op in served.operations() if op.path not in PUBLIC | CAPABILITY]
    assert protected
    bad_tokens: list[dict[str, str] | None] = [
        None, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic dXNlcjpwYXNz"}]

    def call(case: Case[Any]) -> None:
        for headers in bad_tokens:
            _without_auth(case)
            response = case.call(base_url=served.url, headers=headers, timeout=30)
            assert response.status_code == 401, (
                f"{response.status_code} with {headers} for {case.as_curl_command()}: {response.text[:300]}")
            assert response.headers.get("www-authenticate") == ["Bearer"], response.headers

    failures = [failure for operation in protected
                if (failure := _explore(operation, GenerationMode.POSITIVE, 5, call)) is not None]
    assert not failures, "\n\n".join(failures)


def test_operations_endpoints_are_public(served: Served) -> None:
    for path in sorted(PUBLIC):
        response = httpx.get(served.url + path, timeout=30)
        assert response.status_code == 200, (path, response.text)


def test_seeded_data_directory_is_used(served: Served) -> None:
    response = httpx.get(served.url + "/v1/log", headers=served.auth("agent"), timeout=30)
    assert response.status_code == 200
    assert response.json()["size"] >= 9


@pytest.mark.parametrize("content", [
    '{"n": 9007199254740992}', '{"n": -9007199254740993}', '{"s": "\\ud800"}', '{"\\udfff": 1}',
    '{"n": 1e400}', '{"n": NaN}', '{"n": -Infinity}',
], ids=["int-2^53", "int-below-safe", "lone-surrogate", "surrogate-key", "float-overflow", "nan", "infinity"])
def test_content_without_a_canonical_form_is_the_clients_error(served: Served, content: str) -> None:
    """Found by the fuzzing above: such content made a 500 (FormatError from canonical_json)."""
    body = ('{"case": "C-1", "channel": "phone", "direction": "inbound", "subject_ref": "CRM-1", '
            f'"content": {content}}}')
    response = httpx.post(served.url + "/v1/interactions", content=body.encode(), timeout=30,
                          headers=served.auth("agent") | {"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/invalid-input")
