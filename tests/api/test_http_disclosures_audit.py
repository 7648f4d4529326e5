"""The accounting of disclosures and the self-audit over real HTTP on SQLite and PostgreSQL (issue 11
items 5 and 6): who may ask, the other tenant, and an audit that finds a tampered log and makes the
instance not ready. The last test of this module leaves its server's log tampered with."""

from __future__ import annotations

from typing import Any

import httpx

from ledger.service import Ledger
from tests.api.conftest import Api, interaction
from tests.compliance.test_audit import _tamper


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_accounting_lists_every_read_of_a_case_with_its_purpose(api: Api) -> None:
    agent = api.client("acme", "agent", "dora")
    seq = agent.post("/v1/interactions", json=interaction("D-1", card="4111")).json()["seq"]
    supervisor = api.client("acme", "supervisor", "sue")
    assert supervisor.get(f"/v1/entries/{seq}", params={"content": "true"},
                          headers={"X-Purpose": "complaint review"}).status_code == 200
    assert supervisor.get("/v1/cases/D-1/timeline", headers={"X-Purpose": "audit prep"}).status_code == 200
    report = api.client("acme", "auditor", "aud").post("/v1/disclosures", json={"case": "D-1"})
    assert report.status_code == 200, report.text
    accesses = report.json()["accesses"]
    assert [(a["actor"], a["purpose"]) for a in accesses] == [("user:sue", "complaint review"),
                                                              ("user:sue", "audit prep")]
    assert all(seq in a["entries"] for a in accesses)
    _problem(agent.post("/v1/disclosures", json={"case": "D-1"}), 403)
    _problem(api.client().post("/v1/disclosures", json={"case": "D-1"}), 401)
    _problem(api.client("globex", "auditor", "gia").post("/v1/disclosures", json={"case": "D-1"}), 404)
    _problem(supervisor.post("/v1/disclosures", json={"case": "D-1", "subject_ref": "CRM-D-1"}), 400)
    by_subject = supervisor.post("/v1/disclosures", json={"subject_ref": "CRM-D-1"}).json()
    assert "CRM-D-1" not in str(by_subject) and len(by_subject["accesses"]) == 2


def test_a_self_audit_that_finds_tampering_makes_the_instance_not_ready(api: Api) -> None:
    auditor = api.client("acme", "auditor", "aud")
    api.client("acme", "agent", "ed").post("/v1/interactions", json=interaction("A-1"))
    _problem(api.client("acme", "supervisor", "sue").post("/v1/audit"), 403)
    passed = auditor.post("/v1/audit")
    assert passed.status_code == 200 and passed.json()["ok"] is True
    assert api.client().get("/readyz").status_code == 200
    ledger = Ledger.open(api.settings)
    try:
        _tamper(ledger, "acme", 0)
    finally:
        ledger.close()
    failed = auditor.post("/v1/audit").json()
    assert failed["ok"] is False and failed["logs"][0]["seq"] == 0
    ready = api.client().get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["audit"] is False
