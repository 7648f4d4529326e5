"""The blob store: a document's stored bytes (its segmented envelope), one file per entry (DESIGN §8).

Files are named by the entry id — a lowercase UUID, checked, never a name a caller chose — and
sharded by its first two hex digits: ``<root>/6f/6f1d2c3b-…``. The root is ``<data_dir>/blobs`` by
default; directories are 0700, files 0600 (`ledger.files`).

A blob is written to ``<id>.tmp-<random>`` beside its final name, fsynced, linked to the final name
(which must not exist: a blob is never overwritten), and the directory fsynced. The caller commits the
entry *after* the blob is final, so a crash leaves at worst a blob without an entry (an orphan, removed
by `BlobStore.clean_orphans`), never an entry without its blob::

    with store.writer(entry_id) as writer:
        for chunk in sealed_chunks:
            writer.write(chunk)
        size, digest = writer.commit()
        ...commit the document entry with ct = digest...

A writer writes and hashes on a thread of its own, fed through a short queue, so that the caller's
thread (which seals the next segment and hashes the file for its commitment) and the writer's run at
once; `commit` waits for it.

A writer holds an exclusive `flock` on its file from creation until it leaves its context, so
`clean_orphans` — which takes the same lock before removing anything — never removes a file that is
still being written, nor a committed blob whose entry is being committed in that context. A process
killed mid-write loses its lock with its life. An exception after `commit` leaves the blob in place:
whether the entry was committed is for the database to say, and `clean_orphans` asks it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import queue
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.files import PRIVATE_FILE_MODE, private_dir

__all__ = ["BLOB_DIR", "CHUNK_SIZE", "BlobInfo", "BlobStore", "BlobWriter"]

#: the blob store's directory inside the data directory
BLOB_DIR = "blobs"
#: `BlobStore.open` yields chunks of this size (the last may be shorter)
CHUNK_SIZE = 64 * 1024

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ENTRY_ID = re.compile(_UUID)
_TEMP = re.compile(rf"(?P<id>{_UUID})\.tmp-[0-9a-f]{{16}}")
_SHARD = re.compile("[0-9a-f]{2}")
# filesystems without hard links: fall back to a rename after an existence check
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class BlobInfo(NamedTuple):
    """What was stored: its length and SHA-256 (hex), the entry's `ct` (DESIGN §8)."""

    size: int
    sha256: str


def _entry_id(entry_id: object) -> str:
    if not isinstance(entry_id, str) or not _ENTRY_ID.fullmatch(entry_id):
        raise InvalidInput("a blob is named by its entry id, a lowercase UUID")
    return entry_id


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _still_named(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return False


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


#: sealed chunks waiting for a writer's thread (each at most a segment, ~64 KiB)
_PENDING_CHUNKS = 8


class _WriteBehind:
    """Writes chunks to `fd` and hashes them, in order, on a thread of its own. The first error is
    kept and raised to the caller at its next `write` or at `finish`; the thread then only drains."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_PENDING_CHUNKS)
        self.hash = hashlib.sha256()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blob-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                with memoryview(chunk) as view:
                    written = 0
                    while written < len(view):
                        written += os.write(self._fd, view[written:])
                self.hash.update(chunk)
            except BaseException as exc:  # raised in the caller's thread
                self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait until every chunk is written; raise the first error if one happened."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            raise self.error


class BlobWriter:
    """Writes one blob; use it as a context manager (the temporary file is created on entering).

    Leaving the context without `commit` — normally or by an exception — removes the temporary file.
    """

    def __init__(self, root: Path, final: Path) -> None:
        self._root = root
        self._final = final
        self._temp = final.with_name(f"{final.name}.tmp-{secrets.token_hex(8)}")
        self._fd: int | None = None
        self._new_shard = False
        self._behind: _WriteBehind | None = None
        self._size = 0
        self._info: BlobInfo | None = None

    @property
    def temp_path(self) -> Path:
        return self._temp

    def __enter__(self) -> BlobWriter:
        if self._fd is not None or self._info is not None:
            raise ValueError("a blob writer is used once")
        shard = self._final.parent
        self._new_shard = not shard.is_dir()
        private_dir(shard)
        for _ in range(3):
            fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         PRIVATE_FILE_MODE)
            try:
                os.fchmod(fd, PRIVATE_FILE_MODE)  # the umask may have taken bits away; never added any
                fcntl.flock(fd, fcntl.LOCK_EX)
                if _still_named(fd, self._temp):
                    self._fd = fd
                    return self
            except BaseException:
                os.close(fd)
                self._temp.unlink(missing_ok=True)
                raise
            # a cleaner took the file between its creation and our lock: start again under a new name
            os.close(fd)
            self._temp = self._final.with_name(f"{self._final.name}.tmp-{secrets.token_hex(8)}")
        raise OSError(errno.EAGAIN, "cannot keep a temporary blob file", str(self._temp))

    def _open_fd(self) -> int:
        if self._fd is None or self._info is not None:
            raise ValueError("the blob writer is not open for writing (enter its context; not after commit)")
        return self._fd

    def write(self, chunk: bytes) -> None:
        fd = self._open_fd()
        if not chunk:
            return
        if self._behind is None:
            self._behind = _WriteBehind(fd)
        self._behind.put(bytes(chunk))
        self._size += len(chunk)

    def _written(self) -> str:
        """Wait for the writer's thread; the SHA-256 (hex) of everything written."""
        if self._behind is None:
            return hashlib.sha256().hexdigest()
        self._behind.finish()
        return self._behind.hash.hexdigest()

    def commit(self) -> BlobInfo:
        """Make the blob durable under its final name; Conflict if that name exists already."""
        fd = self._open_fd()
        digest = self._written()
        os.fsync(fd)
        try:
            os.link(self._temp, self._final)  # unlike rename, never replaces an existing file
        except FileExistsError:
            raise Conflict("a blob for this entry exists already") from None
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if self._final.exists():
                raise Conflict("a blob for this entry exists already") from None
            os.rename(self._temp, self._final)
        else:
            os.unlink(self._temp)
        _fsync_dir(self._final.parent)
        if self._new_shard:
            _fsync_dir(self._root)
        self._info = BlobInfo(self._size, digest)
        return self._info

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        fd, self._fd = self._fd, None
        try:
            if self._behind is not None:
                with contextlib.suppress(BaseException):  # the error that ended the block is the one that counts
                    self._behind.finish()
            if self._info is None:
                self._temp.unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)  # releases the lock, after the temporary file is gone


