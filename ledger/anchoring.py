"""Anchoring rounds (DESIGN §6): the latest checkpoint of every log that grew, in one transaction.

A round is a row that moves pending → submitted → confirmed, or to failed with a reason:

- **pending**: the round's logs and their checkpoints are chosen and its round tree built, in one
  database transaction, before anything is sent. At most one round is open (pending or submitted)
  at a time; a crash leaves it open and the next run resumes it.
- **submitted**: the anchoring transaction is signed and stored *before* it is sent, so a restart
  sends the same transaction again rather than a second one. A replacement (higher fees, or a new
  nonce after a drop) is stored before it is sent too. The contract refuses a round id twice, so
  no crash can anchor a round twice; a round found on chain with our root is adopted.
- **confirmed**: its block has the configured confirmations (or is finalized). Each log gets its
  anchor receipt, stored, and then an `anchor` entry in its own log; those entries are recorded
  exactly once, even across a crash, and a log whose only growth is such entries has not grown.
- **failed**: the chain refused the round for good (not a publisher, the round id taken with another
  root, the contract changed). Its logs are not covered, so the next round takes them again.

Errors that may pass (the node is down, fees above the cap, a timeout) leave the round open with the
error as its `reason`; the next run resumes it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ledger.appender import ANCHOR_ACTOR, Appender, NewEntry
from ledger.checkpoints import Checkpoints, SignedCheckpoint
from ledger.connections import reading, writing
from ledger.errors import ConfigurationError, LedgerError, NotFound
from ledger.proofs import Proofs
from ledger.reads import stored_header
from ledger.repository import anchors as repo
from ledger.settings import Settings
from ledger.tenants import Tenants
from verification.anchor import AnchorReceipt, RoundLeaf, build_round
from verification.proofs import ConsistencyProof
from verification.receipt import Receipt, ReceiptAnchor

if TYPE_CHECKING:  # web3 is imported only where a chain is used: the CLI's other commands start fast
    from contracts.chain import AnchorChain, Mined, SignedTx, StoredRound

__all__ = ["ANCHOR_ACTOR", "LEASE", "LEASE_TTL", "AnchorProof", "AnchorScheduler", "Anchoring", "LeaseGuard",
           "LogRound",
           "Round", "lease_holder", "open_chain"]

#: the lease the deployment's one anchoring task holds, and how long it lasts unless renewed
LEASE = "anchoring"
LEASE_TTL = 30.0
_log = logging.getLogger("caseledger.anchoring")


#: a run tries at most this many round ids taken on the contract by others before it gives up
_MAX_TAKEN_IDS = 16


@dataclass
class LeaseGuard:
    """Set `lost` when the process stops holding the anchoring lease."""

    lost: bool = False


class _RoundIdTaken(LedgerError):
    """The contract holds another root under this round id (not ours): the round fails, the next id is tried."""


def _check(lease: LeaseGuard | None) -> None:
    if lease is not None and lease.lost:
        raise LedgerError("the anchoring lease was lost to another process; it resumes the round")


@dataclass(frozen=True)
class Round:
    id: int
    state: str
    chain_id: int
    contract: str
    root: str
    leaves: int
    created_at: str
    updated_at: str
    tx: str | None
    block: int | None
    block_hash: str | None
    gas_used: int | None
    confirmed_at: str | None
    reason: str | None
    #: origins of the logs it covers, in leaf order (when asked for)
    logs: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, row: Any, logs: tuple[str, ...] = ()) -> Round:
        return cls(int(row.id), str(row.state), int(row.chain_id), str(row.contract), bytes(row.root).hex(),
                   int(row.leaves), str(row.created_at), str(row.updated_at), row.tx_hash,
                   None if row.block is None else int(row.block), row.block_hash,
                   None if row.gas_used is None else int(row.gas_used), row.confirmed_at, row.reason, logs)

    def as_dict(self) -> dict[str, Any]:
        out = {"round": self.id, "state": self.state, "chain_id": self.chain_id, "contract": self.contract,
               "root": self.root, "leaves": self.leaves, "created_at": self.created_at,
               "updated_at": self.updated_at, "tx": self.tx, "block": self.block, "block_hash": self.block_hash,
               "gas_used": self.gas_used, "confirmed_at": self.confirmed_at, "reason": self.reason}
        if self.logs:
            out["logs"] = list(self.logs)
        return out


@dataclass(frozen=True)
class LogRound:
    """A round as one log sees it: the round, and this log's checkpoint and leaf in it."""

    round: Round
    size: int
    root: str
    leaf_index: int
    entry_seq: int | None

    def as_dict(self) -> dict[str, Any]:
        return self.round.as_dict() | {"log_size": self.size, "log_root": self.root, "leaf_index": self.leaf_index,
                                       "entry_seq": self.entry_seq}


