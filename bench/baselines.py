"""Baselines measured in the same run: raw sqlite3 executemany and pymerkle's SqliteTree.

Both write rows shaped like ours (a ~490-byte canonical JSON header, a 32-byte hash, a ~360-byte
envelope), in WAL mode with synchronous=FULL, 1000 rows per transaction, with a fresh temporary
database each.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.common import MASTER_KEY, Context, Result, batches, elapsed, percentile
from ledger.service import Ledger
from ledger.settings import Settings

__all__ = ["bench_pymerkle", "bench_raw_sqlite"]

BATCH = 1000
_ENVELOPE_SIZE = 361  # 1 version + 12 nonce + 32 salt + ~300 content + 16 tag


@contextmanager
def _tmpdir(ctx: Context, name: str) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix=f"caseledger-bench-{name}-", dir=ctx.tmp_root))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class _Rows:
    """Rows the same shape and size as the ledger's `entries` rows (contents are random)."""

    def __init__(self, seed: int) -> None:
        self._rnd = random.Random(seed)
        self._prev = "0" * 64
        self.seq = 0

    def _hex(self) -> str:
        return self._rnd.randbytes(32).hex()

    def row(self) -> tuple[Any, ...]:
        rnd = self._rnd
        entry_id = str(uuid.UUID(bytes=rnd.randbytes(16), version=4))
        case = f"CASE-{rnd.randrange(10_000):06d}"
        subject = "sub_" + rnd.randbytes(12).hex()
        key_id = "dk_" + rnd.randbytes(10).hex()
        header = json.dumps({
            "v": 1, "log": "caseledger.local/bench", "seq": self.seq, "id": entry_id,
            "time": "2025-01-01T00:00:00.000000Z", "kind": "interaction", "actor": "user:agent-001", "case": case,
            "case_prev": self._hex(), "channel": "email", "subject": subject, "key": key_id, "ct": self._hex(),
            "commit": None, "meta": {"direction": "inbound"}, "prev": self._prev,
        }, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(b"\x00" + header).digest()
        self._prev = digest.hex()
        row = (1, self.seq, entry_id, "interaction", case, subject, key_id, header, digest,
               rnd.randbytes(_ENVELOPE_SIZE))
        self.seq += 1
        return row

    def batch(self, n: int) -> list[tuple[Any, ...]]:
        return [self.row() for _ in range(n)]


def _entries_ddl(ctx: Context) -> list[str]:
    """CREATE statements of the ledger's `entries` table and its indexes, from a freshly migrated
    SQLite database: the raw baseline has exactly the columns and indexes our appends maintain."""
    with _tmpdir(ctx, "schema") as directory:
        settings = Settings(data_dir=directory / "data", database_url=f"sqlite:///{directory / 'schema.db'}",
                            master_key=SecretStr(MASTER_KEY))
        Ledger.initialise(settings)
        conn = sqlite3.connect(directory / "schema.db")
        try:
            rows = conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'entries' AND type IN ('table', 'index') "
                "AND sql IS NOT NULL ORDER BY type DESC"  # the table before its indexes
            ).fetchall()
        finally:
            conn.close()
    return [str(row[0]) for row in rows]


def bench_raw_sqlite(ctx: Context) -> None:
    """(a) sqlite3 executemany into a table created by the same DDL as `entries` (columns and indexes)."""
    n_batches = batches(ctx)
    with _tmpdir(ctx, "raw") as directory:
        conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            ddl = _entries_ddl(ctx)
            for statement in ddl:
                conn.execute(statement)
            rows = _Rows(seed=11)
            insert = ("INSERT INTO entries (log_id, seq, entry_id, kind, case_id, subject, key_id, header, entry_hash, "
                      "envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

            def write(batch: list[tuple[Any, ...]]) -> None:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(insert, batch)
                conn.execute("COMMIT")

            write(rows.batch(BATCH))  # warm-up, untimed
            times: list[float] = []
            for _ in range(n_batches):
                batch = rows.batch(BATCH)
                start = time.perf_counter()
                write(batch)
                times.append(elapsed(start))
            sample = rows.row()
            sizes = f"header {len(sample[7])} B, hash {len(sample[8])} B, envelope {len(sample[9])} B"
        finally:
            conn.close()
    ordered = sorted(times)
    ctx.add(Result(
        "raw_sqlite", "sqlite", "executemany (1000/txn, WAL, synchronous=FULL)", n_batches * BATCH / sum(times),
        "rows/s", size=n_batches * BATCH,
        notes=f"{sizes}; DDL of entries from the migration ({len(ddl) - 1} indexes); "
              f"per txn p50 {percentile(ordered, 50) * 1000:.1f} ms",
        extra={"batch_seconds": times},
    ))


def bench_pymerkle(ctx: Context) -> None:
    """(b) pymerkle 7 SqliteTree.append_entries (its bulk path: one transaction, executemany) per 1000."""
    from pymerkle import SqliteTree

    n_batches = batches(ctx)
    with _tmpdir(ctx, "pymerkle") as directory:
        tree = SqliteTree(str(directory / "pymerkle.db"))
        try:
            # pymerkle defaults to the rollback journal; WAL + FULL to match ours
            tree.con.execute("PRAGMA journal_mode=WAL")
            tree.con.execute("PRAGMA synchronous=FULL")
            rows = _Rows(seed=12)
            tree.append_entries([row[7] for row in rows.batch(BATCH)])  # warm-up, untimed
            times: list[float] = []
            for _ in range(n_batches):
                data = [row[7] for row in rows.batch(BATCH)]
                start = time.perf_counter()
                tree.append_entries(data)
                times.append(elapsed(start))
            size = tree.get_size()
        finally:
            tree.close()
    expected = (n_batches + 1) * BATCH
    if size != expected:
        raise RuntimeError(f"pymerkle tree has {size} leaves, expected {expected}")
    ordered = sorted(times)
    ctx.add(Result(
        "pymerkle", "sqlite", "SqliteTree.append_entries (1000/call, WAL, FULL)", n_batches * BATCH / sum(times),
        "entries/s", size=n_batches * BATCH,
        notes=f"entries = header-sized bytes (~560 B), leaf hash only, no tree nodes stored; "
              f"per call p50 {percentile(ordered, 50) * 1000:.1f} ms",
        extra={"batch_seconds": times, "pymerkle_version": _version()},
    ))


def _version() -> str:
    import pymerkle

    return str(getattr(pymerkle, "__version__", "?"))

