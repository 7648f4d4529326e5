"""Automatic self-audit (SEC 17a-4(f) audit-trail alternative): the system verifies, on a schedule, the
completeness and accuracy of its records, and says so on the record.

For each tenant's log a run does what `caseledger verify-log` does (`ledger.logcheck`, not a second
implementation): every header, both hash chains, every envelope against its `ct`, every stored tree
node and checkpoint, the log head. Where the log has an anchored checkpoint it then checks that
anchor: the stored anchor receipt verifies offline against the log's own key and the stored root
(`verification.anchor`), the log as just verified extends the anchored tree (an RFC 9162 consistency
proof from the anchored size to the verified size, checked against the anchored root and the root
recomputed from the entries), and — when a chain is available — the contract holds that round's root
in the transaction and block the receipt names (`contracts.online`).

The outcome of each log is
- an `audit` entry in that log, by ``service:audit`` (the appender lets no one else write `audit`),
  whose `meta` says `ok`, the `size` and `root` checked, the `anchored_size` (null when never anchored),
  the anchoring `round`, whether the chain was consulted (`online`), and on failure a `reason` code and
  the first bad `seq` — codes and numbers only, no personal data and no free text;
- Prometheus metrics in the registry the API's ``/metrics`` serves: ``caseledger_audit_ok{tenant}``
  (1 or 0), ``caseledger_audit_last_run_timestamp_seconds{tenant}`` and
  ``caseledger_audit_runs_total{tenant,result}``;
- on failure, one line at ERROR on the ``caseledger.audit`` logger;
- the process-wide health `audit_healthy()` that ``/readyz`` consults.

Reason codes: ``log-<code>`` for a failed verify-log (``log-chain-broken``, ``log-signature-invalid``,
``log-malformed``, ``log-verification-failed``…, the code of the `VerificationError`);
``anchor-receipt-<code>`` for a stored anchor receipt that does not verify offline;
``anchor-inconsistent`` when the log does not extend its anchored checkpoint; ``anchor-chain-<what>``
when the chain holds something else than the receipt (``anchor-chain-root``, ``anchor-chain-tx``,
``anchor-chain-block_hash``…, `AnchorMismatch.what`); ``anchor-chain-unavailable`` when the node
could not be asked (a check that could not run is not a check that passed); ``audit-error`` for
anything else, logged with its traceback.

`AuditScheduler` runs audits in a background thread, in one process per deployment (a lease, as for
anchoring); the other processes take the deployment's latest recorded outcome from the `audit`
entries, so every worker's ``/readyz`` answers alike.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from compliance.scheduling import LeasedSchedule
from ledger.anchoring import open_chain
from ledger.appender import AUDIT_ACTOR, NewEntry
from ledger.connections import reading
from ledger.errors import LedgerError, NotFound
from ledger.repository import anchors as anchor_repo
from ledger.repository import audits as repo
from ledger.repository.tenants import get_log
from ledger.service import Ledger
from ledger.tenants import TenantContext
from verification.anchor import AnchorReceipt, verify_anchor_receipt
from verification.errors import VerificationError
from verification.merkle import verify_consistency
from verification.trust import Trust

if TYPE_CHECKING:  # web3 is imported only where a chain is used
    from contracts.chain import AnchorChain

__all__ = ["AUDIT_LEASE", "AUDIT_OK", "AUDIT_RUNS", "AUDIT_TIMESTAMP", "AuditOutcome", "AuditScheduler", "LogAudit",
           "SelfAudit", "audit_healthy"]

#: the lease the deployment's one auditing process holds
AUDIT_LEASE = "audit"

AUDIT_OK = Gauge("caseledger_audit_ok", "1 if the last self-audit of the tenant's log passed, else 0", ["tenant"],
                 multiprocess_mode="mostrecent")
AUDIT_TIMESTAMP = Gauge("caseledger_audit_last_run_timestamp_seconds",
                        "when the tenant's log was last self-audited (Unix time)", ["tenant"],
                        multiprocess_mode="max")
AUDIT_RUNS = Counter("caseledger_audit_runs", "self-audits of a tenant's log, by result", ["tenant", "result"])

_log = logging.getLogger("caseledger.audit")


# ------------------------------------------------------------------ the outcome


@dataclass(frozen=True)
class LogAudit:
    """One log's audit. `message` is for people (the CLI, the log line) and stays out of the entry."""

    tenant: str
    log: str
    ok: bool
    #: the size and root verify-log checked (None if it could not finish)
    size: int | None
    root: str | None
    #: the newest anchored checkpoint's size and round (None when the log was never anchored)
    anchored_size: int | None
    anchor_round: int | None
    #: whether the chain itself confirmed the anchor (False when there is none, no chain, or it differs)
    online: bool
    reason: str | None
    #: the first bad seq, where the failure names one
    seq: int | None
    message: str | None
    checked_at: str
    #: seq of the `audit` entry recording this outcome (None if it could not be appended)
    entry_seq: int | None = None

    def meta(self) -> dict[str, Any]:
        """The `audit` entry's clear meta: codes and numbers, nothing personal, no free text."""
        return {"ok": self.ok, "size": self.size, "root": self.root, "anchored_size": self.anchored_size,
                "round": self.anchor_round, "online": self.online, "reason": self.reason, "seq": self.seq}

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "log": self.log, **self.meta(), "message": self.message,
                "checked_at": self.checked_at, "entry_seq": self.entry_seq}


