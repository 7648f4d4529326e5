"""The engine through its Python API, on SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ledger.appender import NewEntry
from ledger.connections import writing
from ledger.errors import Conflict, DecryptionError, InvalidInput, NotFound, TooLarge
from ledger.repository.entries import lock_log
from ledger.service import Ledger
from ledger.settings import Settings
from tests.conftest import TEST_MASTER_KEY
from verification.checkpoint import open_checkpoint, parse_verifier_key
from verification.compact import verify_range
from verification.documents import verify_document
from verification.entry import ZERO_HASH, canonical_json, parse_header
from verification.errors import ProofError, VerificationError
from verification.merkle import leaf_hash, verify_consistency, verify_inclusion
from verification.receipt import verify_receipt
from verification.trust import Trust


def _interaction(case: str | None = "C-1", ref: str | None = "cust-42", body: str = "hello") -> NewEntry:
    return NewEntry(kind="interaction", channel="chat", case=case, subject_ref=ref,
                    actor="user:agent-7", content=body.encode(), meta={"direction": "inbound"})


def test_create_tenant_and_show(ledger: Ledger) -> None:
    info = ledger.tenants.create("acme-bank")
    assert info.origin == "caseledger.local/acme-bank"
    verifier = parse_verifier_key(info.vkey)
    assert verifier.name == info.origin
    shown = ledger.tenants.info("acme-bank")
    assert shown.size == 0 and shown.root == hashlib.sha256(b"").hexdigest()
    with pytest.raises(Conflict):
        ledger.tenants.create("acme-bank")
    with pytest.raises(InvalidInput):
        ledger.tenants.create("Bad Name")
    with pytest.raises(NotFound):
        ledger.tenants.info("nobody")


def test_append_builds_both_chains_and_the_tree(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    receipts = [ledger.appender.append("t", _interaction(case=case)) for case in ("A", "B")]
    receipts += ledger.appender.append_batch("t", [_interaction(case="A"), _interaction(case=None)])
    assert [r.seq for r in receipts] == [0, 1, 2, 3]
    headers = [r.header for r in receipts]
    assert headers[0]["prev"] == ZERO_HASH
    for before, after in itertools.pairwise(receipts):
        assert after.header["prev"] == before.entry_hash
    assert headers[0]["case_prev"] is None and headers[1]["case_prev"] is None
    assert headers[2]["case_prev"] == receipts[0].entry_hash
    assert headers[3]["case_prev"] is None
    times = [h["time"] for h in headers]
    assert times == sorted(times)
    for receipt in receipts:
        raw = canonical_json(receipt.header)
        assert receipt.header_bytes == raw
        assert json.loads(receipt.as_json()) == receipt.as_dict()
        assert json.loads(receipt._replace(header_bytes=b"").as_json()) == receipt.as_dict()
        assert parse_header(raw) == receipt.header
        assert leaf_hash(b"" + raw).hex() == receipt.entry_hash
    # the header never holds the customer reference or the content
    for header in headers:
        blob = json.dumps(header)
        assert "cust-42" not in blob and "hello" not in blob
        assert header["subject"].startswith("sub_")
    info = ledger.tenants.info("t")
    assert info.size == 4
    assert ledger.logcheck.verify("t")["size"] == 4


def test_read_decrypts_and_binds_the_envelope(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    receipt = ledger.appender.append("t", _interaction(body="my account number is 1234"))
    entry = ledger.reads.entry("t", receipt.seq)
    assert entry.content == b"my account number is 1234"
    assert entry.header == receipt.header
    with pytest.raises(NotFound):
        ledger.reads.entry("t", 99)


def test_a_commitment_is_salted_and_checkable(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    receipt = ledger.appender.append("t", NewEntry(kind="interaction", content=b"%PDF-1.7 statement", subject_ref="c"))
    entry = ledger.reads.entry("t", receipt.seq)
    assert entry.salt is not None and len(entry.salt) == 32
    assert receipt.header["commit"] == hashlib.sha256(entry.salt + b"%PDF-1.7 statement").hexdigest()
    assert receipt.header["commit"] != hashlib.sha256(b"%PDF-1.7 statement").hexdigest()


def test_every_entry_with_content_carries_a_commitment_and_one_without_none(ledger: Ledger) -> None:
    """DESIGN §2 (issue 11 item 1): `commit` on every entry with content, by default."""
    ledger.tenants.create("t")
    with_content = ledger.appender.append_batch("t", [_interaction(), NewEntry(kind="access", content=b"{}")])
    for appended in with_content:
        entry = ledger.reads.entry("t", appended.seq)
        assert entry.salt is not None and isinstance(entry.content, bytes)
        assert appended.header["commit"] == hashlib.sha256(entry.salt + entry.content).hexdigest()
    without = ledger.appender.append("t", NewEntry(kind="key", meta={"rotated": True}))
    assert without.header["commit"] is None


def test_subjects_map_to_random_handles_and_can_be_forgotten(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.tenants.create("u")
    handle = ledger.subjects.handle("t", "customer-1")
    assert handle == ledger.subjects.handle("t", "customer-1")
    assert handle != ledger.subjects.handle("t", "customer-2")
    assert ledger.subjects.handle("u", "customer-1") != handle
    assert ledger.subjects.forget("t", "customer-1") == handle
    with pytest.raises(NotFound):
        ledger.subjects.handle("t", "customer-1", create=False)
    assert ledger.subjects.handle("t", "customer-1") != handle


def test_rotation_keeps_old_entries_readable(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    first = ledger.appender.append("t", _interaction(body="before"))
    handle = first.header["subject"]
    new_key = ledger.data_keys.rotate("t", handle)
    second = ledger.appender.append("t", _interaction(body="after"))
    assert second.header["key"] == new_key != first.header["key"]
    assert ledger.reads.entry("t", 0).content == b"before"
    assert ledger.reads.entry("t", 1).content == b"after"


def test_destroying_keys_erases_content_but_proofs_verify(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    kept = ledger.appender.append("t", _interaction(ref="keep", body="kept"))
    gone = ledger.appender.append("t", _interaction(ref="forget", body="secret"))
    ledger.checkpoints.issue("t")
    destroyed = ledger.data_keys.destroy("t", gone.header["subject"])
    assert destroyed == [gone.header["key"]]
    erased = ledger.reads.entry("t", gone.seq)
    assert erased.erased and erased.content is None
    # a fresh process with no key cache cannot read it either
    again = Ledger.open(ledger.settings)
    try:
        assert again.reads.entry("t", gone.seq).erased
        assert again.reads.entry("t", kept.seq).content == b"kept"
    finally:
        again.close()
    assert ledger.logcheck.verify("t")["checkpoints"] == 1
    verify_receipt(ledger.checkpoints.receipt("t", gone.seq).to_json(), Trust.of(ledger.tenants.info("t").vkey))


def test_envelope_moved_to_another_entry_fails_to_decrypt(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.appender.append("t", _interaction(body="one"))
    ledger.appender.append("t", _interaction(body="two"))
    with ledger.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, envelope FROM entries ORDER BY seq")).all()
    from ledger.envelope import content_aad, open_envelope

    context = ledger.tenants.get("t")
    key = ledger.data_keys.get(context, ledger.reads.entry("t", 0).header["key"])
    assert key is not None
    header1 = ledger.reads.entry("t", 1).header
    with pytest.raises(DecryptionError):
        open_envelope(key, bytes(rows[0].envelope), content_aad(context.origin, header1["id"], header1["key"]))


def test_checkpoint_is_signed_and_matches_the_tree(ledger: Ledger) -> None:
    info = ledger.tenants.create("t")
    for i in range(5):
        ledger.appender.append("t", _interaction(body=str(i)))
    note = ledger.checkpoints.issue("t")
    checkpoint = open_checkpoint(note, parse_verifier_key(info.vkey))
    assert checkpoint.size == 5
    assert checkpoint.root.hex() == ledger.tenants.info("t").root


def test_proofs_verify_with_the_pure_verifier(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.appender.append_batch("t", [_interaction(body=str(i)) for i in range(37)])
    for seq in (0, 1, 17, 36):
        for size in (seq + 1, 20 if seq < 20 else 37, 37):
            proof = ledger.proofs.inclusion("t", seq, size, signed=True).to_json()
            verify_inclusion(seq, size, bytes.fromhex(proof["leaf_hash"]),
                             [bytes.fromhex(p) for p in proof["proof"]], bytes.fromhex(proof["root"]))
            assert verify_document(proof, Trust.of(ledger.tenants.info("t").vkey))["ok"]
    for first, second in ((1, 37), (8, 16), (13, 29), (37, 37)):
        proof = ledger.proofs.consistency("t", first, second).to_json()
        verify_consistency(first, second, [bytes.fromhex(p) for p in proof["proof"]],
                           bytes.fromhex(proof["first_root"]), bytes.fromhex(proof["second_root"]))
    assert ledger.proofs.consistency("t", 5, 37).second_root == ledger.tenants.info("t").root
    for start, end, size in ((0, 37, 37), (5, 9, 37), (36, 37, 37), (3, 4, 10)):
        proof = ledger.proofs.range("t", start, end, size).to_json()
        verify_range(start, end, size, [bytes.fromhex(h) for h in proof["entry_hashes"]],
                     [bytes.fromhex(h) for h in proof["left"]], [bytes.fromhex(h) for h in proof["right"]],
                     bytes.fromhex(proof["root"]))
        assert proof["entry_hashes"] == [ledger.reads.entry("t", s).entry_hash for s in range(start, end)]


def test_proof_requests_beyond_the_log_are_refused(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.appender.append("t", _interaction())
    with pytest.raises(NotFound):
        ledger.proofs.inclusion("t", 0, 5)
    with pytest.raises(NotFound):
        ledger.proofs.inclusion("t", 1)
    with pytest.raises(NotFound):
        ledger.proofs.consistency("t", 1, 2)
    with pytest.raises(InvalidInput):
        ledger.proofs.range("t", 1, 1)


def test_receipt_verifies_offline_and_detects_tampering(ledger: Ledger) -> None:
    info = ledger.tenants.create("t")
    for i in range(6):
        ledger.appender.append("t", _interaction(body=str(i)))
    receipt = ledger.checkpoints.receipt("t", 3).to_json()
    result = verify_receipt(receipt, Trust.of(info.vkey))
    assert result["ok"] and result["key_trusted"] and result["tree_size"] == 6
    forged = json.loads(json.dumps(receipt))
    forged["header"]["actor"] = "user:someone-else"
    with pytest.raises(ProofError):
        verify_receipt(forged, Trust.of(info.vkey))
    other = ledger.tenants.create("other")
    with pytest.raises(VerificationError, match="not trusted"):
        verify_receipt(receipt, Trust.of(other.vkey))


def test_bad_input_is_refused_and_writes_nothing(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    with pytest.raises(NotFound):
        ledger.appender.append("nobody", _interaction())
    with pytest.raises(InvalidInput, match="unknown kind"):
        ledger.appender.append("t", NewEntry(kind="gossip"))
    with pytest.raises(InvalidInput, match="unknown channel"):
        ledger.appender.append("t", NewEntry(kind="interaction", channel="pigeon"))
    with pytest.raises(TooLarge):
        too_big = b"x" * (ledger.settings.max_content_bytes + 1)
        ledger.appender.append("t", NewEntry(kind="interaction", content=too_big))
    with pytest.raises(InvalidInput, match="entry 1"):
        ledger.appender.append_batch("t", [_interaction(), NewEntry(kind="interaction", actor="nobody")])
    assert ledger.tenants.info("t").size == 0
    small = Ledger.open(ledger.settings.model_copy(update={"max_content_bytes": 10}))
    try:
        with pytest.raises(TooLarge):
            small.appender.append("t", NewEntry(kind="interaction", content=b"x" * 11))
        small.appender.append("t", NewEntry(kind="interaction", content=b"x" * 10))
    finally:
        small.close()
    assert ledger.logcheck.verify("t")["size"] == 1


def test_concurrent_threads_are_group_committed(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    seqs: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            receipt = ledger.appender.append("t", _interaction())
            with lock:
                seqs.append(receipt.seq)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(200))
    assert ledger.appender.commits < 200, "concurrent appends were not grouped into shared commits"
    assert ledger.logcheck.verify("t")["size"] == 200


def test_background_appends_share_commits_and_keep_order(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.tenants.create("u")
    ledger.appender.append("t", _interaction())  # warm the caches: the queue below fills while nothing commits
    # hold the log's sequencing lock, as another writer would: everything submitted meanwhile queues up
    with writing(ledger.engine) as holder, holder.begin():
        lock_log(holder, ledger.tenants.get("t").log_id, ())
        lock_log(holder, ledger.tenants.get("u").log_id, ())
        futures = [ledger.appender.append_future("t" if i % 3 else "u", [_interaction(case=f"K{i % 4}", body=str(i))])
                   for i in range(30)]
        batch = ledger.appender.append_future("t", [_interaction(body="a"), _interaction(body="b")])
        assert not any(future.done() for future in [*futures, batch])
    commits = ledger.appender.commits
    receipts = [future.result(timeout=30)[0] for future in futures]
    pair = batch.result(timeout=30)
    # one commit per log for the queue (the first request may have been taken before the rest queued)
    assert ledger.appender.commits - commits <= 4
    by_log = {"t": [r.seq for i, r in enumerate(receipts) if i % 3],
              "u": [r.seq for i, r in enumerate(receipts) if not i % 3]}
    assert by_log["u"] == list(range(10)), "queued appends keep their submission order"
    assert sorted([*by_log["t"], *(r.seq for r in pair)]) == list(range(1, 23))
    assert pair[1].seq == pair[0].seq + 1 and pair[1].header["prev"] == pair[0].entry_hash
    for future, receipt in zip(futures, receipts, strict=True):
        assert receipt.header["case"] == future.result()[0].header["case"]
    assert ledger.reads.entry("u", 3).content == b"9"
    assert ledger.logcheck.verify("t")["size"] == 23 and ledger.logcheck.verify("u")["size"] == 10


def test_background_append_errors_reach_each_caller(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    with pytest.raises(InvalidInput):  # checked at once, before anything is queued
        ledger.appender.append_future("t", [NewEntry(kind="nonsense")])
    failed = ledger.appender.append_future("nobody", [_interaction()])
    with pytest.raises(NotFound):
        failed.result(timeout=30)
    assert ledger.appender.append_future("t", [_interaction()]).result(timeout=30)[0].seq == 0
    ledger.close()
    with pytest.raises(RuntimeError, match="closed"):
        ledger.appender.append_future("t", [_interaction()])


def _wait_for_flock_waiter(path: str) -> None:
    """Until /proc/locks lists a process blocked on the flock of `path` (a line marked "->")."""
    inode = os.stat(path).st_ino
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open("/proc/locks") as locks:
            if any("->" in line and line.split()[-3].endswith(f":{inode}") for line in locks):
                return
        time.sleep(0.01)
    raise AssertionError(f"nothing waited on the lock of {path}")


def test_sqlite_appends_queue_on_the_writers_lock(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """SQLite only: PostgreSQL queues writers on the log's row lock, which does not poll."""
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'w.db'}",
                        master_key=TEST_MASTER_KEY)
    Ledger.initialise(settings)
    ledger = Ledger.open(settings)
    request.addfinalizer(ledger.close)
    ledger.tenants.create("t")
    ledger.appender.append("t", _interaction())
    path = f"{ledger.engine.url.database}-writers"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    holder = os.open(path, os.O_RDWR)  # another process's writer, as the kernel sees it
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        pending = ledger.appender.append_future("t", [_interaction()])
        _wait_for_flock_waiter(path)  # the appender queues on the kernel lock, behind the holder
        assert not pending.done(), "the append did not wait for the writer ahead of it"
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    assert pending.result(timeout=30)[0].seq == 1


