"""The automatic self-audit (SEC 17a-4(f)) on SQLite and PostgreSQL: verify-log and the anchored
checkpoint's consistency, recorded as an `audit` entry, a metric, the process's health and, on
failure, a loud log line; one auditing process per deployment. Anchors are checked on a real anvil."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils.crypto import keccak
from prometheus_client import REGISTRY
from sqlalchemy import text

from compliance.audit import AuditScheduler, SelfAudit, _health, audit_healthy
from contracts.chain import AnchorChain
from contracts.config import ChainConfig
from ledger.appender import AUDIT_ACTOR, NewEntry
from ledger.db import WRITE
from ledger.errors import InvalidInput, NotFound
from ledger.service import Ledger
from ledger.tree import stored_hash_count
from tests.anvil import AnvilNode, free_port
from verification.chain import LogVerifier

SIZE = 6


@pytest.fixture(autouse=True)
def fresh_health() -> Iterator[None]:
    """The health is process-wide: each test starts knowing no outcome."""
    _health.clear()
    yield
    _health.clear()


def _fill(ledger: Ledger, tenant: str, count: int = SIZE) -> None:
    ledger.appender.append_batch(tenant, [
        NewEntry(kind="interaction", channel="email", case=f"case-{i % 2}", subject_ref=f"c{i % 3}",
                 content=f"message {i}".encode()) for i in range(count)])


@pytest.fixture
def logs(ledger: Ledger) -> Ledger:
    for tenant in ("acme", "globex"):
        ledger.tenants.create(tenant)
        _fill(ledger, tenant)
    return ledger


def _run(ledger: Ledger, statement: str, **params: object) -> None:
    with ledger.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(text(statement), params)


def _drop_triggers(ledger: Ledger) -> None:
    """Past the append-only triggers, as tests/ledger/test_tamper.py goes."""
    for table in ("entries", "nodes", "checkpoints"):
        if ledger.engine.dialect.name == "sqlite":
            for action in ("update", "delete"):
                _run(ledger, f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        else:
            _run(ledger, f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")


def _tamper(ledger: Ledger, tenant: str, seq: int) -> None:
    """Flip one byte of a stored header."""
    _drop_triggers(ledger)
    log_id = ledger.tenants.get(tenant).log_id
    with ledger.engine.connect() as conn:
        header = bytearray(conn.execute(text("SELECT header FROM entries WHERE log_id = :l AND seq = :s"),
                                        {"l": log_id, "s": seq}).scalar_one())
    header[len(header) // 2] ^= 0x01
    _run(ledger, "UPDATE entries SET header = :h WHERE log_id = :l AND seq = :s", h=bytes(header), l=log_id, s=seq)


def _metric(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _audit_entry(ledger: Ledger, tenant: str, seq: int) -> dict[str, Any]:
    header = ledger.reads.entry(tenant, seq, decrypt=False).header
    assert header["kind"] == "audit" and header["actor"] == AUDIT_ACTOR and header["case"] is None
    assert header["subject"] is None and header["ct"] is None  # clear meta only, no content
    meta: dict[str, Any] = header["meta"]
    return meta


def test_a_clean_log_audits_ok_and_says_so(logs: Ledger) -> None:
    runs = _metric("caseledger_audit_runs_total", tenant="acme", result="ok") or 0.0
    outcome = SelfAudit(logs).run("acme")
    assert outcome.ok and len(outcome.logs) == 1
    [log] = outcome.logs
    root = logs.proofs.consistency("acme", SIZE, SIZE).second_root
    assert (log.tenant, log.log, log.size, log.root) == ("acme", "caseledger.local/acme", SIZE, root)
    assert (log.anchored_size, log.anchor_round, log.online, log.reason, log.seq) == (None, None, False, None, None)
    assert log.entry_seq == SIZE
    assert _audit_entry(logs, "acme", SIZE) == {"ok": True, "size": SIZE, "root": root, "anchored_size": None,
                                                "round": None, "online": False, "reason": None, "seq": None}
    assert _metric("caseledger_audit_ok", tenant="acme") == 1.0
    assert (_metric("caseledger_audit_last_run_timestamp_seconds", tenant="acme") or 0) > 0
    assert _metric("caseledger_audit_runs_total", tenant="acme", result="ok") == runs + 1
    assert audit_healthy() is True
    # the audit entry is an entry like any other: the next audit checks it too
    again = SelfAudit(logs).run("acme")
    assert again.ok and again.logs[0].size == SIZE + 1 and again.logs[0].entry_seq == SIZE + 1
    assert again.to_json()["logs"][0]["size"] == SIZE + 1


def test_a_tampered_log_fails_loudly_naming_the_entry(logs: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    _tamper(logs, "acme", 3)
    with caplog.at_level(logging.ERROR, logger="caseledger.audit"):
        outcome = SelfAudit(logs).run("acme")
    [log] = outcome.logs
    assert not outcome.ok and not log.ok
    assert (log.reason, log.seq, log.size) == ("log-chain-broken", 3, None)
    assert log.message is not None and "3" in log.message
    [line] = [r for r in caplog.records if r.name == "caseledger.audit" and r.levelno == logging.ERROR]
    assert "SELF-AUDIT FAILED" in line.getMessage() and "log-chain-broken" in line.getMessage()
    assert "caseledger.local/acme" in line.getMessage() and "seq 3" in line.getMessage()
    # recorded in the log it audited, with codes and numbers only
    assert log.entry_seq == SIZE
    assert _audit_entry(logs, "acme", SIZE) == {"ok": False, "size": None, "root": None, "anchored_size": None,
                                                "round": None, "online": False, "reason": "log-chain-broken",
                                                "seq": 3}
    assert _metric("caseledger_audit_ok", tenant="acme") == 0.0
    assert audit_healthy() is False


def test_every_tenant_is_audited_and_one_bad_log_makes_the_whole_unhealthy(logs: Ledger) -> None:
    _tamper(logs, "globex", 5)
    outcome = SelfAudit(logs).run()
    assert [(log.tenant, log.ok, log.reason, log.seq) for log in outcome.logs] == [
        ("acme", True, None, None), ("globex", False, "log-chain-broken", 5)]
    assert not outcome.ok and audit_healthy() is False
    doc = outcome.to_json()
    assert doc["ok"] is False and [entry["tenant"] for entry in doc["logs"]] == ["acme", "globex"]
    assert _metric("caseledger_audit_ok", tenant="acme") == 1.0
    assert _metric("caseledger_audit_ok", tenant="globex") == 0.0
    with pytest.raises(NotFound):
        SelfAudit(logs).run("initech")


def test_only_the_audit_writes_audit_entries(logs: Ledger) -> None:
    with pytest.raises(InvalidInput):
        logs.appender.append("acme", NewEntry(kind="audit", actor="user:mallory", meta={"ok": True}))


def test_one_process_audits_and_the_others_adopt_its_outcome(logs: Ledger) -> None:
    """Two schedulers stand for two server processes (each its own lease holder)."""
    audit = SelfAudit(logs)
    first, second = AuditScheduler(audit, logs, 3600), AuditScheduler(audit, logs, 3600)
    outcome = first.run_once()
    assert outcome is not None and outcome.ok
    _tamper(logs, "acme", 2)
    assert second.run_once() is None  # the first holds the lease: the second runs nothing...
    assert logs.tenants.info("acme").size == SIZE + 1
    _health.clear()
    assert second.run_once() is None and audit_healthy() is True  # ...and adopts what was recorded
    failed = first.run_once()  # the holder keeps the lease from run to run
    assert failed is not None and not failed.ok
    _health.clear()
    assert second.run_once() is None and audit_healthy() is False
    first.stop()  # releases the lease (its thread never started)
    taken = second.run_once()
    assert taken is not None and not taken.ok and logs.tenants.info("acme").size == SIZE + 3
    second.stop()


def test_the_scheduler_runs_in_the_background_until_stopped(logs: Ledger) -> None:
    scheduler = AuditScheduler(SelfAudit(logs), logs, 0.05)
    scheduler.start()
    try:
        for _ in range(200):
            if (logs.tenants.info("globex").size or 0) >= SIZE + 2:
                break
            time.sleep(0.05)
    finally:
        scheduler.stop()
    size = logs.tenants.info("globex").size or 0
    assert size >= SIZE + 2 and audit_healthy() is True
    time.sleep(0.2)
    assert logs.tenants.info("globex").size == size  # stopped: no more runs


# ------------------------------------------------------------------ with anchoring, on anvil


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode() as started:
        yield started


def _chain(node: AnvilNode, contract: str | None) -> AnchorChain:
    return AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=contract, confirmations=1,
                                   poll_interval=0.02, rpc_backoff=0.02), node.keys[0])


@pytest.fixture
def chain(node: AnvilNode) -> Iterator[AnchorChain]:
    node.set_automine(True)
    address = _chain(node, None).deploy()
    deployed = _chain(node, address)
    yield deployed
    deployed.close()


@pytest.fixture
def anchored(logs: Ledger, chain: AnchorChain) -> int:
    """Both logs anchored at size SIZE, then grown by two entries each: the round's id."""
    done = logs.anchoring.run_round(chain)
    assert done is not None and done.state == "confirmed"
    for tenant in ("acme", "globex"):
        _fill(logs, tenant, 1)  # the anchor entry and this one
    return done.id


