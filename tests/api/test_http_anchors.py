"""Anchors over HTTP against a real node (anvil): the server anchors on its interval, each tenant sees
only its own rounds, anchor receipts and anchored entry receipts verify, and who may ask for what."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import ApiSettings
from contracts.chain import AnchorChain
from contracts.config import ChainConfig
from tests.anvil import AnvilNode
from tests.api.conftest import Api, interaction, make_settings, prepare, running
from verification import Trust, verify_anchor_receipt, verify_consistency_proof, verify_receipt

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode() as started:
        yield started


@pytest.fixture(scope="module")
def anchored_api(module_db: tuple[Path, str], node: AnvilNode, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Api]:
    """A server that anchors every second to a fresh contract on the node."""
    owner = AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=None, confirmations=1),
                        node.keys[0])
    contract = owner.deploy()
    publisher = AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=contract,
                                        confirmations=1), node.keys[0])
    if not publisher.is_publisher(publisher.address):
        publisher.add_publisher(publisher.address)
    key_file = tmp_path_factory.mktemp("anchor-key") / "publisher.key"
    key_file.write_text(node.keys[0])
    key_file.chmod(0o600)
    settings: ApiSettings = make_settings(*module_db, anchor_rpc_url=node.rpc_url, anchor_chain_id=node.chain_id,
                                          anchor_contract=contract, anchor_key_file=key_file, anchor_confirmations=1,
                                          anchor_interval=1.0)
    prepare(settings)
    with running(settings) as made:
        yield made


def _wait_for(fetch: Any, ready: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ready(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s: {value}")
        time.sleep(0.1)


def _confirmed_rounds(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/v1/anchors")
    assert response.status_code == 200, response.text
    return [r for r in response.json()["rounds"] if r["state"] == "confirmed"]


@pytest.fixture(scope="module")
def anchored(anchored_api: Api) -> dict[str, Any]:
    """acme logs two interactions and waits until the server has anchored them; globex logs nothing."""
    with anchored_api.client("acme", "agent", "lou") as agent:
        for case in ("case-1", "case-2"):
            assert agent.post("/v1/interactions", json=interaction(case)).status_code == 201
    with anchored_api.client("acme", "supervisor", "sam") as supervisor:
        # confirmed, and recorded by its `anchor` entry in the log
        rounds: list[dict[str, Any]] = _wait_for(lambda: _confirmed_rounds(supervisor),
                                                 lambda found: bool(found) and found[0]["entry_seq"] is not None,
                                                 "an anchoring round")
    return rounds[0]


def test_the_server_anchors_on_its_interval_and_each_tenant_sees_only_its_rounds(
        anchored_api: Api, anchored: dict[str, Any]) -> None:
    assert anchored["log_size"] == 2 and anchored["leaves"] == 1 and anchored["entry_seq"] == 2
    assert anchored["tx"].startswith("0x") and anchored["block"] >= 1
    with anchored_api.client("globex", "supervisor", "gus") as other:
        response = other.get("/v1/anchors")
        assert response.status_code == 200 and response.json() == {"rounds": []}
        missing = other.get("/v1/anchors/receipt")
        assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


def test_an_anchor_receipt_over_http_verifies_with_its_consistency_proof(
        anchored_api: Api, anchored: dict[str, Any]) -> None:
    with anchored_api.client("acme", "client", "app") as client:
        vkey = client.get("/v1/log").json()["vkey"]
        response = client.get("/v1/anchors/receipt", params={"size": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == 1
    result = verify_anchor_receipt(body["receipt"], Trust.of(vkey))
    assert result["size"] == 2 and result["round"]["id"] == anchored["round"]
    consistency = verify_consistency_proof(body["consistency"], Trust.of(vkey), root=bytes.fromhex(result["root"]))
    assert consistency["ok"] is True


def test_an_entry_receipt_over_http_carries_the_anchor(anchored_api: Api, anchored: dict[str, Any]) -> None:
    with anchored_api.client("acme", "agent", "lou") as opener:
        vkey = opener.get("/v1/log").json()["vkey"]
        response = opener.get("/v1/entries/0/receipt")
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["type"] == "caseledger.receipt" and receipt["anchor"]["consistency"] == []
    result = verify_receipt(receipt, Trust.of(vkey))
    assert result["anchor"]["round"]["id"] == anchored["round"]
    with anchored_api.client("acme", "auditor", "ann") as auditor:
        assert auditor.get("/v1/entries/1/receipt").json()["entry_hash"] == _entry_hash(anchored_api, 1)


def _entry_hash(api: Api, seq: int) -> str:
    with api.client("acme", "supervisor", "sam") as supervisor:
        value: str = supervisor.get(f"/v1/entries/{seq}").json()["entry_hash"]
        return value


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("client", 403), ("agent-elsewhere", 404), ("other-tenant-agent", 404),
])
def test_who_may_not_have_an_entry_receipt(anchored_api: Api, anchored: dict[str, Any], who: str,
                                           status: int) -> None:
    clients = {
        "anonymous": lambda: anchored_api.client(),
        "client": lambda: anchored_api.client("acme", "client", "app"),
        "agent-elsewhere": lambda: anchored_api.client("acme", "agent", "eve"),
        "other-tenant-agent": lambda: anchored_api.client("globex", "agent", "lou"),
    }
    with clients[who]() as http:
        response = http.get("/v1/entries/0/receipt")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("query", ["size=-1", "size=abc", f"size={2**63}", "limit=0"])
def test_bad_anchor_queries_are_422(anchored_api: Api, query: str) -> None:
    path = "/v1/anchors" if query.startswith("limit") else "/v1/anchors/receipt"
    with anchored_api.client("acme", "supervisor", "sam") as http:
        response = http.get(f"{path}?{query}")
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM


def test_anchors_need_a_token(anchored_api: Api) -> None:
    with anchored_api.client() as anonymous:
        for path in ("/v1/anchors", "/v1/anchors/receipt"):
            response = anonymous.get(path)
            assert response.status_code == 401 and response.headers["content-type"] == PROBLEM
