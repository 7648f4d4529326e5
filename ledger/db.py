"""Engines and migrations (DESIGN §5).

SQLite runs in WAL mode with ``synchronous=FULL`` so a commit is on disk before it returns; write
transactions start with ``BEGIN IMMEDIATE`` so that the database write lock, taken up front, is the
per-log sequencing lock. PostgreSQL locks the log row with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection

from ledger.errors import ConfigurationError
from ledger.files import private_file

__all__ = ["SNAPSHOT", "WRITE", "WalCheckpointer", "WriterLock", "is_sqlite", "make_engine", "migrate",
           "schema_is_current", "sqlite_file"]

#: execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE)
WRITE = {"caseledger_write": True}
#: execution option for several reads that must see one snapshot (SQLite: BEGIN)
SNAPSHOT = {"caseledger_snapshot": True}
_MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file(engine: Engine) -> str | None:
    """The database file of an SQLite engine; None for an in-memory database or another engine."""
    database = engine.url.database if is_sqlite(engine) else None
    return database if database and database != ":memory:" else None


def _private_sqlite_files(database: str | None) -> None:
    """Create the database file 0600 before SQLite does (it would use 0644 less the umask); SQLite gives
    its -wal and -shm files the database file's permissions. Existing files of ours are made 0600."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite reports the missing directory when it first connects
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = Path(f"{database}{suffix}")
        if companion.exists():
            private_file(companion)


def make_engine(url: str, *, background_checkpoints: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`. With `background_checkpoints`, SQLite connections leave WAL checkpoints
    to a `WalCheckpointer` instead of running them inside whichever commit fills the WAL."""
    # as many pooled connections as the HTTP server has request threads, so none waits for one
    kwargs = {"pool_size": 40, "max_overflow": 10} | kwargs
    if url.startswith("sqlite"):
        _private_sqlite_files(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the driver: we issue BEGIN ourselves.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA foreign_keys=ON")
            if background_checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # plain reads run in autocommit: each statement alone, no BEGIN/ROLLBACK round trip
            options = conn.get_execution_options()
            if options.get("caseledger_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif options.get("caseledger_snapshot"):
                conn.exec_driver_sql("BEGIN")

        return engine
    if url.startswith("postgresql"):
        # no pre-ping round trip per checkout: connections are recycled, and a dropped one fails its
        # request once (503) while the pool replaces it
        return create_engine(url, pool_recycle=1800, **kwargs)
    raise ConfigurationError(f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite or postgresql")


class WriterLock:
    """Queue the append transactions of every process on one SQLite database in the kernel.

    SQLite's own lock is the authority, but a writer that finds it taken polls with growing sleeps
    (up to 100 ms each), so with several server processes a few appends wait for seconds. Writers
    that first queue on an exclusive `flock` of ``<database>-writers`` instead wake the moment the
    holder is done. Within a process a thread lock comes first (one flock per open file is shared
    by its threads). A no-op for PostgreSQL and in-memory databases, whose locks do not poll.
    """

    def __init__(self, engine: Engine) -> None:
        database = sqlite_file(engine)
        self._path = Path(f"{database}-writers") if database else None
        self._threads = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        if self._path is None:
            return self
        self._threads.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._path is None:
            return
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class WalCheckpointer:
    """Checkpoints an SQLite WAL on a thread of its own, so that no append commit pays for one.

    By default SQLite checkpoints inside the commit that takes the WAL past 1000 pages: that commit,
    and every append queued behind it, waits for the database file to be written and synced. Here
    commits `nudge` a thread that runs PASSIVE checkpoints (they never block writers or readers), at
    most every `pause` seconds, with its own connection. A no-op for other databases.
    """

    def __init__(self, engine: Engine, pause: float = 0.05) -> None:
        self._path = sqlite_file(engine)
        self._pause = pause
        self._wake = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        if self._path is None:
            return
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(target=self._run, name="caseledger-checkpointer", daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        assert self._path is not None
        conn = sqlite3.connect(self._path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            while not self._closed:
                self._wake.wait()
                self._wake.clear()
                self._checkpoint(conn)
                time.sleep(self._pause)
            self._checkpoint(conn)
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # a busy or failing checkpoint is retried on the next nudge
            logging.getLogger("caseledger.db").warning("WAL checkpoint failed", exc_info=True)

    def close(self) -> None:
        """Run a last checkpoint and stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    with engine.connect().execution_options(**WRITE) as connection, connection.begin():
        command.upgrade(_alembic_config(connection), "head")


def schema_is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
        return bool(current == head)
