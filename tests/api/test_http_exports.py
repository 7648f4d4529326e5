"""Exports over real HTTP on SQLite and PostgreSQL (issue 11 item 7, STYLE §18): 202 and a Location to
follow, the files downloaded and verified offline, and the roles, tenants and bodies that are refused."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.api.conftest import Api, interaction
from verification import Trust
from verification.bundle_verify import verify_bundle


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def _finished(client: httpx.Client, location: str) -> dict[str, Any]:
    """Follow an export until it is no longer queued or running (the server builds it meanwhile)."""
    deadline = time.monotonic() + 120
    while True:
        state: dict[str, Any] = client.get(location).json()
        if state["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def test_an_auditor_exports_a_case_and_verifies_the_pdf_and_the_bundle(api: Api) -> None:
    agent = api.client("acme", "agent", "xena")
    for channel in ("phone", "email", "chat"):
        assert agent.post("/v1/interactions", json=interaction("X-1", channel, card="4111", note=channel)
                          ).status_code == 201
    auditor = api.client("acme", "auditor", "aud", perms=("content",))
    made = auditor.post("/v1/exports", json={"case": "X-1", "include_content": True, "redact": ["/card"],
                                             "format": "pdf"})
    assert made.status_code == 202, made.text
    location = made.headers["location"]
    assert location == f"/v1/exports/{made.json()['id']}"
    state = _finished(auditor, location)
    assert state["status"] == "done", state
    assert state["files"] == ["pdf", "bundle"] and state["verification"]["ok"] is True
    pdf = auditor.get(f"{location}/files/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf" and "attachment" in pdf.headers["content-disposition"]
    bundle = auditor.get(f"{location}/files/bundle")
    document = json.loads(bundle.content)
    assert b"4111" not in bundle.content
    vkey = auditor.get("/v1/log").json()["vkey"]
    assert verify_bundle(document, Trust.of(vkey), collect=True).valid
    assert len(document["entries"]) == 4, "three interactions and the export entry itself"
    _problem(auditor.get(f"{location}/files/jsonl"), 404)
    _problem(auditor.get(f"{location}/files/secrets"), 422)


def test_exports_are_refused_to_the_wrong_roles_tenants_and_bodies(api: Api) -> None:
    api.client("acme", "agent", "yann").post("/v1/interactions", json=interaction("Y-1"))
    body = {"case": "Y-1", "format": "bundle"}
    _problem(api.client().post("/v1/exports", json=body), 401)
    for role in ("agent", "admin", "client"):
        _problem(api.client("acme", role, "x").post("/v1/exports", json=body), 403)
    headers_only = api.client("acme", "auditor", "aud2")
    refused = _problem(headers_only.post("/v1/exports", json={**body, "include_content": True}), 400)
    assert "content" in refused["detail"]
    _problem(headers_only.post("/v1/exports", json={**body, "start": 0, "end": 1}), 400)
    _problem(headers_only.post("/v1/exports", json={**body, "format": "docx"}), 422)
    _problem(headers_only.post("/v1/exports", json={**body, "redact": ["no-slash"], "include_content": False}), 400)
    _problem(headers_only.post("/v1/exports", json={"since": "yesterday", "until": "today"}), 400)
    made = headers_only.post("/v1/exports", json=body)
    assert made.status_code == 202
    location = made.headers["location"]
    assert _finished(headers_only, location)["status"] == "done"
    _problem(api.client("globex", "auditor", "gia").get(location), 404)
    _problem(api.client("globex", "auditor", "gia").get(f"{location}/files/bundle"), 404)
    _problem(api.client("acme", "agent", "yann").get(location), 403)
    _problem(headers_only.get("/v1/exports/not-a-uuid"), 422)
