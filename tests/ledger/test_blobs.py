"""The blob store (DESIGN §8): atomic commit, no half-written blob after a crash, orphans, hostile names."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.blobs import BLOB_DIR, CHUNK_SIZE, BlobInfo, BlobStore
from ledger.errors import Conflict, InvalidInput, NotFound

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def new_id() -> str:
    return str(uuid.uuid4())


def put(store: BlobStore, entry_id: str, data: bytes, chunk: int = 10_000) -> BlobInfo:
    with store.writer(entry_id) as writer:
        for start in range(0, len(data), chunk):
            writer.write(data[start : start + chunk])
        return writer.commit()


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- write, commit, read -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 5])
def test_write_commit_read_round_trip(store: BlobStore, size: int) -> None:
    entry_id, data = new_id(), os.urandom(size)
    info = put(store, entry_id, data)
    assert info == BlobInfo(size, hashlib.sha256(data).hexdigest())
    size_read, digest = info  # a (size, sha256) pair
    assert size_read == size and digest == info.sha256
    chunks = list(store.open(entry_id))
    assert b"".join(chunks) == data
    assert all(len(chunk) == CHUNK_SIZE for chunk in chunks[:-1]) and all(0 < len(c) <= CHUNK_SIZE for c in chunks)
    assert store.size(entry_id) == size
    assert store.sha256(entry_id) == info.sha256
    assert store.exists(entry_id)
    assert files_under(store.root) == [f"{entry_id[:2]}/{entry_id}"]


def test_files_are_0600_and_directories_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = BlobStore.in_data_dir(tmp_path / "data")
        entry_id = new_id()
        with store.writer(entry_id) as writer:
            writer.write(b"x")
            assert mode(writer.temp_path) == 0o600
            writer.commit()
    finally:
        os.umask(old)
    assert store.root == tmp_path / "data" / BLOB_DIR
    assert mode(store.root) == 0o700
    assert mode(store.path(entry_id).parent) == 0o700
    assert mode(store.path(entry_id)) == 0o600


def test_the_temporary_file_sits_beside_the_final_name(store: BlobStore) -> None:
    entry_id = new_id()
    with store.writer(entry_id) as writer:
        writer.write(b"abc")
        temp = writer.temp_path
        assert temp.parent == store.path(entry_id).parent
        assert temp.name.startswith(f"{entry_id}.tmp-") and temp.is_file()
        assert not store.exists(entry_id)
        writer.commit()
        assert not temp.exists() and store.exists(entry_id)


def test_an_exception_inside_the_context_leaves_nothing(store: BlobStore) -> None:
    entry_id = new_id()
    with pytest.raises(RuntimeError), store.writer(entry_id) as writer:
        writer.write(b"half a document")
        raise RuntimeError("upload broke off")
    assert files_under(store.root) == []
    with pytest.raises(NotFound):
        store.open(entry_id)


def test_leaving_without_commit_leaves_nothing(store: BlobStore) -> None:
    with store.writer(new_id()) as writer:
        writer.write(b"never committed")
    assert files_under(store.root) == []


def test_an_exception_after_commit_leaves_the_blob_for_the_orphan_sweep(store: BlobStore) -> None:
    entry_id = new_id()
    with pytest.raises(RuntimeError), store.writer(entry_id) as writer:
        writer.write(b"doc")
        writer.commit()
        raise RuntimeError("the entry commit failed (or did it?)")
    assert store.exists(entry_id)
    assert store.clean_orphans(lambda _: False) == [entry_id]


def test_writer_misuse_is_refused(store: BlobStore) -> None:
    writer = store.writer(new_id())
    with pytest.raises(ValueError):
        writer.write(b"before entering")
    with writer:
        writer.write(b"x")
        writer.commit()
        with pytest.raises(ValueError):
            writer.write(b"after commit")
        with pytest.raises(ValueError):
            writer.commit()
    with pytest.raises(ValueError), writer:
        pass


def test_an_existing_blob_is_never_overwritten(store: BlobStore) -> None:
    entry_id = new_id()
    first = store.writer(entry_id)
    second = store.writer(entry_id)
    with first, second:
        first.write(b"first")
        second.write(b"second")
        first.commit()
        with pytest.raises(Conflict):
            second.commit()
    assert b"".join(store.open(entry_id)) == b"first"
    assert files_under(store.root) == [f"{entry_id[:2]}/{entry_id}"]
    with pytest.raises(Conflict):
        store.writer(entry_id)


def test_commit_without_hard_links_falls_back_to_rename(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    entry_id = new_id()
    put(store, entry_id, b"on a filesystem without links")
    assert b"".join(store.open(entry_id)) == b"on a filesystem without links"
    assert files_under(store.root) == [f"{entry_id[:2]}/{entry_id}"]
    other_id = new_id()
    other = store.writer(other_id)
    with other:
        other.write(b"x")
        store.path(other_id).write_bytes(b"appeared meanwhile")  # the rename path checks before renaming
        with pytest.raises(Conflict):
            other.commit()


def test_an_abandoned_reader_closes_its_file(store: BlobStore) -> None:
    entry_id = new_id()
    put(store, entry_id, os.urandom(3 * CHUNK_SIZE))
    reader = store.open(entry_id)
    assert len(next(reader)) == CHUNK_SIZE
    del reader  # closed by the generator's finaliser: pytest's warnings-as-errors would catch a leak
    unstarted = store.open(entry_id)  # never iterated: the file was never opened
    del unstarted


# --- names ---------------------------------------------------------------------------------------

GOOD = "6f1d2c3b-4a59-4687-b7c8-d9e0f1a2b3c4"
HOSTILE_NAMES: list[object] = [
    "../x", "../../etc/passwd", "/etc/passwd", "/tmp/" + GOOD, "a\x00b", GOOD + "\x00", "a" * 300, "", ".",
    "..", GOOD.upper(), GOOD + "\n", " " + GOOD, GOOD + ".tmp-0123456789abcdef", "statement.pdf", "6f/" + GOOD,
    "../" + GOOD, GOOD.replace("-", ""), "{" + GOOD + "}", None, GOOD.encode(), 42,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[f"{i}:{name!r:.40}" for i, name in enumerate(HOSTILE_NAMES)])
def test_a_name_that_is_not_an_entry_id_is_refused(store: BlobStore, name: object) -> None:
    for use in (store.writer, store.open, store.size, store.sha256, store.delete, store.exists, store.path):
        with pytest.raises(InvalidInput):
            use(name)  # type: ignore[arg-type]
    assert files_under(store.root.parent) == []


def test_absent_blobs_are_not_found(store: BlobStore) -> None:
    entry_id = new_id()
    for use in (store.open, store.size, store.sha256, store.delete):
        with pytest.raises(NotFound):
            use(entry_id)
    assert not store.exists(entry_id)


def test_delete_removes_a_blob(store: BlobStore) -> None:
    entry_id = new_id()
    put(store, entry_id, b"orphan")
    store.delete(entry_id)
    assert not store.exists(entry_id)
    with pytest.raises(NotFound):
        store.delete(entry_id)


# --- orphans -------------------------------------------------------------------------------------


def test_orphans_temp_files_and_unknown_blobs_go_known_ones_and_foreign_files_stay(store: BlobStore) -> None:
    known_id, unknown_id = new_id(), new_id()
    put(store, known_id, b"entry committed")
    put(store, unknown_id, b"entry never committed")
    crashed_id = new_id()
    shard = store.root / crashed_id[:2]
    shard.mkdir(exist_ok=True)
    stale = shard / f"{crashed_id}.tmp-0123456789abcdef"
    stale.write_bytes(b"left by a crash")
    foreign = [store.root / "README", shard / "notes.txt", store.root / "zz" / known_id]
    (store.root / "zz").mkdir()
    for path in foreign:
        path.write_bytes(b"not ours")
    asked: list[str] = []

    def known(entry_id: str) -> bool:
        asked.append(entry_id)
        return entry_id == known_id

    expected = sorted([stale.name, unknown_id])
    assert sorted(store.orphans(known)) == expected
    assert stale.exists() and store.exists(unknown_id)  # orphans() only lists
    assert sorted(store.clean_orphans(known)) == expected
    assert not stale.exists() and not store.exists(unknown_id)
    assert store.exists(known_id) and all(path.exists() for path in foreign)
    assert crashed_id not in asked  # a temporary file is never someone's blob
    assert store.clean_orphans(known) == []


def test_a_live_writer_is_never_swept(store: BlobStore) -> None:
    writing, committing = new_id(), new_id()
    with store.writer(writing) as live, store.writer(committing) as done:
        live.write(b"still uploading")
        done.write(b"blob final, entry being committed")
        done.commit()
        assert store.clean_orphans(lambda _: False) == []
        assert live.temp_path.exists() and store.exists(committing)
        live.write(b" and on")
        live.commit()
    assert b"".join(store.open(writing)) == b"still uploading and on"
    assert sorted(store.clean_orphans(lambda _: False)) == sorted([writing, committing])


# --- a crash mid-write ---------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ledger.blobs import BlobStore

    store = BlobStore(Path(sys.argv[1]))
    chunk = b"x" * 65536
    with store.writer(sys.argv[2]) as writer:
        for _ in range(64):  # 4 MiB, slowly
            writer.write(chunk)
            time.sleep(0.01)
        sys.stdin.read()  # wait for the parent, which kills us instead: never reach the commit
        writer.commit()
""")


def _temp_files(shard: Path) -> list[Path]:
    return sorted(shard.glob("*.tmp-*")) if shard.is_dir() else []


def _wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[bytes], deadline: float) -> None:
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the writer exited early: {proc.communicate()[1].decode(errors='replace')}")
        if time.monotonic() > deadline:
            raise AssertionError("the writer did not start writing in time")
        time.sleep(0.01)


def test_sigkill_mid_write_leaves_only_a_temp_file_which_is_cleaned(store: BlobStore) -> None:
    entry_id = new_id()
    shard = store.root / entry_id[:2]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen([sys.executable, "-c", CHILD, str(store.root), entry_id], cwd=REPO, env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            _wait_for(lambda: any(path.stat().st_size >= 1 << 20 for path in _temp_files(shard)), proc,
                      time.monotonic() + 60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    temps = _temp_files(shard)
    assert len(temps) == 1 and temps[0].stat().st_size >= 1 << 20
    assert not store.exists(entry_id)
    with pytest.raises(NotFound):
        store.open(entry_id)
    assert store.orphans(lambda _: True) == [temps[0].name]
    assert store.clean_orphans(lambda _: True) == [temps[0].name]
    assert files_under(store.root) == []
