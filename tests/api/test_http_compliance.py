"""Retention, holds and erasure over real HTTP on SQLite and PostgreSQL (issue 11, STYLE §18): who may
do what, the other tenant, the anonymous client, hostile bodies, and an erasure whose certificate
verifies offline while every proof of the log still does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from pypdf import PdfReader

from compliance.report_verify import verify_report
from tests.api.conftest import Api, interaction
from verification import Trust, verify_receipt
from verification.erasure_certificate import verify_erasure_certificate


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def test_only_admins_set_retention_and_a_locked_policy_only_grows(api: Api) -> None:
    admin = api.client("acme", "admin", "ada")
    for role in ("agent", "supervisor", "auditor", "client"):
        _problem(api.client("acme", role, "x").put("/v1/retention", json={"profiles": ["none"]}), 403)
    _problem(api.client().put("/v1/retention", json={"profiles": ["none"]}), 401)
    made = admin.put("/v1/retention", json={"profiles": ["hipaa"], "rules": [{"kinds": ["interaction"], "years": 7}],
                                            "locked": True})
    assert made.status_code == 200, made.text
    assert made.json()["locked"] is True and made.json()["set_by"] == "user:ada"
    refused = _problem(admin.put("/v1/retention", json={"profiles": ["hipaa"], "locked": True}), 403)
    assert "can only be lengthened" in refused["detail"] and "interaction" in refused["detail"]
    _problem(admin.put("/v1/retention", json={"profiles": ["forever"]}), 400)
    _problem(admin.put("/v1/retention", json={"profiles": [], "rules": [{"kinds": ["*"], "years": 2, "days": 1}]}),
             400)
    _problem(admin.put("/v1/retention", json={"profiles": [], "surprise": 1}), 422)
    shown = api.client("acme", "auditor", "aud").get("/v1/retention").json()
    assert shown["current"]["version"] == 1 and len(shown["history"]) == 1
    assert api.client("globex", "admin", "gil").get("/v1/retention").json() == {"current": None, "history": []}


def test_holds_are_placed_listed_and_released_by_the_right_roles_only(api: Api) -> None:
    supervisor = api.client("acme", "supervisor", "sue")
    _problem(api.client("acme", "agent", "alice").post("/v1/holds", json={"case": "H-1", "reason": "x"}), 403)
    made = supervisor.post("/v1/holds", json={"case": "H-1", "reason": "SEC inquiry 14"})
    assert made.status_code == 201 and made.headers["location"] == f"/v1/holds/{made.json()['id']}"
    hold = made.json()
    _problem(api.client("acme", "auditor", "aud").post(f"/v1/holds/{hold['id']}/release", json={"reason": "x"}), 403)
    _problem(api.client("globex", "supervisor", "gus").post(f"/v1/holds/{hold['id']}/release",
                                                            json={"reason": "x"}), 404)
    _problem(api.client("globex", "supervisor", "gus").get(f"/v1/holds/{hold['id']}"), 404)
    assert [h["id"] for h in supervisor.get("/v1/holds", params={"active": "true"}).json()["holds"]] == [hold["id"]]
    released = supervisor.post(f"/v1/holds/{hold['id']}/release", json={"reason": "closed"})
    assert released.status_code == 200 and released.json()["active"] is False
    _problem(supervisor.post(f"/v1/holds/{hold['id']}/release", json={"reason": "closed"}), 409)
    _problem(supervisor.post("/v1/holds", json={"case": "H-1", "subject_ref": "x", "reason": "both"}), 400)
    _problem(supervisor.post("/v1/holds", json={"case": "H-1", "reason": "<script>alert(1)</script>"}), 422)
    _problem(supervisor.get("/v1/holds/not-a-uuid"), 422)


def test_an_erasure_over_http_is_certified_and_the_log_still_verifies(api: Api, tmp_path: Path) -> None:
    """In globex, which has no retention policy (acme's is locked to six years by the test above)."""
    agent = api.client("globex", "agent", "eve")
    body = interaction("E-1", note="my address is 1 Main St")
    body["subject_ref"] = "CRM-ERASE-ME"
    seq = agent.post("/v1/interactions", json=body).json()["seq"]
    _problem(agent.post("/v1/erasures", json={"subject_ref": "CRM-ERASE-ME", "reason": "gdpr-art-17"}), 403)
    _problem(api.client("acme", "admin", "ada").post("/v1/erasures", json={"subject_ref": "CRM-ERASE-ME",
                                                                             "reason": "gdpr-art-17"}), 404)
    _problem(api.client("globex", "admin", "gil").post("/v1/erasures", json={"subject_ref": "CRM-ERASE-ME",
                                                                           "reason": "whim"}), 422)
    supervisor = api.client("globex", "supervisor", "sue")
    decided = supervisor.post("/v1/erasures", json={"subject_ref": "CRM-ERASE-ME", "reason": "gdpr-art-17"})
    assert decided.status_code == 201, decided.text
    decision = decided.json()
    assert decision["status"] == "erased" and len(decision["salt"]) == 64
    gone = _problem(supervisor.get(f"/v1/entries/{seq}", params={"content": "true"},
                                   headers={"X-Purpose": "check"}), 410)
    assert "erased" in gone["detail"]
    vkey = api.client("globex", "auditor", "aud").get("/v1/log").json()["vkey"]
    trust = Trust.of(vkey)
    result = verify_erasure_certificate(decision["certificate"], trust, subject_ref="CRM-ERASE-ME",
                                        salt=bytes.fromhex(decision["salt"]))
    assert result["ok"] and result["entries"] == 1
    fetched = supervisor.get(f"/v1/erasures/{decision['id']}").json()
    assert fetched["certificate"] == decision["certificate"] and "salt" not in fetched, "the salt is shown once"
    assert verify_receipt(supervisor.get(f"/v1/entries/{seq}/receipt").json(), trust)["ok"]
    _problem(api.client("acme", "admin", "ada").get(f"/v1/erasures/{decision['id']}"), 404)
    page = supervisor.get(f"/v1/erasures/{decision['id']}/certificate.pdf")
    assert page.status_code == 200 and page.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(page.content)
    cert = x509.load_pem_x509_certificate(api.settings.report_signing_paths[1].read_bytes())
    signed = verify_report(pdf, trusted_certs=[cert])
    assert [c.name for c in signed.failures] == ["attachment"], "signed and intact; a certificate page has no bundle"
    text = PdfReader(pdf).pages[0].extract_text()
    assert decision["id"] in text and decision["certificate"]["subject_digest"] in text.replace("\n", "")
    _problem(api.client("acme", "admin", "ada").get(f"/v1/erasures/{decision['id']}/certificate.pdf"), 404)
    _problem(supervisor.post("/v1/compliance/run"), 403)
    ran = api.client("globex", "admin", "gil").post("/v1/compliance/run")
    assert ran.status_code == 200 and set(ran.json()) == {"erased", "expired", "still_deferred"}


@pytest.mark.parametrize("path", ["/v1/retention", "/v1/holds", "/v1/erasures"])
def test_compliance_records_need_a_token_and_a_reading_role(api: Api, path: str) -> None:
    _problem(api.client().get(path), 401)
    _problem(api.client("acme", "agent", "alice").get(path), 403)
    _problem(api.client("acme", "client", "app").get(path), 403)
