"""Anchoring (DESIGN §6): each log's checkpoints anchored on an Ethereum contract, round by round.

`Anchoring` is the capability the `Ledger` exposes: the rounds and anchor receipts as each log sees
them, and `run_round`. The round state machine is ``ledger/anchor_rounds.py``, the deployment's one
anchoring process is chosen by the lease in ``ledger/leases.py``, the server's background task is
``ledger/anchor_scheduler.py``, and the queries are in ``ledger/repository/anchors.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ledger.anchor_rounds import AnchorRounds, Round, read_round
from ledger.appender import Appender
from ledger.checkpoints import Checkpoints, SignedCheckpoint
from ledger.connections import reading
from ledger.errors import ConfigurationError, NotFound
from ledger.leases import LEASE_TTL, AnchorLease, LeaseGuard
from ledger.proofs import Proofs
from ledger.repository import anchors as repo
from ledger.settings import Settings
from ledger.tenants import Tenants
from verification.anchor import AnchorReceipt
from verification.proofs import ConsistencyProof
from verification.receipt import Receipt, ReceiptAnchor

if TYPE_CHECKING:  # web3 is imported only where a chain is used: the CLI's other commands start fast
    from contracts.chain import AnchorChain

__all__ = ["AnchorProof", "Anchoring", "LogRound", "open_chain"]


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
        self._runner = AnchorRounds(engine, checkpoints, appender, clock)
        self._lease = AnchorLease(engine)

    # ------------------------------------------------------------------ reading

    def rounds(self, limit: int = 100) -> list[Round]:
        """The newest rounds first."""
        with reading(self._engine) as conn:
            return [Round.of(row) for row in repo.list_rounds(conn, limit)]

    def round(self, round_id: int) -> Round:
        return read_round(self._engine, round_id)

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
        """Take or renew the deployment's anchoring lease (`AnchorLease.hold`)."""
        return self._lease.hold(holder, ttl)

    def leased(self, holder: str, ttl: float = LEASE_TTL) -> AbstractContextManager[LeaseGuard]:
        """Keep the lease `holder` holds, renewed, while the block runs (`AnchorLease.held`)."""
        return self._lease.held(holder, ttl)

    def release_lease(self, holder: str) -> None:
        self._lease.release(holder)

    def run_round(self, chain: AnchorChain, lease: LeaseGuard | None = None) -> Round | None:
        """Resume the open round, or start one over every log that grew; drive it until it is
        confirmed or failed. None when no round was open and no log grew.

        Raises the chain's error when the node cannot be reached or the round cannot be confirmed
        yet; the round stays open, with the error as its reason, and the next run resumes it. With a
        `lease`, stops (leaving the round open) as soon as the lease is lost to another process.
        """
        return self._runner.run(chain, lease)


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
    from contracts.chain import AnchorChain, checksum_address
    from contracts.config import ChainConfig

    contract = None if settings.anchor_contract is None else checksum_address(settings.anchor_contract)
    config = ChainConfig(rpc_url=str(settings.anchor_rpc_url), chain_id=settings.anchor_chain_id,
                         contract=contract, confirmations=settings.anchor_confirmations,
                         max_fee_gwei=settings.anchor_max_fee_gwei, receipt_timeout=settings.anchor_timeout)
    return AnchorChain(config, settings.read_anchor_key())