@dataclass(frozen=True)
class AuditOutcome:
    started_at: str
    finished_at: str
    logs: tuple[LogAudit, ...]

    @property
    def ok(self) -> bool:
        return all(log.ok for log in self.logs)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "started_at": self.started_at, "finished_at": self.finished_at,
                "logs": [log.to_json() for log in self.logs]}


class _Health:
    """The latest known outcome per deployment (its database) and tenant, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ok: dict[tuple[str, str], bool] = {}

    def record(self, deployment: str, tenant: str, ok: bool) -> None:
        with self._lock:
            self._ok[deployment, tenant] = ok

    def healthy(self, deployment: str | None = None) -> bool | None:
        with self._lock:
            known = [ok for (where, _), ok in self._ok.items() if deployment is None or where == deployment]
        return None if not known else all(known)

    def clear(self) -> None:
        with self._lock:
            self._ok.clear()


_health = _Health()


def _deployment(ledger: Ledger) -> str:
    return ledger.engine.url.render_as_string(hide_password=True)


def audit_healthy(ledger: Ledger | None = None) -> bool | None:
    """Whether the latest known self-audit of every log (of `ledger`'s deployment, or of any) passed:
    None before any is known in this process (not run here yet, nor adopted from the log by
    `AuditScheduler`), False if any failed."""
    return _health.healthy(None if ledger is None else _deployment(ledger))


# ------------------------------------------------------------------ one run


class _Failed(Exception):
    def __init__(self, reason: str, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.seq = seq


def _seq_of(exc: LedgerError) -> int | None:
    seq = exc.fields.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


class _ChainOnce:
    """The run's chain client: made on first need, once; closed when the run ends. A factory that
    failed fails every anchor check of the run alike."""

    def __init__(self, factory: Callable[[], AnchorChain | None]) -> None:
        self._factory = factory
        self._made = False
        self._chain: AnchorChain | None = None
        self._error: str | None = None

    def get(self) -> AnchorChain | None:
        if not self._made:
            self._made = True
            try:
                self._chain = self._factory()
            except LedgerError as exc:
                self._error = f"no chain client: {exc.message}"
        if self._error is not None:
            raise _Failed("anchor-chain-unavailable", self._error)
        return self._chain

    def close(self) -> None:
        if self._chain is not None:
            self._chain.close()


@dataclass
class _Progress:
    size: int | None = None
    root: str | None = None
    anchored_size: int | None = None
    anchor_round: int | None = None
    online: bool = False


class SelfAudit:
    """verify-log and the anchored checkpoint's consistency, recorded per log.

    `chain_factory` gives the chain client to ask about anchors; it is called at most once per run,
    when a log has an anchor to check, and what it returns is closed at the end of that run. By
    default it is the chain the settings configure (`ledger.anchoring.open_chain`), or none when
    anchoring is off: stored anchors are then still checked offline and against the log.
    """

    def __init__(self, ledger: Ledger, chain_factory: Callable[[], AnchorChain | None] | None = None) -> None:
        self._ledger = ledger
        if chain_factory is None:
            settings = ledger.settings
            chain_factory = (lambda: open_chain(settings)) if settings.anchoring else (lambda: None)
        self._chain_factory = chain_factory

    def run(self, tenant: str | None = None) -> AuditOutcome:
        """Audit `tenant`'s log, or every tenant's; NotFound for an unknown tenant. Failures are
        outcomes, not exceptions."""
        started = self._ledger.clock()
        if tenant is not None:
            self._ledger.tenants.get(tenant)  # NotFound before anything is recorded
            names = [tenant]
        else:
            names = self._ledger.tenants.names()
        chain = _ChainOnce(self._chain_factory)
        try:
            logs = tuple(self._audit_log(name, chain) for name in names)
        finally:
            chain.close()
        return AuditOutcome(started, self._ledger.clock(), logs)

    def adopt_recorded(self) -> bool | None:
        """Take each log's newest `audit` entry as this process's known outcome (what a process that
        does not run the audits itself knows); returns `audit_healthy()`."""
        names = self._ledger.tenants.names()
        with reading(self._ledger.engine) as conn:
            for name in names:
                row = repo.latest_audit(conn, self._ledger.tenants.get(name).log_id)
                if row is not None:
                    _health.record(_deployment(self._ledger), name,
                                   json.loads(bytes(row.header))["meta"].get("ok") is True)
        return audit_healthy(self._ledger)

    # -- one log

    def _audit_log(self, tenant: str, chain: _ChainOnce) -> LogAudit:
        context = self._ledger.tenants.get(tenant)
        progress = _Progress()
        reason = message = None
        seq = None
        try:
            self._verify(tenant, context, progress, chain)
        except _Failed as failed:
            reason, message, seq = failed.reason, failed.message, failed.seq
        except Exception as exc:  # the audit must say it could not check, whatever went wrong
            _log.exception("self-audit of %s could not run", context.origin)
            reason, message = "audit-error", f"the audit could not run: {type(exc).__name__}"
        audit = LogAudit(tenant=tenant, log=context.origin, ok=reason is None, size=progress.size,
                         root=progress.root, anchored_size=progress.anchored_size,
                         anchor_round=progress.anchor_round, online=progress.online, reason=reason, seq=seq,
                         message=message, checked_at=self._ledger.clock())
        return self._record(audit)

    def _verify(self, tenant: str, context: TenantContext, progress: _Progress, chain: _ChainOnce) -> None:
        try:
            checked = self._ledger.logcheck.verify(tenant)
        except VerificationError as exc:
            raise _Failed(f"log-{exc.code}", exc.message, _seq_of(exc)) from exc
        progress.size, progress.root = int(checked["size"]), str(checked["root"])
        with reading(self._ledger.engine) as conn:
            newest = anchor_repo.last_anchored(conn, context.log_id)
            # read after the anchor: a log that only grows has at least every size ever anchored
            current = int(get_log(conn, context.log_id).size)
            row = newest if newest is None or newest.size <= progress.size else repo.last_anchored_upto(
                conn, context.log_id, progress.size)  # anchored since verify-log's snapshot: the next audit's
        if newest is not None and int(newest.size) > current:
            raise _Failed("anchor-inconsistent", f"a checkpoint of size {newest.size} was anchored, the log has only "
                          f"{current} entries: it was rolled back", current)
        if row is None:
            return
        progress.anchored_size = int(row.size)
        receipt = self._anchored(context, row)
        progress.anchor_round = receipt.round_id
        self._consistent(tenant, progress.anchored_size, bytes(row.root), progress.size, progress.root)
        client = chain.get()
        if client is not None:
            self._on_chain(client, receipt)
            progress.online = True

    @staticmethod
    def _anchored(context: TenantContext, row: Any) -> AnchorReceipt:
        """The stored anchor receipt, verified offline: its checkpoint signed by this log's key, of the
        stored size and root, and a leaf of the round tree it states."""
        try:
            receipt = AnchorReceipt.from_json(json.loads(row.receipt))
            checked = verify_anchor_receipt(receipt, Trust.of(context.vkey), root=bytes(row.root))
        except (ValueError, VerificationError) as exc:
            code = exc.code if isinstance(exc, VerificationError) else "malformed"
            raise _Failed(f"anchor-receipt-{code}", f"the stored anchor receipt of size {row.size} does not verify: "
                          f"{exc}") from exc
        if (receipt.log != context.origin or checked["size"] != int(row.size)
                or str(row.checkpoint) != receipt.checkpoint):
            raise _Failed("anchor-receipt-mismatch", f"the stored anchor of size {row.size} differs from its receipt")
        return receipt

    def _consistent(self, tenant: str, anchored: int, anchored_root: bytes, size: int, root: str) -> None:
        """The log verified (`size`, `root`) extends the anchored tree: RFC 9162 §2.1.4.2."""
        try:
            proof = self._ledger.proofs.consistency(tenant, anchored, size) if anchored else None
            if proof is not None:
                verify_consistency(anchored, size, [bytes.fromhex(h) for h in proof.proof], anchored_root,
                                   bytes.fromhex(root))
        except (VerificationError, NotFound) as exc:
            raise _Failed("anchor-inconsistent", f"the log of size {size} does not extend the anchored checkpoint "
                          f"of size {anchored}: {exc}") from exc

    @staticmethod
    def _on_chain(chain: AnchorChain, receipt: AnchorReceipt) -> None:
        """The contract holds the round's root, in the transaction and block the receipt names."""
        from contracts.errors import AnchorChainError, AnchorMismatch
        from contracts.online import verify_anchor_online

        try:
            verify_anchor_online(chain.config.rpc_url, chain_id=receipt.chain_id, contract=receipt.contract,
                                 round_id=receipt.round_id, root=bytes.fromhex(receipt.round_root),
                                 leaves=receipt.round_size, tx_hash=receipt.tx, block=receipt.block,
                                 block_hash=receipt.block_hash, min_confirmations=chain.config.confirmations)
        except AnchorMismatch as exc:
            raise _Failed(f"anchor-chain-{exc.what}", exc.message) from exc
        except AnchorChainError as exc:
            raise _Failed("anchor-chain-unavailable", exc.message) from exc

    # -- the record

    def _record(self, audit: LogAudit) -> LogAudit:
        """The `audit` entry, the metrics, the health and, on failure, the loud line."""
        entry_seq = None
        try:
            entry_seq = self._ledger.appender.append(audit.tenant, NewEntry(
                kind="audit", actor=AUDIT_ACTOR, meta=audit.meta())).seq
        except Exception:  # the outcome must still reach the metrics, the health and the log line
            _log.exception("the self-audit of %s could not be recorded in the log", audit.log)
        AUDIT_OK.labels(audit.tenant).set(1 if audit.ok else 0)
        AUDIT_TIMESTAMP.labels(audit.tenant).set(time.time())
        AUDIT_RUNS.labels(audit.tenant, "ok" if audit.ok else "failed").inc()
        _health.record(_deployment(self._ledger), audit.tenant, audit.ok)
        if not audit.ok:
            where = "" if audit.seq is None else f" at seq {audit.seq}"
            _log.error("SELF-AUDIT FAILED for %s: %s%s: %s", audit.log, audit.reason, where, audit.message)
        return replace(audit, entry_seq=entry_seq)


# ------------------------------------------------------------------ the schedule


class AuditScheduler(LeasedSchedule["AuditOutcome"]):
    """Runs `audit` every `interval` seconds, in one process of the deployment (`compliance.scheduling`);
    the others adopt the latest recorded outcomes each turn, so `audit_healthy()` answers alike in
    every process."""

    def __init__(self, audit: SelfAudit, ledger: Ledger, interval: float) -> None:
        super().__init__(ledger, AUDIT_LEASE, interval, audit.run, audit.adopt_recorded)