@dataclass(frozen=True)
class AnchorProof:
    """The anchor of the first anchored checkpoint at or after `size`, and the consistency proof from
    the tree of `size` to it (None when `size` is 0 or is the anchored size itself)."""

    size: int
    receipt: AnchorReceipt
    consistency: ConsistencyProof | None

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "receipt": self.receipt.to_json(),
                "consistency": None if self.consistency is None else self.consistency.to_json()}


class Anchoring:
    def __init__(self, engine: Engine, tenants: Tenants, checkpoints: Checkpoints, proofs: Proofs,
                 appender: Appender, clock: Callable[[], str]) -> None:
        self._engine = engine
        self._tenants = tenants
        self._checkpoints = checkpoints
        self._proofs = proofs
        self._appender = appender
        self._clock = clock
        #: recording `anchor` entries checks, then appends: one thread at a time (processes: the lease)
        self._recording = threading.Lock()

    # ------------------------------------------------------------------ reading

    def rounds(self, limit: int = 100) -> list[Round]:
        """The newest rounds first."""
        with reading(self._engine) as conn:
            return [Round.of(row) for row in repo.list_rounds(conn, limit)]

    def round(self, round_id: int) -> Round:
        with reading(self._engine) as conn:
            row = repo.get_round(conn, round_id)
            if row is None:
                raise NotFound(f"no anchoring round {round_id}")
            logs = tuple(str(log.origin) for log in repo.round_logs(conn, round_id))
        return Round.of(row, logs)

    def rounds_of(self, tenant: str, limit: int = 100) -> list[LogRound]:
        """The rounds covering `tenant`'s log, newest first."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            rows = repo.rounds_of_log(conn, context.log_id, limit)
        return [LogRound(Round.of(row), int(row.log_size), bytes(row.log_root).hex(), int(row.leaf_index),
                         None if row.entry_seq is None else int(row.entry_seq)) for row in rows]

    def receipt(self, tenant: str, size: int | None = None) -> AnchorProof:
        """The anchor of the first anchored checkpoint of `tenant`'s log at or after `size` (default:
        the newest anchor), with the consistency proof from `size` to it."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            row = (repo.first_anchored(conn, context.log_id, size) if size is not None
                   else repo.last_anchored(conn, context.log_id))
        if row is None:
            where = "" if size is None else f" at or after size {size}"
            raise NotFound(f"no anchored checkpoint of {context.origin}{where} yet")
        anchored = int(row.size)
        start = anchored if size is None else size
        consistency = (self._proofs.consistency(tenant, start, anchored)
                       if 0 < start < anchored else None)
        return AnchorProof(start, AnchorReceipt.from_json(json.loads(row.receipt)), consistency)

    def entry_receipt(self, tenant: str, seq: int) -> Receipt:
        """The receipt of entry `seq`: against the first anchored checkpoint that holds it, with that
        anchor, once it is anchored; against the current checkpoint before."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            row = repo.first_anchored(conn, context.log_id, seq + 1)
        if row is None:
            return self._checkpoints.receipt(tenant, seq)
        at = SignedCheckpoint(int(row.size), bytes(row.root), str(row.checkpoint))
        receipt = self._checkpoints.receipt(tenant, seq, at)
        return replace(receipt, anchor=ReceiptAnchor(AnchorReceipt.from_json(json.loads(row.receipt)), ()))

    # ------------------------------------------------------------------ running rounds

    def hold_lease(self, holder: str, ttl: float = LEASE_TTL) -> bool:
        """Take or renew the deployment's anchoring lease for `ttl` seconds; False while another
        process holds it — unless that process ran on this host and has died (a killed `anchor run`)."""
        with writing(self._engine) as conn, conn.begin():
            if repo.acquire_lease(conn, LEASE, holder, time.time(), ttl):
                return True
            current = repo.lease_holder_of(conn, LEASE)
            if current is not None and _died_here(current):
                _log.warning("taking over the anchoring lease of %s, which has died", current)
                return repo.acquire_lease(conn, LEASE, holder, time.time(), ttl, dead=current)
        return False

    @contextmanager
    def leased(self, holder: str, ttl: float = LEASE_TTL) -> Iterator[LeaseGuard]:
        """Keep the lease `holder` holds while the block runs: a thread renews it every `ttl` / 3, so a
        long round keeps it and a process that dies loses it within `ttl`. A renewal that fails marks
        the guard lost, and a round given the guard stops before its next step."""
        guard = LeaseGuard()
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(ttl / 3):
                try:
                    held = self.hold_lease(holder, ttl)
                except Exception:  # the database is unreachable: the lease may run out meanwhile
                    held = False
                if not held:
                    _log.warning("the anchoring lease was lost; the round is left to its next holder")
                    guard.lost = True
                    return

        keeper = threading.Thread(target=renew, name="caseledger-anchoring-lease", daemon=True)
        keeper.start()
        try:
            yield guard
        finally:
            stop.set()
            keeper.join()

    def release_lease(self, holder: str) -> None:
        with writing(self._engine) as conn, conn.begin():
            repo.release_lease(conn, LEASE, holder)

    def run_round(self, chain: AnchorChain, lease: LeaseGuard | None = None) -> Round | None:
        """Resume the open round, or start one over every log that grew; drive it until it is
        confirmed or failed. None when no round was open and no log grew.

        Raises the chain's error when the node cannot be reached or the round cannot be confirmed
        yet; the round stays open, with the error as its reason, and the next run resumes it. With a
        `lease`, stops (leaving the round open) as soon as the lease is lost to another process.
        """
        from contracts.errors import Reverted

        try:
            chain.check_chain()  # a node of another chain: refused before a round is opened for it
            self._record_entries(lease)
            for _ in range(_MAX_TAKEN_IDS):
                row = self._open_round(chain)
                if row is None:
                    return None
                round_id = int(row.id)
                try:
                    self._drive(chain, row, lease)
                except _RoundIdTaken as exc:  # e.g. a database restored from a backup: try the next id
                    self._fail(round_id, str(exc))
                    continue
                except Reverted as exc:
                    self._fail(round_id, f"the chain refused the round: {exc.reason or exc}")
                break
            self._record_entries(lease)
        except LedgerError as exc:
            self._note(str(exc))
            raise
        return self.round(round_id)

    def _open_round(self, chain: AnchorChain) -> Any:
        config = chain.config
        with reading(self._engine) as conn:
            row = repo.open_round(conn)
        if row is not None:
            if (int(row.chain_id), str(row.contract).lower()) == (config.chain_id, str(config.contract).lower()):
                return row
            self._fail(int(row.id), f"the anchoring chain or contract changed to {config.chain_id}/{config.contract}")
        with reading(self._engine) as conn:
            grown = repo.grown_logs(conn)
        if not grown:
            return None
        covered = [(log, self._checkpoints.latest(str(log.tenant))) for log in grown]
        tree = build_round([RoundLeaf(str(log.origin), cp.size, cp.root) for log, cp in covered])
        now = self._clock()
        try:
            with writing(self._engine) as conn, conn.begin():
                opened = repo.open_round(conn)
                if opened is not None:  # another process opened a round meanwhile: resume that one
                    return opened
                round_id = repo.next_round_id(conn)
                repo.insert_round(conn, {
                    "id": round_id, "state": "pending", "open": 1, "chain_id": config.chain_id,
                    "contract": config.contract, "root": tree.root, "leaves": tree.size, "created_at": now,
                    "updated_at": now}, [
                    {"log_id": int(log.log_id), "leaf_index": tree.index_of(str(log.origin)), "size": cp.size,
                     "root": cp.root, "checkpoint": cp.note} for log, cp in covered])
        except IntegrityError:  # another process took the open slot or the id first: resume its round
            with reading(self._engine) as conn:
                return repo.open_round(conn)
        _log.info("anchoring round %d opened over %d logs", round_id, tree.size)
        with reading(self._engine) as conn:
            return repo.get_round(conn, round_id)

    def _drive(self, chain: AnchorChain, row: Any, lease: LeaseGuard | None) -> None:
        from contracts.chain import SignedTx
        from contracts.errors import Reverted

        round_id, root, leaves = int(row.id), bytes(row.root), int(row.leaves)
        try:
            stored = chain.round(round_id)
            if stored is None:
                if row.state == "pending":
                    _check(lease)
                    signed = chain.sign_anchor(round_id, root, leaves)
                    self._submitted(round_id, signed)
                else:
                    signed = SignedTx(str(row.tx_hash), bytes(row.raw_tx), int(row.nonce), int(row.max_fee),
                                      int(row.priority_fee))
                mined = chain.confirm(signed, on_replace=lambda new: self._submitted(round_id, new))
                _check(lease)
                self._confirm(round_id, mined)
                return
        except Reverted:
            # refused: unless the round is on chain already (by another transaction of ours for it, a
            # replaced one or one sent by a process racing this one), the refusal stands
            stored = chain.round(round_id)
            if stored is None:
                raise
        self._adopt(chain, round_id, root, stored, lease)

    def _adopt(self, chain: AnchorChain, round_id: int, root: bytes, stored: StoredRound,
               lease: LeaseGuard | None) -> None:
        """The round is on chain already (sent before a crash, or by a transaction that replaced ours)."""
        from contracts.errors import Reverted

        if stored.root != root:
            raise _RoundIdTaken(f"round id {round_id} is anchored on the contract with another root")
        events = chain.events(round_id=round_id, from_block=stored.block)
        if not events:
            raise Reverted(f"round {round_id} is stored on the contract but its Anchored event is missing",
                           reason="Anchored event missing")
        mined = chain.wait_final(events[0].tx_hash)
        _check(lease)
        self._confirm(round_id, mined)

    def _submitted(self, round_id: int, signed: SignedTx) -> None:
        with writing(self._engine) as conn, conn.begin():
            repo.update_open_round(conn, round_id, state="submitted", tx_hash=signed.tx_hash, raw_tx=signed.raw,
                              nonce=signed.nonce, max_fee=signed.max_fee_per_gas,
                              priority_fee=signed.max_priority_fee_per_gas, updated_at=self._clock())

    def _confirm(self, round_id: int, mined: Mined) -> None:
        """Store the round confirmed and every covered log's anchor receipt, in one transaction."""
        with reading(self._engine) as conn:
            row = repo.get_round(conn, round_id)
            logs = repo.round_logs(conn, round_id)
        if row is None or row.state not in repo.OPEN_STATES:  # confirmed by a process racing this one
            return
        tree = build_round([RoundLeaf(str(log.origin), int(log.size), bytes(log.root)) for log in logs])
        if tree.root != bytes(row.root):
            raise LedgerError(f"round {round_id}: its stored logs do not make its stored root")
        now = self._clock()
        with writing(self._engine) as conn, conn.begin():
            if not repo.update_open_round(conn, round_id, state="confirmed", open=None, tx_hash=mined.tx_hash,
                                          block=mined.block, block_hash=mined.block_hash, gas_used=mined.gas_used,
                                          confirmed_at=now, updated_at=now, reason=None):
                return
            for log in logs:
                receipt = AnchorReceipt(
                    log=str(log.origin), checkpoint=str(log.checkpoint), round_id=round_id, round_size=tree.size,
                    round_root=tree.root.hex(), leaf_index=int(log.leaf_index),
                    proof=tuple(p.hex() for p in tree.proof(int(log.leaf_index))), chain_id=int(row.chain_id),
                    contract=str(row.contract), tx=mined.tx_hash, block=mined.block, block_hash=mined.block_hash)
                repo.update_round_log(conn, round_id, int(log.log_id),
                                      receipt=json.dumps(receipt.to_json(), separators=(",", ":")))
        _log.info("anchoring round %d confirmed in block %d (tx %s)", round_id, mined.block, mined.tx_hash)

    def _fail(self, round_id: int, reason: str) -> None:
        with writing(self._engine) as conn, conn.begin():
            if not repo.update_open_round(conn, round_id, state="failed", open=None, reason=reason,
                                          updated_at=self._clock()):
                return
        _log.warning("anchoring round %d failed: %s", round_id, reason)

    def _note(self, reason: str) -> None:
        """Record why the open round, if any, did not move on this time."""
        with writing(self._engine) as conn, conn.begin():
            row = repo.open_round(conn)
            if row is not None:
                repo.update_open_round(conn, int(row.id), reason=reason, updated_at=self._clock())

    def _record_entries(self, lease: LeaseGuard | None = None) -> None:
        """Append the `anchor` entry of every covered log of a confirmed round that lacks one, once:
        one thread at a time here, one process at a time by the lease."""
        with self._recording:
            self._record_pending(lease)

    def _record_pending(self, lease: LeaseGuard | None) -> None:
        with reading(self._engine) as conn:
            pending = repo.unrecorded_logs(conn)
        for log in pending:
            _check(lease)
            round_id, log_id = int(log.round_id), int(log.log_id)
            with reading(self._engine) as conn:
                already = [int(e.seq) for e in repo.anchor_entries_since(conn, log_id, int(log.size))
                           if stored_header(bytes(e.header))["meta"].get("round") == round_id]
            if already:
                seq = already[0]
            else:
                seq = self._appender.append(str(log.tenant), NewEntry(
                    kind="anchor", actor=ANCHOR_ACTOR, meta={
                        "round": round_id, "size": int(log.size), "root": bytes(log.root).hex(),
                        "chain_id": int(log.chain_id), "contract": str(log.contract), "tx": str(log.tx_hash),
                        "block": int(log.block)})).seq
            with writing(self._engine) as conn, conn.begin():
                repo.update_round_log(conn, round_id, log_id, entry_seq=seq)