class BlobStore:
    """Blobs in a directory (created 0700): see the module docstring for the protocol."""

    def __init__(self, root: Path) -> None:
        self.root = private_dir(Path(root))

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> BlobStore:
        """The default store, ``<data_dir>/blobs``."""
        return cls(Path(data_dir) / BLOB_DIR)

    def path(self, entry_id: str) -> Path:
        """Where the blob of `entry_id` lives (InvalidInput unless it is a lowercase UUID)."""
        entry_id = _entry_id(entry_id)
        return self.root / entry_id[:2] / entry_id

    def writer(self, entry_id: str) -> BlobWriter:
        """A writer for a new blob; Conflict at once if the entry has one already (and again at commit)."""
        final = self.path(entry_id)
        if final.exists():
            raise Conflict("a blob for this entry exists already")
        return BlobWriter(self.root, final)

    def exists(self, entry_id: str) -> bool:
        return self.path(entry_id).is_file()

    def size(self, entry_id: str) -> int:
        try:
            return self.path(entry_id).stat().st_size
        except FileNotFoundError:
            raise NotFound("no blob for this entry") from None

    def open(self, entry_id: str) -> Iterator[bytes]:
        """The stored bytes in chunks of CHUNK_SIZE; NotFound (at once) if there is no blob.

        The file is opened on the first iteration and closed when the iterator is exhausted or closed.
        """
        path = self.path(entry_id)
        if not path.is_file():
            raise NotFound("no blob for this entry")
        return self._read(path)

    @staticmethod
    def _read(path: Path) -> Iterator[bytes]:
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFound("no blob for this entry") from None
        with handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    def sha256(self, entry_id: str) -> str:
        """SHA-256 (hex) of the stored bytes, read again from disk (for `verify-log --blobs`)."""
        digest = hashlib.sha256()
        for chunk in self.open(entry_id):
            digest.update(chunk)
        return digest.hexdigest()

    def delete(self, entry_id: str) -> None:
        """Remove a blob (an orphan: one whose entry was never committed); NotFound if there is none."""
        try:
            self.path(entry_id).unlink()
        except FileNotFoundError:
            raise NotFound("no blob for this entry") from None

    def orphans(self, known: Callable[[str], bool]) -> list[str]:
        """What `clean_orphans` would remove now, without removing it."""
        return self._sweep(known, remove=False)

    def clean_orphans(self, known: Callable[[str], bool]) -> list[str]:
        """Remove temporary files left by a crashed writer, and blobs whose entry `known(entry_id)` says
        does not exist (a crash between the blob's commit and the entry's). Returns the file names
        removed: temporary names and entry ids. Files in use by a writer, and files the store did not
        name, are left alone.
        """
        return self._sweep(known, remove=True)

    def _sweep(self, known: Callable[[str], bool], remove: bool) -> list[str]:
        found: list[str] = []
        for shard in sorted(self.root.iterdir()):
            if not _SHARD.fullmatch(shard.name) or shard.is_symlink() or not shard.is_dir():
                continue
            for path in sorted(shard.iterdir()):
                temp = _TEMP.fullmatch(path.name)
                entry_id = temp["id"] if temp else path.name
                if not _ENTRY_ID.fullmatch(entry_id) or entry_id[:2] != shard.name:
                    continue  # not a name this store makes
                if self._orphan(path, None if temp else entry_id, known, remove):
                    found.append(path.name)
        return found

    @staticmethod
    def _orphan(path: Path, entry_id: str | None, known: Callable[[str], bool], remove: bool) -> bool:
        """Whether `path` (a blob of `entry_id`, or a temporary file for None) is an orphan; it is judged,
        and removed, under its lock, so that a live writer's file is never taken."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return False  # gone meanwhile, or a symbolic link
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or not _try_lock(fd):
                return False  # not a file the store wrote, or a writer is at work on it
            if entry_id is not None and known(entry_id):
                return False
            if remove:
                path.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)
