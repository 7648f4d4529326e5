"""Checkpoints: issued on demand, once per tree size, and receipts built on them.

Every issued checkpoint is kept: it is the yardstick `verify-log` measures a rolled-back log
against. Issuance is race-free: concurrent requests at a new size, in any number of processes,
store one row and all return it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import Engine

from ledger.connections import reading, writing
from ledger.errors import NotFound
from ledger.proofs import Proofs
from ledger.reads import stored_header
from ledger.repository import checkpoints as repo
from ledger.repository.entries import read_entry
from ledger.repository.tenants import get_log
from ledger.tenants import TenantContext, Tenants
from verification.compact import CompactRange
from verification.receipt import Receipt

__all__ = ["Checkpoints", "SignedCheckpoint"]


class SignedCheckpoint(NamedTuple):
    size: int
    root: bytes
    #: the C2SP signed note
    note: str


class Checkpoints:
    def __init__(self, engine: Engine, tenants: Tenants, proofs: Proofs, clock: Callable[[], str]) -> None:
        self._engine = engine
        self._tenants = tenants
        self._proofs = proofs
        self._clock = clock

    def issue(self, tenant: str) -> str:
        """The signed checkpoint of the current tree (C2SP signed note), kept once per size."""
        return self.latest(tenant).note

    def latest(self, tenant: str) -> SignedCheckpoint:
        """`issue`, with the size and root the note signs."""
        return self._issue(self._tenants.get(tenant))

    def _issue(self, context: TenantContext) -> SignedCheckpoint:
        with reading(self._engine) as conn:
            head = get_log(conn, context.log_id)
            stored = repo.get_checkpoint(conn, context.log_id, head.size)
        if stored is not None:
            return SignedCheckpoint(int(head.size), bytes(stored.root), str(stored.note))
        root = CompactRange.from_bytes(head.size, bytes(head.peaks)).root()
        note = self._tenants.sign(context, head.size, root)
        with writing(self._engine) as conn, conn.begin():
            note = repo.insert_checkpoint(conn, context.log_id, head.size, root, note, self._clock())
        return SignedCheckpoint(int(head.size), root, note)

    def history(self, tenant: str) -> list[tuple[int, str]]:
        """Every checkpoint issued, as (size, signed note), oldest first."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            return [(int(row.size), str(row.note)) for row in repo.list_checkpoints(conn, context.log_id)]

    def receipt(self, tenant: str, seq: int, at: SignedCheckpoint | None = None) -> Receipt:
        """A self-contained proof that entry `seq` is in the log: header, inclusion proof, checkpoint
        (the current one, or `at`, a checkpoint of this log after the entry)."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            row = read_entry(conn, context.log_id, seq)
        if row is None:
            raise NotFound(f"no entry {seq}", seq=seq)
        size, _, note = at or self._issue(context)
        proof = self._proofs.inclusion(tenant, seq, size)
        return Receipt(context.origin, seq, bytes(row.entry_hash).hex(), stored_header(bytes(row.header)),
                       size, proof.proof, note, context.vkey)