class AnchorScheduler:
    """Runs a round every `interval` seconds in a background thread, while this process holds the
    deployment's anchoring lease: with several server workers (or servers), one anchors at a time,
    and another takes over when the holder stops or its lease runs out."""

    def __init__(self, anchoring: Anchoring, chain: AnchorChain, interval: float) -> None:
        self._anchoring = anchoring
        self._chain = chain
        self._interval = interval
        self._holder = lease_holder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="caseledger-anchoring", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._thread.is_alive():  # a round still waits for its confirmations: keep the lease until
            return                   # the process ends; it then runs out and the next holder resumes
        try:
            self._anchoring.release_lease(self._holder)
        except Exception:  # the database may be gone at shutdown; the lease then runs out by itself
            _log.warning("could not release the anchoring lease")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._interval)

    def run_once(self) -> Round | None:
        """One turn: a round if this process holds (or takes) the lease; errors are logged, not raised."""
        try:
            if not self._anchoring.hold_lease(self._holder):
                return None
            with self._anchoring.leased(self._holder) as lease:
                return self._anchoring.run_round(self._chain, lease)
        except LedgerError as exc:
            _log.warning("anchoring round not completed: %s", exc)
        except Exception:  # the loop must outlive any one failure; the next turn resumes the round
            _log.exception("anchoring round failed unexpectedly")
        return None