def test_the_log_extends_its_anchored_checkpoint_held_on_chain(logs: Ledger, chain: AnchorChain, node: AnvilNode,
                                                               anchored: int) -> None:
    made: list[AnchorChain] = []

    def factory() -> AnchorChain:
        made.append(_chain(node, chain.config.contract))
        return made[-1]

    outcome = SelfAudit(logs, chain_factory=factory).run()
    assert outcome.ok, outcome.to_json()
    assert len(made) == 1  # one client for the run, whatever the number of logs
    for log in outcome.logs:
        assert (log.size, log.anchored_size, log.anchor_round, log.online) == (SIZE + 2, SIZE, anchored, True)
        assert _audit_entry(logs, log.tenant, SIZE + 2)["anchored_size"] == SIZE
    # without a chain the stored anchor is still checked, offline and against the log
    offline = SelfAudit(logs, chain_factory=lambda: None).run("acme")
    assert offline.ok and offline.logs[0].anchored_size == SIZE and not offline.logs[0].online


def _round_root_slot(round_id: int) -> str:
    """Storage slot of `rounds[round_id].root` in LedgerAnchor: the mapping is its second variable."""
    return "0x" + keccak(round_id.to_bytes(32, "big") + (1).to_bytes(32, "big")).hex()


def test_an_on_chain_root_other_than_the_stored_one_fails(logs: Ledger, chain: AnchorChain, node: AnvilNode,
                                                          anchored: int, caplog: pytest.LogCaptureFixture) -> None:
    contract, slot = chain.config.contract, _round_root_slot(anchored)
    stored = logs.anchoring.receipt("acme").receipt.round_root
    assert node.rpc("eth_getStorageAt", contract, slot, "latest") == "0x" + stored  # the slot is the root's
    node.rpc("anvil_setStorageAt", contract, slot, "0x" + "ab" * 32)
    with caplog.at_level(logging.ERROR, logger="caseledger.audit"):
        outcome = SelfAudit(logs, chain_factory=lambda: _chain(node, contract)).run()
    for log in outcome.logs:
        assert not log.ok and log.reason == "anchor-chain-root" and not log.online
        assert log.size == SIZE + 2 and log.anchored_size == SIZE  # the log itself verified
        assert _audit_entry(logs, log.tenant, SIZE + 2)["reason"] == "anchor-chain-root"
    assert sum("anchor-chain-root" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR) == 2
    assert audit_healthy() is False


