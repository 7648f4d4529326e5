"""Agents with an assignment list (token claim `cases`) read and log only their cases."""

from __future__ import annotations

from api.auth import TokenIssuer, load_jwt_key
from tests.api.conftest import Api, interaction


def _agent(api: Api, sub: str, cases: list[str] | None) -> dict[str, str]:
    key = load_jwt_key(api.settings)
    assert key is not None
    token = TokenIssuer(key, api.settings).issue("acme", "agent", sub, cases=cases)
    return {"Authorization": f"Bearer {token}"}


def test_assigned_agents_read_their_cases_and_only_those(api: Api) -> None:
    logger = api.client("acme", "agent", "logger")
    assert logger.post("/v1/interactions", json=interaction("A-1", note="assigned")).status_code == 201
    assert logger.post("/v1/interactions", json=interaction("A-2", note="someone else's")).status_code == 201
    with api.client() as anonymous:
        assigned = _agent(api, "carol", ["A-1"])
        timeline = anonymous.get("/v1/cases/A-1/timeline", headers=assigned)
        assert timeline.status_code == 200
        assert [e["content"]["note"] for e in timeline.json()["entries"]] == ["assigned"]
        assert anonymous.get("/v1/cases/A-2/timeline", headers=assigned).status_code == 404
        # logging into a case is no way into it: refused before anything is written
        size = anonymous.get("/v1/log", headers=assigned).json()["size"]
        refused = anonymous.post("/v1/interactions", json=interaction("A-2"), headers=assigned)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert anonymous.get("/v1/log", headers=assigned).json()["size"] == size
        assert anonymous.post("/v1/interactions", json=interaction("A-1"), headers=assigned).status_code == 201
        nothing = _agent(api, "dave", [])
        assert anonymous.get("/v1/cases/A-1/timeline", headers=nothing).status_code == 404
        assert anonymous.post("/v1/interactions", json=interaction("A-1"), headers=nothing).status_code == 403