def open_chain(settings: Settings, *, deploying: bool = False) -> AnchorChain:
    """The chain client the settings describe, with the publisher's key (`deploying`: no contract yet)."""
    if not settings.anchoring:
        raise ConfigurationError("anchoring is off: set CASELEDGER_ANCHOR_RPC_URL (and CASELEDGER_ANCHOR_CHAIN_ID, "
                                 "CASELEDGER_ANCHOR_CONTRACT, CASELEDGER_ANCHOR_KEY_FILE)")
    if settings.anchor_chain_id is None:
        raise ConfigurationError("anchoring needs CASELEDGER_ANCHOR_CHAIN_ID (e.g. 11155111 for Sepolia)")
    if settings.anchor_contract is None and not deploying:
        raise ConfigurationError("anchoring needs CASELEDGER_ANCHOR_CONTRACT: deploy one with `caseledger anchor "
                                 "deploy` and set its address")
    from contracts.chain import AnchorChain, ChainConfig, checksum_address

    contract = None if settings.anchor_contract is None else checksum_address(settings.anchor_contract)
    config = ChainConfig(rpc_url=str(settings.anchor_rpc_url), chain_id=settings.anchor_chain_id,
                         contract=contract, confirmations=settings.anchor_confirmations,
                         max_fee_gwei=settings.anchor_max_fee_gwei, receipt_timeout=settings.anchor_timeout)
    return AnchorChain(config, settings.read_anchor_key())


def _pid_namespace() -> str:
    """This boot and PID namespace: where a process id means one process ("" when unknown)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        return f"{boot}-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def lease_holder() -> str:
    """This process, as a lease holder: host, PID namespace, pid and a random suffix."""
    return f"{socket.gethostname()[:48]}:{_pid_namespace()}:{os.getpid()}:{os.urandom(4).hex()}"


def _died_here(holder: str) -> bool:
    """Whether `holder` (a `lease_holder`) was a process of this host's PID namespace that no longer
    exists; False whenever that cannot be known."""
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or not parts[2].isdigit() or not parts[1]:
        return False
    host, namespace, pid = parts[0], parts[1], int(parts[2])
    if host != socket.gethostname()[:48] or namespace != _pid_namespace() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False
