"""Every endpoint × every role × own/other tenant, with the exact status (README "Roles and permissions").

In tenant "acme" the agent alice logged case C-1 and the agent bob logged only C-2; "globex" holds one
entry of case G-1. "Other tenant" means a globex token asking for what exists only in acme: entries and
timelines answer 404, and log, checkpoint and proofs answer for globex (proofs of acme's positions:
404), never with acme's data. A 403 is the role table speaking, the same for every target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, interaction

ACME, GLOBEX = "acme", "globex"
C1_ENTRIES = 10
#: acme: bob's C-2 entry at 0, alice's C-1 entries at 1..10; TARGET is the last of them
TARGET = C1_ENTRIES
ACME_SIZE = C1_ENTRIES + 1


@dataclass(frozen=True)
class Who:
    role: str
    sub: str
    perms: tuple[str, ...] = ()


WHO = {
    "agent": Who("agent", "alice"),
    "agent-off-case": Who("agent", "bob"),
    "supervisor": Who("supervisor", "sam"),
    "auditor": Who("auditor", "audrey"),
    "auditor+content": Who("auditor", "audrey", ("content",)),
    "admin": Who("admin", "adam"),
    "client": Who("client", "carl"),
}

#: endpoint -> (method, path)
ENDPOINTS: dict[str, tuple[str, str]] = {
    "post-interaction": ("POST", "/v1/interactions"),
    "entry": ("GET", f"/v1/entries/{TARGET}"),
    "entry-content": ("GET", f"/v1/entries/{TARGET}?content=true"),
    "entries": ("GET", "/v1/entries?after=-1&limit=1000"),
    "timeline": ("GET", "/v1/cases/C-1/timeline"),
    "log": ("GET", "/v1/log"),
    "checkpoint": ("GET", "/v1/checkpoint"),
    "inclusion": ("GET", f"/v1/proofs/inclusion?seq={TARGET}&size={ACME_SIZE}"),
    "consistency": ("GET", f"/v1/proofs/consistency?first=1&second={ACME_SIZE}"),
    "range": ("GET", f"/v1/proofs/range?start={TARGET}&end={TARGET + 1}&size={ACME_SIZE}"),
}

#: endpoint -> principal -> (status in own tenant acme, status with a globex token)
EXPECTED: dict[str, dict[str, tuple[int, int]]] = {
    "post-interaction": {
        "agent": (201, 201), "agent-off-case": (201, 201), "supervisor": (201, 201),
        "auditor": (403, 403), "auditor+content": (403, 403), "admin": (403, 403), "client": (403, 403),
    },
    "entry": {
        "agent": (200, 404), "agent-off-case": (404, 404), "supervisor": (200, 404),
        "auditor": (200, 404), "auditor+content": (200, 404), "admin": (200, 404), "client": (403, 403),
    },
    "entry-content": {
        "agent": (200, 404), "agent-off-case": (404, 404), "supervisor": (200, 404),
        "auditor": (403, 403), "auditor+content": (200, 404), "admin": (403, 403), "client": (403, 403),
    },
    "entries": {
        "agent": (403, 403), "agent-off-case": (403, 403), "supervisor": (200, 200),
        "auditor": (200, 200), "auditor+content": (200, 200), "admin": (200, 200), "client": (403, 403),
    },
    "timeline": {
        "agent": (200, 404), "agent-off-case": (404, 404), "supervisor": (200, 404),
        "auditor": (200, 404), "auditor+content": (200, 404), "admin": (403, 403), "client": (403, 403),
    },
    "log": {who: (200, 200) for who in WHO},
    "checkpoint": {who: (200, 200) for who in WHO},
    "inclusion": {who: (200, 404) for who in WHO},
    "consistency": {who: (200, 404) for who in WHO},
    "range": {who: (200, 404) for who in WHO},
}
CASES = [
    pytest.param(endpoint, who, tenant, EXPECTED[endpoint][who][tenant == GLOBEX],
                 id=f"{endpoint}-{who}-{'own' if tenant == ACME else 'other'}")
    for endpoint in ENDPOINTS for who in WHO for tenant in (ACME, GLOBEX)
]


@dataclass
class World:
    api: Api
    http: httpx.Client
    #: content alice logged at acme's TARGET
    target_content: dict[str, Any]
    target_hash: str

    def headers(self, tenant: str, who: str, **extra: str) -> dict[str, str]:
        spec = WHO[who]
        return self.api.auth(tenant, spec.role, spec.sub, spec.perms) | extra

    def call(self, endpoint: str, tenant: str, who: str) -> httpx.Response:
        method, path = ENDPOINTS[endpoint]
        body = interaction(f"M-{who}") if method == "POST" else None
        return self.http.request(method, path, json=body, headers=self.headers(tenant, who))


@pytest.fixture(scope="module")
def world(api: Api) -> World:
    http = api.client()

    def post(tenant: str, sub: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.post("/v1/interactions", json=body, headers=api.auth(tenant, "agent", sub))
        assert response.status_code == 201, response.text
        receipt: dict[str, Any] = response.json()
        return receipt

    assert post(ACME, "bob", interaction("C-2", "chat"))["seq"] == 0
    channels = ("phone", "email", "chat")
    for n in range(1, C1_ENTRIES + 1):
        last = post(ACME, "alice", interaction("C-1", channels[n % 3], n=n, note=f"alice, contact {n}"))
    assert last["seq"] == TARGET
    assert post(GLOBEX, "gina", interaction("G-1", "email"))["seq"] == 0
    return World(api, http, {"n": TARGET, "note": f"alice, contact {TARGET}"}, last["entry_hash"])


def _check_data(world: World, endpoint: str, who: str, tenant: str, response: httpx.Response) -> None:
    """A successful answer carries the token tenant's data, and only what the role may see."""
    api = world.api
    own, foreign = api.origin(tenant), api.origin(ACME if tenant == GLOBEX else GLOBEX)
    assert foreign not in response.text
    if endpoint == "checkpoint":
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.splitlines()[0] == own
        return
    body = response.json()
    if endpoint == "post-interaction":
        assert body["log"] == own and body["header"]["log"] == own
        assert body["header"]["actor"] == f"user:{WHO[who].sub}"
        assert response.headers["location"] == f"/v1/entries/{body['seq']}"
    elif endpoint in ("entry", "entry-content"):
        assert body["seq"] == TARGET and body["entry_hash"] == world.target_hash
        assert body["header"]["case"] == "C-1"
        if endpoint == "entry-content":
            assert body["content"] == world.target_content
        else:
            assert "content" not in body
    elif endpoint == "entries":
        assert body["entries"], "a tenant with entries lists them"
        assert {entry["header"]["log"] for entry in body["entries"]} == {own}
        assert all("content" not in entry for entry in body["entries"])
    elif endpoint == "timeline":
        entries = body["entries"]
        assert body["case"] == "C-1" and len(entries) == C1_ENTRIES
        assert [entry["seq"] for entry in entries] == list(range(1, C1_ENTRIES + 1))
        decrypted = who != "auditor"
        assert all(("content" in entry) is decrypted for entry in entries)
        if decrypted:
            assert [entry["content"]["n"] for entry in entries] == list(range(1, C1_ENTRIES + 1))
    elif endpoint == "log":
        assert body["origin"] == own
        assert body["vkey"].startswith(own + "+")
        if tenant == ACME:
            assert body["size"] >= ACME_SIZE
    else:
        assert body["log"] == own


