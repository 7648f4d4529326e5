"""Re-verify a stored log from the database (``caseledger verify-log``).

One streaming pass over entries and stored nodes, in lockstep: every header's hash and both chains
(`verification.entry.LogVerifier`), each envelope against its `ct`, the denormalised columns against
the header, every stored subtree hash against the one recomputed from the leaves, the log head, and
every stored checkpoint's signature and root. Memory is flat in the log size.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Connection

from ledger import repository as repo
from verification.checkpoint import NoteVerifier, key_id, open_checkpoint
from verification.entry import LogVerifier
from verification.errors import ChainError, VerificationError
from verification.merkle import EMPTY_ROOT, HASH_SIZE

__all__ = ["verify_stored_log"]


_COLUMNS = (("entry_id", "id"), ("kind", "kind"), ("case_id", "case"), ("subject", "subject"), ("key_id", "key"))


def _check_columns(row: tuple[Any, ...], header: dict[str, Any], seq: int) -> None:
    """The columns kept beside the header for queries must say what the header says."""
    if row[1:6] != (header["id"], header["kind"], header["case"], header["subject"], header["key"]):
        for (column, field), value in zip(_COLUMNS, row[1:6], strict=True):
            if value != header[field]:
                raise ChainError(f"entry {seq}: stored column {column} differs from the header", seq=seq)
    envelope = row[8]
    digest = None if envelope is None else hashlib.sha256(envelope).hexdigest()
    if digest != header["ct"]:
        raise ChainError(f"entry {seq}: stored ciphertext does not match the header's ct", seq=seq)


def verify_stored_log(conn: Connection, log_id: int, origin: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Raise `VerificationError` (usually `ChainError` with `seq`) at the first problem found."""
    head = repo.get_log(conn, log_id)
    checkpoints = repo.list_checkpoints(conn, log_id)
    verifier = NoteVerifier(origin, key_id(origin, bytes(head.public_key)), public_key)
    pending: list[tuple[int, bytes]] = []
    for row in checkpoints:
        checkpoint = open_checkpoint(row.note, verifier)
        if checkpoint.size != row.size or checkpoint.root != bytes(row.root):
            raise VerificationError(f"stored checkpoint at size {row.size} differs from its signed note")
        pending.append((checkpoint.size, checkpoint.root))
    pending.reverse()  # pop() from the end gives the smallest size first

    log = LogVerifier(origin)
    nodes = repo.iter_nodes(conn, log_id)
    expected_node = 0
    verified_checkpoints = 0

    def check_checkpoints() -> None:
        nonlocal verified_checkpoints
        while pending and pending[-1][0] == log.size:
            size, root = pending.pop()
            if (log.root if size else EMPTY_ROOT) != root:
                raise ChainError(f"checkpoint at size {size} does not match the entries", seq=size - 1)
            verified_checkpoints += 1

    check_checkpoints()
    for row in repo.iter_entries(conn, log_id):
        seq = log.size
        if row[0] != seq:
            raise ChainError(f"entry {seq} is missing (next stored entry is {row[0]})", seq=seq)
        header = bytes(row[6])
        completed = log.add(header, bytes(row[7]))
        _check_columns(row, log.header, seq)
        for computed in completed:
            stored = next(nodes, None)
            if stored is None or stored[0] != expected_node:
                raise ChainError(f"entry {seq}: stored tree node {expected_node} is missing", seq=seq)
            if bytes(stored[1]) != computed:
                raise ChainError(f"entry {seq}: stored tree node {expected_node} is wrong", seq=seq)
            expected_node += 1
        check_checkpoints()
    if next(nodes, None) is not None:
        raise ChainError(f"stored tree has nodes beyond the {log.size} entries", seq=log.size)
    if pending:
        raise ChainError(
            f"log rolled back: a checkpoint was signed at size {pending[-1][0]}, "
            f"but only {log.size} entries remain",
            seq=log.size,
        )
    peaks = bytes(head.peaks)
    if head.size != log.size or head.head_hash != log.last_hash or len(peaks) % HASH_SIZE:
        raise ChainError(
            f"log head says {head.size} entries ending in {head.head_hash[:16]}…, "
            f"the entries end at {log.size}",
            seq=min(head.size, log.size),
        )
    return {"log": origin, "size": log.size, "root": log.root.hex(), "nodes": expected_node,
            "checkpoints": verified_checkpoints, "ok": True}
