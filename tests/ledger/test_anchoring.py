"""Anchoring rounds against a real Ethereum node (anvil), on SQLite and PostgreSQL: which logs a round
covers, the state machine, receipts, restart safety and the deployment's one anchoring task."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from contracts.chain import AnchorChain
from contracts.config import ChainConfig
from contracts.errors import RpcUnavailable
from contracts.online import verify_anchor_online
from ledger.anchor_scheduler import AnchorScheduler
from ledger.appender import ANCHOR_ACTOR, NewEntry
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.leases import LeaseGuard
from ledger.repository import anchors as repo
from ledger.service import Ledger
from tests.anvil import AnvilNode
from verification import Trust, verify_anchor_receipt, verify_document, verify_receipt
from verification.errors import ProofError, VerificationError

TENANTS = ("acme", "globex", "initech")


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode() as started:
        yield started


def _chain(node: AnvilNode, contract: str | None, confirmations: int = 1, key: int = 0,
           **config: object) -> AnchorChain:
    return AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=contract,
                                   confirmations=confirmations, **config), node.keys[key])  # type: ignore[arg-type]


@pytest.fixture
def chain(node: AnvilNode) -> AnchorChain:
    """A fresh LedgerAnchor whose owner (account 0) is also its publisher."""
    node.set_automine(True)
    owner = _chain(node, None)
    address = owner.deploy()
    deployed = _chain(node, address)
    if not deployed.is_publisher(deployed.address):
        deployed.add_publisher(deployed.address)
    return deployed


@pytest.fixture
def tenants(ledger: Ledger) -> Ledger:
    for name in TENANTS:
        ledger.tenants.create(name)
    return ledger


def _log(ledger: Ledger, tenant: str, count: int = 1) -> None:
    for i in range(count):
        ledger.appender.append(tenant, NewEntry(kind="interaction", channel="phone", case=f"c-{i}",
                                                content=b'{"note":"hello"}'))


def _trust(ledger: Ledger) -> Trust:
    return Trust.of(*(ledger.tenants.info(name).vkey for name in TENANTS))


def test_a_round_covers_exactly_the_logs_that_grew(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme", 3)
    _log(tenants, "initech", 1)
    done = tenants.anchoring.run_round(chain)
    assert done is not None and done.state == "confirmed"
    assert done.leaves == 2
    assert done.logs == ("caseledger.local/acme", "caseledger.local/initech")
    stored = chain.round(done.id)
    assert stored is not None and stored.root.hex() == done.root and stored.leaves == 2
    [event] = chain.events(round_id=done.id)
    assert event.tx_hash == done.tx and event.block == done.block
    assert tenants.anchoring.rounds_of("globex") == []
    # each covered log records the round in an `anchor` entry of its own
    for tenant, size in (("acme", 3), ("initech", 1)):
        [mine] = tenants.anchoring.rounds_of(tenant)
        assert mine.size == size and mine.entry_seq == size
        anchor = tenants.reads.entry(tenant, size, decrypt=False).header
        assert anchor["kind"] == "anchor" and anchor["actor"] == ANCHOR_ACTOR
        assert anchor["meta"]["round"] == done.id and anchor["meta"]["tx"] == done.tx
        assert anchor["meta"]["size"] == size


def test_growth_by_anchor_entries_alone_starts_no_round(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme")
    first = tenants.anchoring.run_round(chain)
    assert first is not None
    assert tenants.tenants.info("acme").size == 2  # the entry and its anchor entry
    assert tenants.anchoring.run_round(chain) is None
    _log(tenants, "globex")
    second = tenants.anchoring.run_round(chain)
    assert second is not None and second.id == first.id + 1 and second.logs == ("caseledger.local/globex",)
    _log(tenants, "acme")
    third = tenants.anchoring.run_round(chain)
    assert third is not None and third.logs == ("caseledger.local/acme",)
    [latest, _] = tenants.anchoring.rounds_of("acme")
    assert latest.size == 3  # entry, anchor entry, entry: the anchor entry is covered by the next round


def test_anchor_receipts_verify_offline_and_online(tenants: Ledger, chain: AnchorChain, node: AnvilNode) -> None:
    for tenant in TENANTS:
        _log(tenants, tenant, 2)
    done = tenants.anchoring.run_round(chain)
    assert done is not None
    for tenant in TENANTS:
        proof = tenants.anchoring.receipt(tenant)
        doc = proof.receipt.to_json()
        offline = verify_anchor_receipt(doc, _trust(tenants))
        assert offline["round"]["id"] == done.id and offline["size"] == 2
        assert verify_document(doc, _trust(tenants))["type"] == "caseledger.anchor-receipt"
        r = proof.receipt
        online = verify_anchor_online(node.rpc_url, chain_id=r.chain_id, contract=r.contract, round_id=r.round_id,
                                      root=bytes.fromhex(r.round_root), leaves=r.round_size, tx_hash=r.tx,
                                      block=r.block, block_hash=r.block_hash)
        assert online["ok"] is True
        with pytest.raises(VerificationError):  # another tenant's key does not open this checkpoint
            verify_anchor_receipt(doc, Trust.of(tenants.tenants.info("globex" if tenant != "globex" else "acme").vkey))


def test_a_receipt_changed_anywhere_fails(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme", 2)
    _log(tenants, "globex", 2)
    assert tenants.anchoring.run_round(chain) is not None
    doc = tenants.anchoring.receipt("acme").receipt.to_json()
    for path, value in ((("round", "root"), "00" * 32), (("round", "size"), 3), (("round", "leaf_index"), 1),
                        (("round", "proof"), ["11" * 32])):
        changed = json.loads(json.dumps(doc))
        changed[path[0]][path[1]] = value
        with pytest.raises(VerificationError):
            verify_anchor_receipt(changed, _trust(tenants))


def test_an_entry_receipt_carries_its_anchor_once_anchored(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme", 3)
    before = tenants.anchoring.entry_receipt("acme", 1)
    assert before.anchor is None
    assert tenants.anchoring.run_round(chain) is not None
    _log(tenants, "acme", 2)  # the log grows past the anchored checkpoint
    after = tenants.anchoring.entry_receipt("acme", 1)
    assert after.anchor is not None and after.tree_size == 3
    result = verify_receipt(after.to_json(), _trust(tenants))
    assert result["anchor"]["round"]["id"] == after.anchor.receipt.round_id
    # an entry after the anchored checkpoint is not anchored yet
    assert tenants.anchoring.entry_receipt("acme", 4).anchor is None
    # the older receipt is upgraded by the anchor of the first anchored checkpoint at or after its size
    upgrade = tenants.anchoring.receipt("acme", before.tree_size)
    assert upgrade.receipt.to_json() == after.anchor.receipt.to_json() and upgrade.consistency is None
    from_one = tenants.anchoring.receipt("acme", 1)
    assert from_one.consistency is not None and (from_one.consistency.first, from_one.consistency.second) == (1, 3)
    with pytest.raises(NotFound):
        tenants.anchoring.receipt("acme", 6)
    with pytest.raises(NotFound):
        tenants.anchoring.receipt("globex")


def test_a_tampered_anchor_in_an_entry_receipt_fails(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme", 2)
    assert tenants.anchoring.run_round(chain) is not None
    doc = tenants.anchoring.entry_receipt("acme", 0).to_json()
    doc["anchor"]["receipt"]["round"]["root"] = "22" * 32
    with pytest.raises(ProofError):
        verify_receipt(doc, _trust(tenants))


def test_a_non_publisher_fails_the_round_with_its_reason_and_the_next_round_covers_the_logs(
        tenants: Ledger, chain: AnchorChain, node: AnvilNode) -> None:
    stranger = _chain(node, chain.config.contract, key=3)
    _log(tenants, "acme")
    failed = tenants.anchoring.run_round(stranger)
    assert failed is not None and failed.state == "failed"
    assert failed.reason is not None and "not a publisher" in failed.reason
    assert chain.round(failed.id) is None
    retried = tenants.anchoring.run_round(chain)
    assert retried is not None and retried.state == "confirmed" and retried.logs == ("caseledger.local/acme",)
    assert retried.id == failed.id + 1


def test_a_round_anchored_before_a_crash_is_adopted_not_sent_twice(tenants: Ledger, chain: AnchorChain) -> None:
    """The transaction was mined but the process died before recording it: the next run finds the
    round on the contract, confirms it from its event, and sends nothing."""
    _log(tenants, "acme")
    opened = tenants.anchoring._runner.open_round(chain)
    signed = chain.sign_anchor(int(opened.id), bytes(opened.root), int(opened.leaves))
    tenants.anchoring._runner.submitted(int(opened.id), signed)
    chain.send(signed)  # ... and the process is killed here
    nonce_before = chain.pending_nonce()
    done = tenants.anchoring.run_round(chain)
    assert done is not None and done.state == "confirmed" and done.tx == signed.tx_hash
    assert chain.pending_nonce() == nonce_before  # nothing else was sent
    assert len(chain.events(round_id=done.id)) == 1


def test_a_signed_transaction_never_sent_is_sent_on_restart(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme")
    opened = tenants.anchoring._runner.open_round(chain)
    signed = chain.sign_anchor(int(opened.id), bytes(opened.root), int(opened.leaves))
    tenants.anchoring._runner.submitted(int(opened.id), signed)  # stored, then the process dies before sending
    done = tenants.anchoring.run_round(chain)
    assert done is not None and done.state == "confirmed" and done.tx == signed.tx_hash


def test_the_rpc_endpoint_stopped_mid_round_is_survived(tenants: Ledger, node: AnvilNode) -> None:
    node.set_automine(True)
    owner = _chain(node, None)
    chain = _chain(node, owner.deploy(), rpc_attempts=2)
    chain.add_publisher(chain.address)
    _log(tenants, "acme")
    opened = tenants.anchoring._runner.open_round(chain)
    signed = chain.sign_anchor(int(opened.id), bytes(opened.root), int(opened.leaves))
    tenants.anchoring._runner.submitted(int(opened.id), signed)
    node.stop()
    try:
        with pytest.raises(RpcUnavailable):
            tenants.anchoring.run_round(chain)
        [interrupted] = tenants.anchoring.rounds()
        assert interrupted.state == "submitted" and interrupted.reason is not None
    finally:
        node.start()
    done = tenants.anchoring.run_round(chain)
    assert done is not None and done.state == "confirmed" and done.tx == signed.tx_hash and done.reason is None


def test_one_round_at_a_time_even_when_two_runs_race(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme")
    _log(tenants, "globex")
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(tenants.anchoring.run_round(chain))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rounds = tenants.anchoring.rounds()
    assert [r.state for r in rounds] == ["confirmed"], (rounds, errors)
    assert len(chain.events(round_id=rounds[0].id)) == 1
    with tenants.engine.connect() as conn:
        logs = repo.round_logs(conn, rounds[0].id)
    assert [log.entry_seq for log in logs] == [1, 1]  # one anchor entry per log, not two


def test_only_the_lease_holder_runs_rounds(tenants: Ledger, chain: AnchorChain) -> None:
    first = AnchorScheduler(tenants.anchoring, chain, interval=3600)
    second = AnchorScheduler(tenants.anchoring, chain, interval=3600)
    _log(tenants, "acme")
    done = second.run_once()  # nobody holds the lease: the second takes it and anchors
    assert done is not None and done.state == "confirmed"
    _log(tenants, "acme")
    assert first.run_once() is None  # the second holds the lease
    assert len(tenants.anchoring.rounds()) == 1
    assert tenants.anchoring.hold_lease("someone-else", 60) is False
    second.stop()  # releases the lease: the first takes over
    taken = first.run_once()
    assert taken is not None and taken.state == "confirmed" and taken.id == done.id + 1


def test_a_round_id_taken_on_the_contract_fails_and_the_next_id_anchors_in_the_same_run(
        tenants: Ledger, chain: AnchorChain) -> None:
    """As after restoring the database from a backup: the contract already holds round 1 and 2."""
    chain.anchor(1, b"\x01" * 32, 1)
    chain.anchor(2, b"\x02" * 32, 1)
    _log(tenants, "acme")
    done = tenants.anchoring.run_round(chain)
    assert done is not None and done.state == "confirmed" and done.id == 3
    stored = chain.round(3)
    assert stored is not None and stored.root.hex() == done.root
    failed = [r for r in tenants.anchoring.rounds() if r.state == "failed"]
    assert [r.id for r in failed] == [2, 1]
    assert all("another root" in (r.reason or "") for r in failed)


def test_only_the_anchoring_service_writes_anchor_entries(tenants: Ledger) -> None:
    with pytest.raises(InvalidInput, match="anchoring service"):
        tenants.appender.append("acme", NewEntry(kind="anchor", actor="user:mallory", meta={"round": 1}))
    assert tenants.tenants.info("acme").size == 0


def test_a_run_that_loses_its_lease_stops_and_leaves_the_round_open(tenants: Ledger, chain: AnchorChain) -> None:
    _log(tenants, "acme")
    lost = LeaseGuard(lost=True)
    with pytest.raises(LedgerError, match="lease was lost"):
        tenants.anchoring.run_round(chain, lost)
    [left] = tenants.anchoring.rounds()
    assert left.state == "pending" and "lease" in (left.reason or "")
    assert chain.round(left.id) is None  # nothing was sent
    done = tenants.anchoring.run_round(chain)
    assert done is not None and done.id == left.id and done.state == "confirmed"