def test_an_unreachable_chain_is_not_a_passed_check(logs: Ledger, anchored: int) -> None:
    dead = ChainConfig(rpc_url=f"http://127.0.0.1:{free_port()}", chain_id=31337, contract=None, rpc_attempts=1,
                       rpc_backoff=0.01)
    outcome = SelfAudit(logs, chain_factory=lambda: AnchorChain(dead)).run("acme")
    assert [(log.ok, log.reason) for log in outcome.logs] == [(False, "anchor-chain-unavailable")]


def test_a_stored_anchor_that_is_not_the_logs_fails(logs: Ledger, anchored: int) -> None:
    _run(logs, "UPDATE anchor_round_logs SET root = :r WHERE log_id = :l", r=b"\x07" * 32,
         l=logs.tenants.get("acme").log_id)
    outcome = SelfAudit(logs, chain_factory=lambda: None).run()
    assert [(log.tenant, log.ok, log.reason) for log in outcome.logs] == [
        ("acme", False, "anchor-receipt-proof-failed"), ("globex", True, None)]


def test_a_log_rolled_back_below_its_anchor_fails_though_verify_log_passes(logs: Ledger, anchored: int) -> None:
    """The operator cuts the log, its tree, its head, its case heads and its saved checkpoints back
    coherently: verify-log alone finds nothing, the anchor does."""
    keep = SIZE - 2
    log_id = logs.tenants.get("acme").log_id
    _drop_triggers(logs)
    verifier = LogVerifier("caseledger.local/acme")
    with logs.engine.connect() as conn:
        for seq in range(keep):
            verifier.add(bytes(conn.execute(text("SELECT header FROM entries WHERE log_id = :l AND seq = :s"),
                                            {"l": log_id, "s": seq}).scalar_one()))
    last_time = logs.reads.entry("acme", keep - 1, decrypt=False).header["time"]
    for statement, params in (
            ("DELETE FROM entries WHERE log_id = :l AND seq >= :k", {"k": keep}),
            ("DELETE FROM nodes WHERE log_id = :l AND idx >= :n", {"n": stored_hash_count(keep)}),
            ("DELETE FROM checkpoints WHERE log_id = :l", {}),
            ("UPDATE logs SET size = :k, head_hash = :h, head_time = :t, peaks = :p WHERE id = :l",
             {"k": keep, "h": verifier.last_hash, "t": last_time, "p": b"".join(verifier.peaks)}),
            ("DELETE FROM case_heads WHERE log_id = :l", {})):
        _run(logs, statement, l=log_id, **params)
    for case, digest in verifier.case_heads.items():
        _run(logs, "INSERT INTO case_heads (log_id, case_id, head_hash) VALUES (:l, :c, :h)", l=log_id, c=case,
             h=digest)
    assert logs.logcheck.verify("acme")["size"] == keep
    [log] = SelfAudit(logs, chain_factory=lambda: None).run("acme").logs
    assert (log.ok, log.reason, log.seq) == (False, "anchor-inconsistent", keep)