@pytest.mark.parametrize(("endpoint", "who", "tenant", "status"), CASES)
def test_matrix(world: World, endpoint: str, who: str, tenant: str, status: int) -> None:
    if tenant == GLOBEX:  # the premise: acme's TARGET position does not exist in globex
        size = world.http.get("/v1/log", headers=world.headers(GLOBEX, "client")).json()["size"]
        assert size <= TARGET
    response = world.call(endpoint, tenant, who)
    assert response.status_code == status, response.text
    if status < 400:
        _check_data(world, endpoint, who, tenant, response)
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status
        assert world.api.origin(ACME) not in response.text or tenant == ACME


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_unauthenticated_is_401_everywhere(world: World, endpoint: str) -> None:
    method, path = ENDPOINTS[endpoint]
    body = interaction("C-1") if method == "POST" else None
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": ""}):
        response = world.http.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        assert "detail" not in response.json()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_operations_endpoints_are_open(world: World, path: str) -> None:
    assert world.http.get(path).status_code == 200


@pytest.mark.parametrize(("who", "path"), [
    ("client", "/v1/entries/{seq}"),
    ("admin", "/v1/entries/{seq}?content=true"),
    ("auditor", "/v1/entries/{seq}?content=true"),
    ("admin", "/v1/cases/{case}/timeline"),
    ("client", "/v1/cases/{case}/timeline"),
    ("agent", "/v1/entries?after={seq}"),
])
def test_a_refusal_says_nothing_about_existence(world: World, who: str, path: str) -> None:
    """403 comes from the role alone: the same answer for an acme entry, a missing one and another tenant's."""
    answers = set()
    for tenant, seq, case in [(ACME, TARGET, "C-1"), (ACME, 10**9, "NOPE"), (GLOBEX, TARGET, "C-1"),
                              (GLOBEX, 0, "G-1")]:
        response = world.http.get(path.format(seq=seq, case=case), headers=world.headers(tenant, who))
        assert response.status_code == 403
        answers.add(response.content)
    assert len(answers) == 1