def test_a_failed_append_transaction_writes_nothing_and_says_why(ledger: Ledger) -> None:
    """A database error inside the append transaction (on PostgreSQL, inside its pipeline) comes out
    as SQLAlchemy's error for it, and the whole transaction is rolled back."""
    ledger.tenants.create("t")
    ledger.appender.append_batch("t", [_interaction(case="A"), _interaction(case="B")])
    with ledger.engine.begin() as conn:  # make the head point one entry back: the next seq exists
        conn.execute(text("UPDATE logs SET size = 1"))
    with pytest.raises(IntegrityError):
        ledger.appender.append_batch("t", [_interaction(case="C"), _interaction(case="A")])
    with ledger.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM entries")).scalar_one() == 2
        assert conn.execute(text("SELECT count(*) FROM case_heads")).scalar_one() == 2
        assert conn.execute(text("SELECT size FROM logs")).scalar_one() == 1
    with ledger.engine.begin() as conn:
        conn.execute(text("UPDATE logs SET size = 2"))
    assert ledger.appender.append("t", _interaction(case="C")).seq == 2
    assert ledger.logcheck.verify("t")["size"] == 3


def test_sqlite_wal_is_checkpointed_in_the_background(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Commits never run a checkpoint themselves (wal_autocheckpoint=0); a thread moves the WAL into
    the database file after them."""
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'c.db'}",
                        master_key=TEST_MASTER_KEY)
    Ledger.initialise(settings)
    ledger = Ledger.open(settings)
    request.addfinalizer(ledger.close)
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    ledger.tenants.create("t")
    database = tmp_path / "c.db"
    before = database.stat().st_size
    ledger.appender.append_batch("t", [_interaction(case=f"K{i}", body="x" * 500) for i in range(3000)])
    deadline = time.monotonic() + 30
    while database.stat().st_size < before + 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.stat().st_size >= before + 1_000_000, "the WAL was not checkpointed into the database"
    assert ledger.logcheck.verify("t")["size"] == 3000


def test_parallel_verify_log_agrees_with_one_pass(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.appender.append_batch("t", [_interaction(case=f"K{i % 7}", body=str(i)) for i in range(150)])
    ledger.checkpoints.issue("t")
    ledger.appender.append_batch("t", [_interaction(case=f"K{i % 5}", body=str(i)) for i in range(151)])
    ledger.checkpoints.issue("t")
    single = ledger.logcheck.verify("t", workers=1)
    assert single["size"] == 301 and single["checkpoints"] == 2
    assert ledger.logcheck.verify("t", workers=2) == single


def test_minted_ids_are_version_4_uuids_and_aads_are_jcs(ledger: Ledger) -> None:
    minted = ledger
    minted.tenants.create("t")
    import uuid

    import rfc8785

    from ledger.envelope import content_aad
    ledger_ids = [a.header["id"] for a in minted.appender.append_batch("t", [NewEntry(kind="access")] * 200)]
    for minted_id in ledger_ids:
        parsed = uuid.UUID(minted_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == minted_id
    assert len(set(ledger_ids)) == 200
    for log, entry_id, key in (("caseledger.local/acme", ledger_ids[0], "dk_00ff"), ('odd "log"/é', "x\\y", "k\n")):
        assert content_aad(log, entry_id, key) == rfc8785.dumps({"log": log, "id": entry_id, "key": key})


def test_key_and_subject_changes_reach_other_processes_caches(ledger: Ledger) -> None:
    """Two Ledger objects stand for two API workers: each caches handles and keys."""
    ledger.tenants.create("t")
    other = Ledger.open(ledger.settings)
    try:
        first = other.appender.append("t", _interaction(ref="cust-1", body="before"))
        handle, key = first.header["subject"], first.header["key"]
        assert other.reads.entry("t", first.seq).content == b"before"
        # erasure in this process must stop the other one using or reading with the cached key
        ledger.data_keys.destroy("t", handle)
        assert other.reads.entry("t", first.seq).erased
        again = other.appender.append("t", _interaction(ref="cust-1", body="after"))
        assert again.header["subject"] == handle and again.header["key"] != key
        # forgetting the reference must stop the other one linking new entries to the old handle
        ledger.subjects.forget("t", "cust-1")
        fresh = other.appender.append("t", _interaction(ref="cust-1", body="new"))
        assert fresh.header["subject"] != handle
        # rotation moves the other process to the new key version
        rotated = ledger.data_keys.rotate("t", fresh.header["subject"])
        assert other.appender.append("t", _interaction(ref="cust-1")).header["key"] == rotated
    finally:
        other.close()
    assert ledger.logcheck.verify("t")["size"] == 4


def test_appends_without_a_subject_work_right_after_a_rotation(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.appender.append("t", NewEntry(kind="interaction", content=b"before"))
    rotated = ledger.data_keys.rotate("t", None)
    after = ledger.appender.append("t", NewEntry(kind="interaction", content=b"after"))
    assert after.header["key"] == rotated
    assert ledger.reads.entry("t", after.seq).content == b"after"
    ledger.data_keys.destroy("t", "")
    again = ledger.appender.append("t", NewEntry(kind="interaction", content=b"again"))
    assert again.header["key"] not in (rotated, None)


def test_an_entry_may_ask_for_a_checkpoint_signed_in_its_own_transaction(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    ledger.appender.append("t", _interaction())
    plain, signed = ledger.appender.append_batch("t", [_interaction(), NewEntry(kind="key", meta={"k": 1},
                                                                                checkpoint=True)])
    assert plain.checkpoint is None and signed.checkpoint is not None
    size, root, note = signed.checkpoint
    assert size == 3 and (size, note) in ledger.checkpoints.history("t"), "kept as the checkpoint of its size"
    assert ledger.checkpoints.latest("t").root == root
    receipt = ledger.checkpoints.receipt("t", signed.seq)
    assert receipt.checkpoint == note and verify_receipt(receipt, Trust.of(ledger.tenants.info("t").vkey))["ok"]
