"""Tampering with stored entries: refused by the database, and detected by verify-log when forced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ledger.appender import NewEntry
from ledger.db import WRITE
from ledger.errors import ChainError, VerificationError
from ledger.logcheck import PARALLEL_MIN_ENTRIES_FORK, verify_stored_log
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.tree import stored_hash_count
from tests.conftest import TEST_MASTER_KEY, env_for
from verification.chain import LogVerifier

SIZE = 12


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    ledger.tenants.create("t")
    ledger.appender.append_batch("t", [
        NewEntry(kind="interaction", channel="email", case=f"case-{i % 3}", subject_ref=f"c{i % 4}",
                 content=f"message {i}".encode())
        for i in range(SIZE)
    ])
    ledger.logcheck.verify("t")
    return ledger


def _verify(ledger: Ledger) -> dict[str, object]:
    """verify-log in one pass and cut into segments (in-process): both must agree on the first bad seq."""
    try:
        single = ledger.logcheck.verify("t", workers=1)
    except ChainError as error:
        context = ledger.tenants.get("t")
        with ledger.engine.connect() as conn, pytest.raises(ChainError) as segmented:
            verify_stored_log(conn, context.log_id, context.origin, context.public_key, workers=3)
        assert segmented.value.seq == error.seq, (segmented.value.message, error.message)
        raise
    context = ledger.tenants.get("t")
    with ledger.engine.connect() as conn:
        assert verify_stored_log(conn, context.log_id, context.origin, context.public_key, workers=3) == single
    return single


def _run(ledger: Ledger, *statements: str, **params: object) -> None:
    with ledger.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        for statement in statements:
            conn.execute(text(statement), params)


def _drop_triggers(ledger: Ledger) -> None:
    if ledger.engine.dialect.name == "sqlite":
        _run(ledger, *(f"DROP TRIGGER {t}_no_{a}" for t in ("entries", "nodes", "checkpoints")
                       for a in ("update", "delete")))
    else:
        _run(ledger, *(f"DROP TRIGGER {t}_append_only ON {t}" for t in ("entries", "nodes", "checkpoints")))


def _fetch(conn: Connection, seq: int) -> dict[str, Any]:
    return dict(conn.execute(text("SELECT * FROM entries WHERE seq = :s"), {"s": seq}).mappings().one())


@pytest.mark.parametrize("statement", [
    "UPDATE entries SET kind = 'document' WHERE seq = 3",
    "UPDATE entries SET header = header WHERE seq = 3",
    "DELETE FROM entries WHERE seq = 11",
    "DELETE FROM entries",
    "UPDATE nodes SET hash = hash",
    "DELETE FROM checkpoints",
])
def test_database_refuses_update_and_delete(filled: Ledger, statement: str) -> None:
    filled.checkpoints.issue("t")
    with pytest.raises(DBAPIError, match="append-only"):
        _run(filled, statement)
    assert _verify(filled)["size"] == SIZE


@pytest.mark.postgres
def test_postgres_refuses_truncate(tmp_path: Path, pg_url: str) -> None:
    """SQLite has no TRUNCATE; on PostgreSQL it would bypass row triggers, so it has its own."""
    settings = Settings(data_dir=tmp_path, database_url=pg_url, master_key=TEST_MASTER_KEY)
    Ledger.initialise(settings)
    ledger = Ledger.open(settings)
    try:
        ledger.tenants.create("t")
        ledger.appender.append("t", NewEntry(kind="interaction"))
        for table in ("entries", "nodes", "checkpoints"):
            with pytest.raises(DBAPIError, match="append-only"):
                _run(ledger, f"TRUNCATE {table} CASCADE")
        assert ledger.logcheck.verify("t")["size"] == 1
    finally:
        ledger.close()


@pytest.mark.parametrize("depth", [100, 5000, 100_000])
def test_verify_log_on_a_hand_made_header_with_deep_meta_fails_cleanly(filled: Ledger, depth: int) -> None:
    """A header whose meta nests deeper than any parser's stack is a verification failure naming
    the entry, never a RecursionError."""
    _drop_triggers(filled)
    with filled.engine.connect() as conn:
        header = json.loads(bytes(_fetch(conn, 3)["header"]))
    header["meta"] = "@"
    forged = json.dumps(header, sort_keys=True, separators=(",", ":")).replace(
        '"@"', '{"a":' * depth + "1" + "}" * depth).encode()
    _run(filled, "UPDATE entries SET header = :h WHERE seq = 3", h=forged)
    with pytest.raises(VerificationError) as caught:
        filled.logcheck.verify("t", workers=1)
    assert caught.value.fields.get("seq") == 3 or "3" in str(caught.value)


@pytest.mark.parametrize("column", ["header", "entry_hash", "envelope"])
@pytest.mark.parametrize("seq", [0, 5, SIZE - 1])
def test_changing_any_stored_byte_is_detected(filled: Ledger, column: str, seq: int) -> None:
    _drop_triggers(filled)
    with filled.engine.connect() as conn:
        value = bytearray(_fetch(conn, seq)[column])
    for position in (0, len(value) // 2, len(value) - 1):
        tampered = bytearray(value)
        tampered[position] ^= 0x01
        _run(filled, f"UPDATE entries SET {column} = :v WHERE seq = :s", v=bytes(tampered), s=seq)
        with pytest.raises(ChainError) as caught:
            _verify(filled)
        assert caught.value.seq == seq, caught.value.message
    _run(filled, f"UPDATE entries SET {column} = :v WHERE seq = :s", v=bytes(value), s=seq)
    assert _verify(filled)["size"] == SIZE


@pytest.mark.parametrize("column,value", [("kind", "document"), ("case_id", "case-9"), ("subject", None)])
def test_changing_a_denormalised_column_is_detected(filled: Ledger, column: str, value: object) -> None:
    _drop_triggers(filled)
    _run(filled, f"UPDATE entries SET {column} = :v WHERE seq = 4", v=value)
    with pytest.raises(ChainError) as caught:
        _verify(filled)
    assert caught.value.seq == 4


def test_changing_a_stored_case_head_is_detected(filled: Ledger) -> None:
    _run(filled, "UPDATE case_heads SET head_hash = :h WHERE case_id = 'case-1'", h="ab" * 32)
    with pytest.raises(ChainError, match="case-1"):
        _verify(filled)


def test_changing_a_stored_tree_node_is_detected(filled: Ledger) -> None:
    _drop_triggers(filled)
    _run(filled, "UPDATE nodes SET hash = :h WHERE idx = 9", h=b"\x00" * 32)
    with pytest.raises(ChainError, match="node 9"):
        _verify(filled)


def test_deleting_an_entry_is_detected(filled: Ledger) -> None:
    _drop_triggers(filled)
    _run(filled, "DELETE FROM entries WHERE seq = 6")
    with pytest.raises(ChainError) as caught:
        _verify(filled)
    assert caught.value.seq == 6


def test_swapping_two_entries_is_detected(filled: Ledger) -> None:
    _drop_triggers(filled)
    with filled.engine.connect() as conn:
        a, b = _fetch(conn, 2), _fetch(conn, 7)
    columns = ("entry_id", "kind", "case_id", "subject", "key_id", "header", "entry_hash", "envelope")
    _run(filled, "UPDATE entries SET entry_id = 'x' WHERE seq = 2")
    for target, source in ((7, a), (2, b)):
        assignments = ", ".join(f"{c} = :{c}" for c in columns)
        _run(filled, f"UPDATE entries SET {assignments} WHERE seq = :seq",
             seq=target, **{c: source[c] for c in columns})
    with pytest.raises(ChainError) as caught:
        _verify(filled)
    assert caught.value.seq == 2


def test_truncating_the_tail_is_detected(filled: Ledger) -> None:
    _drop_triggers(filled)
    _run(filled, "DELETE FROM entries WHERE seq >= 9")
    with pytest.raises(ChainError) as caught:
        _verify(filled)
    assert caught.value.seq == 9


def test_a_consistent_rollback_is_detected_against_a_saved_checkpoint(filled: Ledger) -> None:
    """The attacker truncates entries, nodes and the head coherently; only the checkpoint remembers."""
    filled.checkpoints.issue("t")
    _drop_triggers(filled)
    with filled.engine.connect() as conn:
        head_hash = conn.execute(text("SELECT entry_hash FROM entries WHERE seq = 7")).scalar_one()
        head_time = conn.execute(text("SELECT header FROM entries WHERE seq = 7")).scalar_one()
    verifier = LogVerifier("caseledger.local/t")
    with filled.engine.connect() as conn:
        for seq in range(8):
            header = conn.execute(text("SELECT header FROM entries WHERE seq = :s"), {"s": seq}).scalar_one()
            verifier.add(bytes(header))
    peaks = b"".join(verifier.peaks)
    _run(filled, "DELETE FROM entries WHERE seq >= 8", "DELETE FROM nodes WHERE idx >= :n",
         "UPDATE logs SET size = 8, head_hash = :h, head_time = :t, peaks = :p",
         n=stored_hash_count(8), h=bytes(head_hash).hex(), t=json.loads(head_time)["time"], p=peaks)
    _run(filled, "DELETE FROM case_heads")
    for case, digest in verifier.case_heads.items():
        _run(filled, "INSERT INTO case_heads (log_id, case_id, head_hash) VALUES (1, :c, :h)", c=case, h=digest)
    with pytest.raises(ChainError, match="rolled back") as caught:
        _verify(filled)
    assert caught.value.seq == 8
    # and without the saved checkpoint the shortened log would look fine: the checkpoint is what catches it
    _run(filled, "DELETE FROM checkpoints")
    assert _verify(filled)["size"] == 8


def test_cli_verify_log_forks_workers_and_still_finds_the_first_bad_seq(ledger: Ledger) -> None:
    """`caseledger verify-log` runs no other thread, so a log past PARALLEL_MIN_ENTRIES_FORK is
    verified by this process and forked workers; a tamper in a worker's segment is still named."""
    size = PARALLEL_MIN_ENTRIES_FORK + 5_000
    ledger.tenants.create("t")
    for start in range(0, size, 5_000):
        ledger.appender.append_batch("t", [NewEntry(kind="interaction", case=f"k{i % 50}", content=b"x")
                                  for i in range(start, start + 5_000)])
    ledger.checkpoints.issue("t")
    command = [sys.executable, "-m", "api.cli", "verify-log", "--tenant", "t"]
    done = subprocess.run(command, env=env_for(ledger.settings), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["size"] == size
    bad = size - 7  # in the last segment, which a forked worker verifies
    _drop_triggers(ledger)
    _run(ledger, "UPDATE entries SET kind = 'document' WHERE seq = :s", s=bad)
    done = subprocess.run(command, env=env_for(ledger.settings), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"entry {bad}" in done.stderr and "Traceback" not in done.stderr
