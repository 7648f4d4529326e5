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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ledger.appender import ANCHOR_ACTOR, Appender, NewEntry
from ledger.checkpoints import Checkpoints
from ledger.connections import reading, writing
from ledger.errors import LedgerError, NotFound
from ledger.leases import LeaseGuard, check_lease
from ledger.reads import stored_header
from ledger.repository import anchors as repo
from verification.anchor import AnchorReceipt, RoundLeaf, build_round

if TYPE_CHECKING:  # web3 is imported only where a chain is used: the CLI's other commands start fast
    from contracts.chain import AnchorChain, StoredRound
    from contracts.receipts import Mined
    from contracts.transactions import SignedTx

__all__ = ["AnchorRounds", "Round", "read_round"]

_log = logging.getLogger("caseledger.anchoring")

#: a run tries at most this many round ids taken on the contract by others before it gives up
_MAX_TAKEN_IDS = 16


class _RoundIdTaken(LedgerError):
    """The contract holds another root under this round id (not ours): the round fails, the next id is tried."""


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


def read_round(engine: Engine, round_id: int) -> Round:
    """Round `round_id` with the origins of the logs it covers; `NotFound` if there is none."""
    with reading(engine) as conn:
        row = repo.get_round(conn, round_id)
        if row is None:
            raise NotFound(f"no anchoring round {round_id}")
        logs = tuple(str(log.origin) for log in repo.round_logs(conn, round_id))
    return Round.of(row, logs)


class AnchorRounds:
    """The round state machine: opens, drives, confirms or fails rounds, and records `anchor` entries."""

    def __init__(self, engine: Engine, checkpoints: Checkpoints, appender: Appender,
                 clock: Callable[[], str]) -> None:
        self._engine = engine
        self._checkpoints = checkpoints
        self._appender = appender
        self._clock = clock
        #: recording `anchor` entries checks, then appends: one thread at a time (processes: the lease)
        self._recording = threading.Lock()

    def run(self, chain: AnchorChain, lease: LeaseGuard | None = None) -> Round | None:
        """`Anchoring.run_round`: one run, from the open round (or a new one) to confirmed or failed."""
        from contracts.errors import Reverted

        try:
            chain.check_chain()  # a node of another chain: refused before a round is opened for it
            self._record_entries(lease)
            for _ in range(_MAX_TAKEN_IDS):
                row = self.open_round(chain)
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
        return read_round(self._engine, round_id)

    def open_round(self, chain: AnchorChain) -> Any:
        """The open round's row (one for another chain or contract is failed first), or a new round
        over every log that grew; None when none grew."""
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
        from contracts.errors import Reverted
        from contracts.transactions import SignedTx

        round_id, root, leaves = int(row.id), bytes(row.root), int(row.leaves)
        try:
            stored = chain.round(round_id)
            if stored is None:
                if row.state == "pending":
                    check_lease(lease)
                    signed = chain.sign_anchor(round_id, root, leaves)
                    self.submitted(round_id, signed)
                else:
                    signed = SignedTx(str(row.tx_hash), bytes(row.raw_tx), int(row.nonce), int(row.max_fee),
                                      int(row.priority_fee))
                mined = chain.confirm(signed, on_replace=lambda new: self.submitted(round_id, new))
                check_lease(lease)
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
        check_lease(lease)
        self._confirm(round_id, mined)

    def submitted(self, round_id: int, signed: SignedTx) -> None:
        """Store the round's transaction (signed, not yet sent): a restart sends this one again."""
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
            check_lease(lease)
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