def test_not_found_is_the_same_for_another_tenants_case_and_a_missing_one(world: World) -> None:
    for who in ("supervisor", "auditor+content", "agent"):
        theirs = world.http.get("/v1/cases/C-1/timeline", headers=world.headers(GLOBEX, who))
        missing = world.http.get("/v1/cases/C-404/timeline", headers=world.headers(GLOBEX, who))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["title"] == missing.json()["title"] == "Not Found"
        assert theirs.json().keys() == missing.json().keys()


def test_an_agent_reads_only_the_cases_they_work_on(world: World) -> None:
    bob = world.headers(ACME, "agent-off-case")
    assert world.http.get("/v1/cases/C-2/timeline", headers=bob).status_code == 200
    assert world.http.get("/v1/entries/0?content=true", headers=bob).json()["content"]["note"] == "call about C-2"
    for seq in range(1, C1_ENTRIES + 1):
        assert world.http.get(f"/v1/entries/{seq}", headers=bob).status_code == 404
    alice = world.headers(ACME, "agent")
    assert world.http.get("/v1/cases/C-2/timeline", headers=alice).status_code == 404
    assert world.http.get("/v1/entries/0", headers=alice).status_code == 404


def test_a_token_for_an_unknown_tenant_finds_nothing(world: World) -> None:
    headers = world.api.auth("initech", "supervisor", "sam")
    for path in ("/v1/log", "/v1/checkpoint", f"/v1/entries/{TARGET}", "/v1/cases/C-1/timeline", "/v1/entries"):
        response = world.http.get(path, headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert world.api.origin(ACME) not in response.text
    assert world.http.post("/v1/interactions", json=interaction("C-1"), headers=headers).status_code == 404


def _access_entries(world: World, tenant: str) -> list[dict[str, Any]]:
    headers, after, found = world.headers(tenant, "auditor"), -1, []
    while True:
        page = world.http.get(f"/v1/entries?after={after}&limit=1000", headers=headers).json()
        found += [entry["header"] for entry in page["entries"] if entry["header"]["kind"] == "access"]
        if page["next_after"] is None:
            return found
        after = page["next_after"]


def test_refused_reads_log_nothing_and_allowed_reads_log_each_decryption(world: World) -> None:
    before = {tenant: len(_access_entries(world, tenant)) for tenant in (ACME, GLOBEX)}
    for tenant in (ACME, GLOBEX):
        for who in ("agent-off-case", "auditor", "admin", "client"):
            world.call("entry-content", tenant, who)
            world.call("timeline", tenant, who)
    for who in ("agent", "supervisor", "auditor+content"):
        world.call("entry-content", GLOBEX, who)
        world.call("timeline", GLOBEX, who)
    after = {tenant: len(_access_entries(world, tenant)) for tenant in (ACME, GLOBEX)}
    assert after == before
    assert world.call("entry", ACME, "supervisor").status_code == 200  # headers only: no decryption
    assert world.call("timeline", ACME, "auditor").status_code == 200  # ditto
    assert len(_access_entries(world, ACME)) == before[ACME]
    assert world.call("entry-content", ACME, "auditor+content").status_code == 200
    assert world.call("timeline", ACME, "agent").status_code == 200
    logged = _access_entries(world, ACME)[before[ACME]:]
    assert [(entry["actor"], entry["meta"]["scope"]) for entry in logged] == [
        ("user:audrey", "entry"), ("user:alice", "case")]
