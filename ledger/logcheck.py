"""Re-verify a stored log from the database (``caseledger verify-log``).

One streaming pass over entries and stored nodes, in lockstep: every header's hash and both chains
(`verification.entry.LogVerifier`), each envelope against its `ct`, the denormalised columns against
the header, every stored subtree hash against the one recomputed from the leaves, the log head, and
every stored checkpoint's signature and root. Memory is flat in the log size.

A large log is cut into segments verified in parallel: this process takes the first (a little
larger, as it need not start up) and spawned workers the others. Each segment starts from the tree
peaks stored at its first entry (which the segment before verifies) and leaves open what it cannot
know — the `prev` of its first entry and the first `case_prev` of each case — for the merge to check
against the segments before it, so the result is exactly that of one pass.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ledger.connections import snapshot
from ledger.db import make_engine
from ledger.reads import ct_names_envelope
from ledger.repository import checkpoints as checkpoint_repo
from ledger.repository import entries as entry_repo
from ledger.repository import nodes as node_repo
from ledger.repository import tenants as tenant_repo
from ledger.tenants import Tenants
from ledger.tree import stored_hash_count, stored_hash_index, tree_hash_indexes
from verification.chain import LogVerifier
from verification.checkpoint import NoteVerifier, key_id, open_checkpoint
from verification.compact import CompactRange
from verification.entry import ZERO_HASH
from verification.errors import ChainError, VerificationError
from verification.merkle import EMPTY_ROOT

__all__ = ["PARALLEL_MIN_ENTRIES", "PARALLEL_MIN_ENTRIES_FORK", "LogCheck", "verify_stored_log"]

#: below this many entries one process verifies the log: a spawned worker takes some 0.6 s to start
PARALLEL_MIN_ENTRIES = 200_000
#: the same when workers can be forked (a few milliseconds each)
PARALLEL_MIN_ENTRIES_FORK = 20_000
#: about how many entries one process verifies while a spawned / forked worker starts
_WORKER_START_ENTRIES = {"spawn": 40_000, "fork": 1_000}


def _start_method() -> str:
    """fork where it is safe — this process runs no other thread that a fork could freeze mid-lock
    (the child never touches the parent's connections: it opens its own) — else spawn."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"
_COLUMNS = (("entry_id", "id"), ("kind", "kind"), ("case_id", "case"), ("subject", "subject"), ("key_id", "key"))


@dataclass
class _Segment:
    start: int
    end: int
    first_prev: str | None = None
    first_time: str = ""
    last_hash: str | None = None
    last_time: str = ""
    case_first: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    case_last: dict[str, str] = field(default_factory=dict)
    checkpoints: int = 0
    nodes: int = 0
    peaks: list[bytes] = field(default_factory=list)


def _check_columns(row: tuple[Any, ...], header: dict[str, Any], seq: int) -> None:
    """The columns kept beside the header for queries must say what the header says."""
    if row[1:6] != (header["id"], header["kind"], header["case"], header["subject"], header["key"]):
        for (column, name), value in zip(_COLUMNS, row[1:6], strict=True):
            if value != header[name]:
                raise ChainError(f"entry {seq}: stored column {column} differs from the header", seq=seq)
    envelope = row[8]
    if not ct_names_envelope(header):  # a document's ct names its blob (`verify-log --blobs` is to come)
        if envelope is None or header["ct"] is None:
            raise ChainError(f"entry {seq}: a document without its envelope or ct", seq=seq)
        return
    digest = None if envelope is None else hashlib.sha256(envelope).hexdigest()
    if digest != header["ct"]:
        raise ChainError(f"entry {seq}: stored ciphertext does not match the header's ct", seq=seq)


def _peaks_at(conn: Connection, log_id: int, size: int) -> list[bytes]:
    """The stored complete-subtree hashes that make up the tree of `size` leaves, largest first."""
    indexes = tree_hash_indexes(size)  # the peaks are what the tree hash of `size` reads
    found = node_repo.read_nodes(conn, log_id, indexes)
    if len(found) != len(indexes):
        raise ChainError(f"stored tree lacks the peaks at size {size}", seq=size)
    return [found[index] for index in indexes]


def _verify_segment(conn: Connection, log_id: int, origin: str, start: int, end: int,
                    roots: dict[int, bytes]) -> _Segment:
    """Verify entries [start, end) and their stored nodes; check the signed roots at sizes inside.

    A page of entries at a time, with the stored nodes those entries complete (one range query):
    each leaf's hashes go to consecutive storage indexes, so a page's nodes are one index range.
    """
    first = start == 0
    log = LogVerifier(origin, start=start, peaks=[] if first else _peaks_at(conn, log_id, start),
                      last_hash=ZERO_HASH if first else None, open_cases=not first)
    segment = _Segment(start, end)
    add, check_columns, get_root = log.add, _check_columns, roots.get
    expected_node = stored_hash_index(0, start)
    seq = start
    for rows in entry_repo.entry_pages(conn, log_id, start=start, stop=end):
        nodes = node_repo.node_range(conn, log_id, expected_node, stored_hash_index(0, rows[-1][0] + 1))
        have, k = len(nodes), 0
        for row in rows:
            if row[0] != seq:
                raise ChainError(f"entry {seq} is missing (next stored entry is {row[0]})", seq=seq)
            completed = add(row[6], row[7])
            header = log.header
            check_columns(row, header, seq)
            if seq == start:
                segment.first_time = header["time"]
            for computed in completed:
                if k == have or nodes[k][0] != expected_node:
                    raise ChainError(f"entry {seq}: stored tree node {expected_node} is missing", seq=seq)
                if nodes[k][1] != computed:
                    raise ChainError(f"entry {seq}: stored tree node {expected_node} is wrong", seq=seq)
                k += 1
                expected_node += 1
            seq += 1
            root = get_root(seq)
            if root is not None:
                if log.root != root:
                    raise ChainError(f"checkpoint at size {seq} does not match the entries", seq=seq - 1)
                segment.checkpoints += 1
    if seq != end:
        raise ChainError(f"entry {seq} is missing", seq=seq)
    segment.first_prev = ZERO_HASH if first else log.first_prev
    segment.last_hash, segment.last_time = log.last_hash, log.last_time
    segment.case_first, segment.case_last = log.case_first, log.case_heads
    segment.nodes = expected_node - stored_hash_index(0, start)
    segment.peaks = log.peaks
    return segment


def _segment_worker(url: str, log_id: int, origin: str, start: int, end: int, roots: dict[int, bytes]) -> _Segment:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _verify_segment(conn, log_id, origin, start, end, roots)
    finally:
        engine.dispose()


def _merge(segments: list[_Segment]) -> tuple[int, int, dict[str, str]]:
    """Check what each segment left open against the segments before it."""
    heads: dict[str, str] = {}
    last_hash, last_time = ZERO_HASH, ""
    for segment in segments:
        if segment.start == segment.end:
            continue
        if segment.first_prev != last_hash:
            raise ChainError(f"entry {segment.start}: prev does not link to entry {segment.start - 1}",
                             seq=segment.start)
        if segment.first_time < last_time:
            raise ChainError(f"entry {segment.start}: time goes backwards", seq=segment.start)
        for case, (seq, case_prev) in sorted(segment.case_first.items(), key=lambda item: item[1][0]):
            if case_prev != heads.get(case):
                raise ChainError(f"entry {seq}: case_prev does not link to the case's previous entry", seq=seq)
        heads |= segment.case_last
        assert segment.last_hash is not None
        last_hash, last_time = segment.last_hash, segment.last_time
    return sum(s.checkpoints for s in segments), sum(s.nodes for s in segments), heads


def _signed_roots(conn: Connection, log_id: int, origin: str, public_key: Ed25519PublicKey,
                  public_bytes: bytes) -> dict[int, bytes]:
    verifier = NoteVerifier(origin, key_id(origin, public_bytes), public_key)
    roots: dict[int, bytes] = {}
    for row in checkpoint_repo.list_checkpoints(conn, log_id):
        checkpoint = open_checkpoint(row.note, verifier)
        if checkpoint.size != row.size or checkpoint.root != bytes(row.root):
            raise VerificationError(f"stored checkpoint at size {row.size} differs from its signed note")
        roots[checkpoint.size] = checkpoint.root
    return roots


def verify_stored_log(conn: Connection, log_id: int, origin: str, public_key: Ed25519PublicKey,
                      *, url: str | None = None, workers: int | None = None) -> dict[str, Any]:
    """Raise `VerificationError` (usually `ChainError` with `seq`) at the first problem found.

    `url` (with credentials) lets large logs be verified by `workers` processes in parallel.
    """
    head = tenant_repo.get_log(conn, log_id)
    size = entry_repo.count_entries(conn, log_id)
    roots = _signed_roots(conn, log_id, origin, public_key, bytes(head.public_key))
    rolled_back = [s for s in roots if s > size]
    if rolled_back:
        raise ChainError(f"log rolled back: a checkpoint was signed at size {max(rolled_back)}, "
                         f"but only {size} entries remain", seq=size)
    if roots.get(0, EMPTY_ROOT) != EMPTY_ROOT:
        raise ChainError("checkpoint at size 0 is not the empty root", seq=0)
    method = _start_method()
    if workers is None:
        threshold = PARALLEL_MIN_ENTRIES_FORK if method == "fork" else PARALLEL_MIN_ENTRIES
        workers = min(os.cpu_count() or 1, 4) if size >= threshold else 1
    if workers > 1 and url is not None:
        # this process verifies the first segment while the others start, so it takes a larger one
        # (by less on a small log, so that a few workers forced on one still have work to do)
        head_start = min(_WORKER_START_ENTRIES[method], size // (4 * workers))
        first = (size + (workers - 1) * head_start) // workers
        bounds = [0, *(first + (size - first) * i // (workers - 1) for i in range(workers))]
        context = multiprocessing.get_context(method)
        with ProcessPoolExecutor(workers - 1, mp_context=context) as pool:
            futures = [pool.submit(_segment_worker, url, log_id, origin, a, b, roots)
                       for a, b in itertools.pairwise(bounds[1:])]
            segments = [_verify_segment(conn, log_id, origin, 0, first, roots)]
            segments += [future.result() for future in futures]
    else:
        bounds = [size * i // workers for i in range(workers + 1)]
        segments = [_verify_segment(conn, log_id, origin, a, b, roots)
                    for a, b in itertools.pairwise(bounds)]
    checkpoints, nodes, heads = _merge(segments)
    stored_heads = entry_repo.all_case_heads(conn, log_id)
    if stored_heads != heads:
        wrong = sorted(set(stored_heads.items()) ^ set(heads.items()))[0][0]
        raise ChainError(f"the stored head of case {wrong!r} is not the case's last entry", seq=size, case=wrong)
    if node_repo.has_nodes_from(conn, log_id, stored_hash_count(size)):
        raise ChainError(f"stored tree has nodes beyond the {size} entries", seq=size)
    last_hash = next((s.last_hash for s in reversed(segments) if s.start < s.end), ZERO_HASH)
    peaks = CompactRange(size, segments[-1].peaks)
    if head.size != size or head.head_hash != last_hash or bytes(head.peaks) != peaks.to_bytes():
        raise ChainError(
            f"log head says {head.size} entries ending in {head.head_hash[:16]}…, the entries end at {size}",
            seq=min(head.size, size),
        )
    root = peaks.root()
    checkpoints += 0 in roots
    return {"log": origin, "size": size, "root": root.hex(), "nodes": nodes, "checkpoints": checkpoints,
            "ok": True}


class LogCheck:
    """`verify-log` for a tenant: the stored log re-verified from one database snapshot."""

    def __init__(self, engine: Engine, tenants: Tenants) -> None:
        self._engine = engine
        self._tenants = tenants

    def verify(self, tenant: str, *, workers: int | None = None) -> dict[str, Any]:
        """Raise `VerificationError` naming the first bad seq; large logs use several processes
        (`workers`, default: by size and cores)."""
        context = self._tenants.get(tenant)
        with snapshot(self._engine) as conn:
            return verify_stored_log(conn, context.log_id, context.origin, context.public_key,
                                     url=self._engine.url.render_as_string(hide_password=False), workers=workers)
