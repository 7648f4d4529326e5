"""`Ledger`: opens the engine's capability modules, wires them together and closes them.

It exposes the modules as attributes — `ledger.tenants`, `ledger.subjects`, `ledger.data_keys`,
`ledger.appender`, `ledger.reads`, `ledger.cases`, `ledger.proofs`, `ledger.checkpoints`, `ledger.logcheck`,
`ledger.anchoring`, `ledger.documents`, `ledger.shares` — and
has no methods of its own beyond its life cycle, so that each capability keeps one home (STYLE §16).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ledger.anchoring import Anchoring
from ledger.appender import Appender
from ledger.blobs import BlobStore
from ledger.cases import Cases
from ledger.checkpoints import Checkpoints
from ledger.datakeys import DataKeys
from ledger.db import make_engine, migrate, schema_is_current
from ledger.documents import Documents
from ledger.errors import ConfigurationError
from ledger.files import private_dir
from ledger.keys import MasterKey, load_master_key
from ledger.logcheck import LogCheck
from ledger.proofs import Proofs
from ledger.reads import Reads
from ledger.settings import Settings
from ledger.shares import Shares
from ledger.subjects import Subjects
from ledger.tenants import Tenants
from verification.entry import utc_now

__all__ = ["Ledger"]


class Ledger:
    def __init__(self, settings: Settings, engine: Engine, master: MasterKey,
                 clock: Callable[[], str] = utc_now) -> None:
        self.settings = settings
        self.engine = engine
        #: the time source of every entry (RFC 3339 UTC); compliance measures retention by it too
        self.clock = clock
        self.tenants = Tenants(engine, master, settings.instance, clock)
        self.subjects = Subjects(engine, self.tenants, clock)
        self.data_keys = DataKeys(engine, self.tenants, clock)
        self.appender = Appender(engine, self.tenants, self.subjects, self.data_keys, clock,
                                 settings.max_content_bytes)
        self.reads = Reads(engine, self.tenants, self.data_keys)
        self.cases = Cases(engine, self.tenants)
        self.proofs = Proofs(engine, self.tenants)
        self.checkpoints = Checkpoints(engine, self.tenants, self.proofs, clock)
        self.logcheck = LogCheck(engine, self.tenants)
        self.anchoring = Anchoring(engine, self.tenants, self.checkpoints, self.proofs, self.appender, clock)
        self.documents = Documents(engine, self.tenants, self.subjects, self.data_keys, self.appender, self.reads,
                                   self.anchoring, self.checkpoints, BlobStore.in_data_dir(settings.data_dir),
                                   settings.max_document_bytes, clock)
        self.shares = Shares(engine, self.tenants, self.appender, clock)

    @classmethod
    def initialise(cls, settings: Settings) -> dict[str, Any]:
        """Create the data directory, the master key (development) and a migrated database."""
        settings.check_production()
        private_dir(settings.data_dir)
        key_file = settings.master_key_file or settings.default_master_key_path
        existed = settings.master_key is not None or key_file.exists()
        load_master_key(settings, create=True)
        engine = make_engine(settings.db_url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        made = {
            "data_dir": str(settings.data_dir.resolve()),
            "database": engine.url.render_as_string(hide_password=True),
            "mode": settings.mode.value,
            "instance": settings.instance,
        }
        if not existed:
            made["master_key_file"] = str(key_file.resolve())
        return made

    @classmethod
    def open(cls, settings: Settings, *, clock: Callable[[], str] = utc_now) -> Ledger:
        settings.check_production()
        master = load_master_key(settings)
        engine = make_engine(settings.db_url, background_checkpoints=True)
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database and not Path(database).exists():
            raise ConfigurationError(f"no database at {database}: run `caseledger init`")
        if not schema_is_current(engine):
            engine.dispose()
            raise ConfigurationError("the database is not initialised or not migrated: run `caseledger init`")
        return cls(settings, engine, master, clock)

    def close(self) -> None:
        self.appender.close()
        self.engine.dispose()
