"""The ledger engine's one entry point: tenants, subjects, appends, reads, proofs, checkpoints.

The CLI and the HTTP app are thin faces over `Ledger`. Content is encrypted before the log is
locked; only numbering, time and the two chain links are assigned under the lock (DESIGN §5).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ledger import repository as repo
from ledger.db import SNAPSHOT, WRITE, WalCheckpointer, WriterLock, is_sqlite, make_engine, migrate, schema_is_current
from ledger.envelope import content_aad, open_envelope, seal, wrap_aad
from ledger.errors import ConfigurationError, Conflict, DecryptionError, InvalidInput, NotFound, TooLarge
from ledger.groupcommit import BackgroundBatcher, GroupCommitter
from ledger.keys import (
    MasterKey,
    load_master_key,
    new_data_key_id,
    new_key,
    subject_ref_mac,
    unwrap_signing_key,
    wrap_signing_key,
)
from ledger.logcheck import verify_stored_log
from ledger.settings import Settings
from ledger.tree import HashReader, consistency_proof, inclusion_proof, range_proof, stored_hash_index, tree_hash
from verification.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from verification.entry import CHANNELS, HEADER_VERSION, ZERO_HASH, canonical_json, encode_header, plain_json
from verification.merkle import EMPTY_ROOT, HASH_SIZE, append_leaf, leaf_hash, root_from_peaks

__all__ = ["KINDS", "Ledger", "NewEntry", "ReadEntry", "Receipt", "TenantInfo", "utc_now"]

KINDS = frozenset({"interaction", "document", "share", "access", "policy", "erasure", "key", "anchor"})
_TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
_ACTOR = re.compile(r"(user|service):[A-Za-z0-9._@:-]{1,120}\Z")
_CASE = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
#: entries one range proof may cover (its entry hashes travel with it)
MAX_RANGE = 100_000
_SALT_SIZE = 32
_T = TypeVar("_T")
_NO_SUBJECT = ""


def utc_now() -> str:
    """RFC 3339 UTC with microseconds: fixed width, so string order is time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class NewEntry:
    """What a caller asks to log. Personal data goes only in `content`, which is encrypted."""

    kind: str
    content: bytes | None = None
    channel: str | None = None
    case: str | None = None
    subject_ref: str | None = None
    actor: str = "service:caseledger"
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: make a salted commitment to the content (default: for documents)
    commit: bool | None = None


class Receipt(NamedTuple):
    """What an append returns: where the entry went and the header it was given (immutable)."""

    log: str
    seq: int
    entry_hash: str
    header: dict[str, Any]
    #: the header's RFC 8785 bytes, as hashed
    header_bytes: bytes = b""

    def as_dict(self) -> dict[str, Any]:
        return {"log": self.log, "seq": self.seq, "entry_hash": self.entry_hash, "header": self.header}

    def as_json(self) -> bytes:
        """`as_dict` as JSON, with the header's own bytes spliced in rather than encoded again."""
        header = self.header_bytes or canonical_json(self.header)
        return b'{"log":%b,"seq":%d,"entry_hash":"%b","header":%b}' % (
            json.dumps(self.log).encode(), self.seq, self.entry_hash.encode(), header)


@dataclass(frozen=True)
class ReadEntry:
    header: dict[str, Any]
    entry_hash: str
    #: None when the entry has no content or its key was destroyed (`erased`)
    content: bytes | None
    salt: bytes | None
    erased: bool


@dataclass(frozen=True)
class TenantInfo:
    tenant: str
    origin: str
    vkey: str
    size: int | None = None
    root: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tenant": self.tenant, "origin": self.origin, "vkey": self.vkey}
        if self.size is not None:
            out |= {"size": self.size, "root": self.root}
        return out


class _Prepared(NamedTuple):
    """An entry encrypted and ready for sequencing (a tuple: made once per entry on the hot path)."""

    entry_id: str
    kind: str
    actor: str
    case: str | None
    channel: str | None
    subject: str | None
    key_id: str | None
    envelope: bytes | None
    ct: str | None
    commit: str | None
    meta: dict[str, Any]
    #: the key epoch the subject handle and data key were taken from (checked under the log lock)
    epoch: int


class _StaleKeys(Exception):
    """A subject mapping or data key cached by this process was changed elsewhere: prepare again."""


@dataclass
class _TenantContext:
    """What a process keeps about one tenant. The caches hold only what is valid at `epoch`.

    The log row's key epoch grows whenever a subject mapping is deleted or data keys are rotated or
    destroyed, by any process; appends prepared from older caches are refused under the log lock and
    prepared again, and reads re-check the epoch, so crypto-shredding and forgetting take effect at
    once in every process.
    """

    name: str
    tenant_id: int
    log_id: int
    origin: str
    tenant_key: bytes
    public_key: Ed25519PublicKey
    signing_key_wrapped: bytes
    signing_key: Ed25519PrivateKey | None = None
    epoch: int = -1
    subjects: dict[bytes, str] = field(default_factory=dict)
    data_keys: dict[str, bytes] = field(default_factory=dict)
    current_keys: dict[str, str] = field(default_factory=dict)

    def sync(self, epoch: int) -> None:
        """Adopt the epoch read from the log row, dropping the caches if it moved."""
        if epoch != self.epoch:
            self.invalidate()
            self.epoch = epoch

    def invalidate(self) -> None:
        """Forget every cached handle and key; the next use reads the epoch and refills."""
        self.subjects.clear()
        self.data_keys.clear()
        self.current_keys.clear()
        self.epoch = -1


class Ledger:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        master: MasterKey,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._master = master
        self._clock = clock
        self._tenants: dict[str, _TenantContext] = {}
        self._committer: GroupCommitter[_Prepared, Receipt] = GroupCommitter(self._write)
        self._writers = WriterLock(engine)
        self._checkpointer = WalCheckpointer(engine)
        self._background: BackgroundBatcher[str, NewEntry, Receipt] = BackgroundBatcher(self._append_checked)
        #: called after each append transaction commits, with its number of entries (metrics hook)
        self.on_commit: Callable[[int], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def initialise(cls, settings: Settings) -> dict[str, Any]:
        """Create the data directory, the master key (development) and a migrated database."""
        settings.check_production()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        existed = settings.master_key is not None or (
            settings.master_key_file or settings.default_master_key_path
        ).exists()
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
            made["master_key_file"] = str((settings.master_key_file or settings.default_master_key_path).resolve())
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
        self._background.close()
        self._checkpointer.close()
        self.engine.dispose()
        self._writers.close()

    def _read(self) -> Connection:
        """A connection for reads that need no common snapshot: autocommit, one statement each."""
        conn = self.engine.connect()
        return conn if is_sqlite(conn) else conn.execution_options(isolation_level="AUTOCOMMIT")

    def _write_conn(self) -> Connection:
        return self.engine.connect().execution_options(**WRITE)

    # ------------------------------------------------------------------ tenants and subjects

    def create_tenant(self, name: str) -> TenantInfo:
        if not _TENANT.match(name):
            raise InvalidInput(f"tenant name {name!r} must be 1-63 of a-z, 0-9 and '-', starting alphanumeric")
        origin = f"{self.settings.instance}/{name}"
        tenant_key = new_key()
        signing_key = Ed25519PrivateKey.generate()
        try:
            with self._write_conn() as conn, conn.begin():
                tenant_id = repo.insert_tenant(
                    conn, name, self._clock(), self._master.wrap(tenant_key, "tenant", origin)
                )
                repo.insert_log(
                    conn, tenant_id, origin, wrap_signing_key(self._master, signing_key, origin),
                    signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), ZERO_HASH,
                )
        except IntegrityError:
            raise Conflict(f"tenant {name!r} already exists", tenant=name) from None
        return TenantInfo(name, origin, verifier_key(origin, signing_key.public_key()))

    def _tenant(self, name: str) -> _TenantContext:
        context = self._tenants.get(name)
        if context is not None:
            return context
        with self._read() as conn:
            row = repo.get_tenant(conn, name)
        if row is None:
            raise NotFound(f"no tenant {name!r}", tenant=name)
        context = _TenantContext(
            name=name, tenant_id=row.id, log_id=row.log_id, origin=row.origin,
            tenant_key=self._master.unwrap(bytes(row.wrapped_key), "tenant", row.origin),
            public_key=Ed25519PublicKey.from_public_bytes(bytes(row.public_key)),
            signing_key_wrapped=bytes(row.signing_key_wrapped),
        )
        self._tenants[name] = context
        return context

    def tenant_info(self, name: str) -> TenantInfo:
        context = self._tenant(name)
        with self._read() as conn:
            head = repo.get_log(conn, context.log_id)
        root = root_from_peaks(_split_peaks(bytes(head.peaks))) if head.size else EMPTY_ROOT
        return TenantInfo(name, context.origin, verifier_key(context.origin, context.public_key),
                          head.size, root.hex())

    def subject_handle(self, tenant: str, ref: str, *, create: bool = True) -> str:
        """The random handle standing for an outside customer reference in this tenant."""
        return self._subject_handles(self._tenant(tenant), {ref}, create=create)[ref]

    def _subject_handles(self, context: _TenantContext, refs: set[str], *, create: bool = True) -> dict[str, str]:
        """Handles for many references: from the cache, else one lookup; missing ones are created."""
        for ref in refs:
            if not ref or len(ref) > 256:
                raise InvalidInput("a subject reference must be 1-256 characters")
        macs = {subject_ref_mac(context.tenant_key, ref): ref for ref in refs}
        handles = {macs[mac]: context.subjects[mac] for mac in macs if mac in context.subjects}
        if len(handles) == len(macs):
            return handles
        with self._read() as conn:
            context.sync(repo.key_epoch(conn, context.log_id))
            found = repo.find_subjects(conn, context.tenant_id, list(macs))
        missing = {mac: ref for mac, ref in macs.items() if mac not in found}
        if missing and not create:
            raise NotFound("no such subject", tenant=context.name)
        if missing:
            made = {mac: "sub_" + os.urandom(12).hex() for mac in missing}
            try:
                with self._write_conn() as conn, conn.begin():
                    for mac, handle in made.items():
                        repo.insert_subject(conn, context.tenant_id, handle, mac, self._clock())
            except IntegrityError:  # some were created concurrently by another writer: use theirs
                with self._read() as conn:
                    made = repo.find_subjects(conn, context.tenant_id, list(missing))
                if len(made) != len(missing):
                    raise Conflict("subjects are being created concurrently; retry") from None
            found |= made
        context.subjects.update(found)
        return {macs[mac]: handle for mac, handle in found.items()}

    def forget_subject_ref(self, tenant: str, ref: str) -> str:
        """Delete the mapping from a reference to its handle: the only link to the person."""
        context = self._tenant(tenant)
        with self._write_conn() as conn, conn.begin():
            handle = repo.delete_subject(conn, context.tenant_id, subject_ref_mac(context.tenant_key, ref))
            repo.bump_key_epoch(conn, context.log_id)
        context.invalidate()
        if handle is None:
            raise NotFound("no such subject", tenant=tenant)
        return handle

    # ------------------------------------------------------------------ data keys

    def _data_key(self, context: _TenantContext, key_id: str) -> bytes | None:
        """A data key by id, None once destroyed. Callers sync the context's epoch first."""
        key = context.data_keys.get(key_id)
        if key is not None:
            return key
        with self._read() as conn:
            row = repo.get_data_key(conn, context.tenant_id, key_id)
        if row is None or row.wrapped is None:
            return None
        key = open_envelope(context.tenant_key, bytes(row.wrapped), _data_key_aad(key_id))
        context.data_keys[key_id] = key
        return key

    def _current_data_key(self, context: _TenantContext, subject: str) -> tuple[str, bytes]:
        cached = context.current_keys.get(subject)
        if cached is not None and cached in context.data_keys:
            return cached, context.data_keys[cached]
        with self._read() as conn:
            context.sync(repo.key_epoch(conn, context.log_id))
            row = repo.current_data_key(conn, context.tenant_id, subject)
        if row is not None and row.wrapped is not None:
            key = self._data_key(context, row.key_id)
            assert key is not None
            context.current_keys[subject] = row.key_id
            return row.key_id, key
        return self._new_data_key(context, subject, 1 if row is None else row.version + 1)

    def _new_data_key(self, context: _TenantContext, subject: str, version: int,
                      *, rotation: bool = False) -> tuple[str, bytes]:
        key_id, key = new_data_key_id(), new_key()
        wrapped = seal(context.tenant_key, key, _data_key_aad(key_id))
        try:
            with self._write_conn() as conn, conn.begin():
                repo.insert_data_key(conn, key_id, context.tenant_id, subject, version, wrapped, self._clock())
                if rotation:  # every process must move to the new version
                    repo.bump_key_epoch(conn, context.log_id)
        except IntegrityError:  # another writer made this version first
            context.current_keys.pop(subject, None)
            return self._current_data_key(context, subject)
        if rotation:
            context.invalidate()  # refilled, with the new epoch, on next use
            return key_id, key
        context.data_keys[key_id] = key
        context.current_keys[subject] = key_id
        return key_id, key

    def rotate_data_key(self, tenant: str, subject: str | None) -> str:
        """Start a new key version for a subject; older versions still decrypt older entries."""
        context = self._tenant(tenant)
        subject_key = subject or _NO_SUBJECT
        with self._read() as conn:
            row = repo.current_data_key(conn, context.tenant_id, subject_key)
        return self._new_data_key(context, subject_key, 1 if row is None else row.version + 1, rotation=True)[0]

    def destroy_data_keys(self, tenant: str, subject: str) -> list[str]:
        """Crypto-shredding: the subject's content is gone for good; every proof still verifies."""
        context = self._tenant(tenant)
        with self._write_conn() as conn, conn.begin():
            destroyed = repo.destroy_data_keys(conn, context.tenant_id, subject, self._clock())
            repo.bump_key_epoch(conn, context.log_id)
        context.invalidate()
        return destroyed

    # ------------------------------------------------------------------ appending

    def append(self, tenant: str, entry: NewEntry) -> Receipt:
        return self.append_batch(tenant, [entry])[0]

    def append_batch(self, tenant: str, entries: Sequence[NewEntry]) -> list[Receipt]:
        """Append entries atomically, in order; returns only after the commit is durable."""
        if not entries:
            return []
        for index, entry in enumerate(entries):
            self.check(entry, index if len(entries) > 1 else None)
        return self._append_checked(tenant, entries)

    def append_future(self, tenant: str, entries: Sequence[NewEntry]) -> Future[list[Receipt]]:
        """`append_batch` for an event loop: check now, commit in the background, never block.

        Raises at once what `check` raises. The entries then wait for the background appender,
        which commits them atomically, in one transaction with whatever else was queued meanwhile;
        the Future completes (with the receipts, or the error) only after that commit is durable.
        """
        entries = list(entries)
        for index, entry in enumerate(entries):
            self.check(entry, index if len(entries) > 1 else None)
        return self._background.submit(tenant, entries)

    def _append_checked(self, tenant: str, entries: Sequence[NewEntry]) -> list[Receipt]:
        if not entries:
            return []
        context = self._tenant(tenant)
        refs = {entry.subject_ref for entry in entries if entry.subject_ref}
        for _attempt in range(3):
            handles = self._subject_handles(context, refs) if refs else {}
            handles_epoch = context.epoch
            prepared = [self._prepare(context, entry, handles) for entry in entries]
            if handles and context.epoch != handles_epoch:  # keys re-read at a newer epoch than the handles
                context.invalidate()
                continue
            try:
                return self._committer.submit(context.log_id, prepared)
            except _StaleKeys:
                context.invalidate()
        raise Conflict("subject mappings or keys kept changing while appending; retry")

    def check(self, entry: NewEntry, index: int | None = None) -> None:
        """Raise `InvalidInput` if `entry` cannot be appended; `index` names it within a batch."""
        where = "" if index is None else f"entry {index}: "
        if entry.kind not in KINDS:
            raise InvalidInput(f"{where}unknown kind {entry.kind!r}; one of {', '.join(sorted(KINDS))}")
        if entry.channel is not None and entry.channel not in CHANNELS:
            raise InvalidInput(f"{where}unknown channel {entry.channel!r}; one of {', '.join(sorted(CHANNELS))}")
        if entry.case is not None and not _CASE.match(entry.case):
            raise InvalidInput(f"{where}case id must be 1-128 of letters, digits and . _ : -")
        if not _ACTOR.match(entry.actor):
            raise InvalidInput(f"{where}actor must look like user:ID or service:ID")
        if entry.content is not None and len(entry.content) > self.settings.max_content_bytes:
            raise TooLarge(
                f"{where}content is {len(entry.content)} bytes; the limit is {self.settings.max_content_bytes}",
                limit=self.settings.max_content_bytes,
            )
        meta = plain_json(dict(entry.meta)) if isinstance(entry.meta, Mapping) else None
        if meta is None:
            raise InvalidInput(f"{where}meta must be an object of strings, integers, booleans and nulls "
                               "(no floats: their text form is not portable)")
        if len(meta) > 4096:
            raise InvalidInput(f"{where}meta is limited to 4 KiB of clear, non-personal metadata")

    def _prepare(self, context: _TenantContext, entry: NewEntry, handles: Mapping[str, str]) -> _Prepared:
        random = os.urandom(16 + _SALT_SIZE)  # one system call for the id and the salt
        entry_id = _uuid4(random[:16])
        subject = handles[entry.subject_ref] if entry.subject_ref else None
        key_id = envelope = ct = commit = None
        if entry.content is not None:
            key_id, key = self._current_data_key(context, subject or _NO_SUBJECT)
            salt = random[16:]
            envelope = seal(key, salt + entry.content, content_aad(context.origin, entry_id, key_id))
            ct = hashlib.sha256(envelope).hexdigest()
            if entry.commit if entry.commit is not None else entry.kind == "document":
                commit = hashlib.sha256(salt + entry.content).hexdigest()
        return _Prepared(entry_id, entry.kind, entry.actor, entry.case, entry.channel, subject, key_id,
                         envelope, ct, commit, dict(entry.meta), context.epoch)

    def _write(self, log_id: int, items: list[_Prepared]) -> list[Receipt]:
        """Sequence and commit `items` in one transaction, under the log's lock."""
        with self._writers, self._write_conn() as conn, conn.begin():
            cases = {item.case for item in items if item.case is not None}
            head, heads = repo.lock_log(conn, log_id, cases)
            if any(item.epoch != head.key_epoch for item in items if item.subject or item.key_id):
                raise _StaleKeys()
            size, prev, last_time = head.size, head.head_hash, head.head_time
            peaks = _split_peaks(bytes(head.peaks))
            now = max(self._clock(), last_time)
            entry_rows: list[tuple[Any, ...]] = []
            node_rows: list[tuple[int, int, bytes]] = []
            receipts: list[Receipt] = []
            for item in items:
                header = {
                    "v": HEADER_VERSION, "log": head.origin, "seq": size, "id": item.entry_id, "time": now,
                    "kind": item.kind, "actor": item.actor, "case": item.case,
                    "case_prev": heads.get(item.case) if item.case is not None else None,
                    "channel": item.channel, "subject": item.subject, "key": item.key_id, "ct": item.ct,
                    "commit": item.commit, "meta": item.meta, "prev": prev,
                }
                header_bytes = encode_header(header)
                digest = leaf_hash(header_bytes)
                prev = digest.hex()
                if item.case is not None:
                    heads[item.case] = prev
                entry_rows.append((log_id, size, item.entry_id, item.kind, item.case, item.subject, item.key_id,
                                   header_bytes, digest, item.envelope))
                first = stored_hash_index(0, size)
                for offset, node in enumerate(append_leaf(peaks, size, digest)):
                    node_rows.append((log_id, first + offset, node))
                receipts.append(Receipt(head.origin, size, prev, header, header_bytes))
                size += 1
            repo.write_appended(conn, log_id, repo.LogHead(size, prev, now, b"".join(peaks), head.origin,
                                                           head.key_epoch),
                                entry_rows, node_rows, {case: heads[case] for case in cases})
        self._checkpointer.nudge()
        if self.on_commit is not None:
            try:
                self.on_commit(len(receipts))
            except Exception:  # the entries are committed: a failing metrics hook must not say otherwise
                logging.getLogger("caseledger.ledger").exception("on_commit hook failed")
        return receipts

    # ------------------------------------------------------------------ reading

    def read(self, tenant: str, seq: int, *, decrypt: bool = True) -> ReadEntry:
        """An entry's header, and its decrypted content when `decrypt` (None once erased)."""
        context = self._tenant(tenant)
        with self._read() as conn:
            row = repo.read_entry(conn, context.log_id, seq)
            if decrypt:
                context.sync(repo.key_epoch(conn, context.log_id))
        if row is None:
            raise NotFound(f"log {context.origin} has no entry {seq}", seq=seq)
        return self._open(context, row, decrypt)

    def read_case(self, tenant: str, case: str, *, decrypt: bool = True) -> list[tuple[int, ReadEntry]]:
        """Every entry of a case, across channels, in log order."""
        context = self._tenant(tenant)
        with self._read() as conn:
            rows = repo.case_entries(conn, context.log_id, case)
            if decrypt:
                context.sync(repo.key_epoch(conn, context.log_id))
        return [(int(row.seq), self._open(context, row, decrypt)) for row in rows]

    def _open(self, context: _TenantContext, row: Any, decrypt: bool) -> ReadEntry:
        header = canonical_header(bytes(row.header))
        digest = bytes(row.entry_hash).hex()
        if row.envelope is None or not decrypt:
            return ReadEntry(header, digest, None, None, False)
        envelope = bytes(row.envelope)
        if hashlib.sha256(envelope).hexdigest() != header["ct"]:
            raise DecryptionError()
        key = self._data_key(context, row.key_id)
        if key is None:
            return ReadEntry(header, digest, None, None, True)
        plain = open_envelope(key, envelope, content_aad(context.origin, header["id"], row.key_id))
        return ReadEntry(header, digest, plain[_SALT_SIZE:], plain[:_SALT_SIZE], False)

    def headers(self, tenant: str, after: int = -1, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        """A page of (seq, entry hash, header) after `after`, in seq order."""
        context = self._tenant(tenant)
        with self._read() as conn:
            rows = repo.entries_page(conn, context.log_id, after + 1, limit)
        return [(row.seq, bytes(row.entry_hash).hex(), canonical_header(bytes(row.header))) for row in rows]

    # ------------------------------------------------------------------ tree, proofs, checkpoints

    def _size(self, conn: Connection, context: _TenantContext) -> int:
        return int(repo.get_log(conn, context.log_id).size)

    def _with_nodes(self, context: _TenantContext, size: int | None, what: str,
                    compute: Callable[[int, HashReader], _T]) -> tuple[int, _T]:
        """Run a pure computation over the stored tree of `size` (default: current) with one query.

        The computation runs twice: first with a reader that only records which stored hashes it
        wants, then on the result of one query for all of them (STYLE §1). A size beyond the log
        shows up as a missing hash — nodes are written with their entries — so the log's size is
        read only then, or when no size is given.
        """
        with self._read() as conn:
            if size is None:
                size = self._size(conn, context)
            elif size < 0:
                raise InvalidInput(f"{what} must not be negative")
            tree_size = size
            needed: set[int] = set()

            def collect(indexes: Sequence[int]) -> list[bytes]:
                needed.update(indexes)
                return [bytes(HASH_SIZE)] * len(indexes)

            compute(tree_size, collect)
            found = repo.read_nodes(conn, context.log_id, sorted(needed))
            if len(found) < len(needed):
                current = self._size(conn, context)
                if tree_size > current:
                    raise NotFound(f"{what} {tree_size} is beyond the log, which has {current} entries",
                                   size=current)
                raise NotFound(f"stored tree of {context.origin} lacks node {min(needed - set(found))}")

        def read_hashes(indexes: Sequence[int]) -> list[bytes]:
            return [found[index] for index in indexes]

        return tree_size, compute(tree_size, read_hashes)

    def prove_inclusion(self, tenant: str, seq: int, size: int | None = None) -> dict[str, Any]:
        context = self._tenant(tenant)

        def compute(size: int, read: HashReader) -> tuple[list[bytes], bytes, bytes]:
            if not 0 <= seq < size:
                raise NotFound(f"entry {seq} is not in the tree of size {size}", seq=seq)
            return inclusion_proof(seq, size, read), read([stored_hash_index(0, seq)])[0], tree_hash(size, read)

        size, (proof, leaf, root) = self._with_nodes(context, size, "size", compute)
        return {"log": context.origin, "leaf_index": seq, "tree_size": size, "leaf_hash": leaf.hex(),
                "root": root.hex(), "proof": [p.hex() for p in proof]}

    def prove_consistency(self, tenant: str, first: int, second: int | None = None) -> dict[str, Any]:
        context = self._tenant(tenant)

        def compute(second: int, read: HashReader) -> tuple[list[bytes], bytes, bytes]:
            if not 1 <= first <= second:
                raise InvalidInput("a consistency proof needs 1 <= first <= second (RFC 9162 §2.1.4)")
            return consistency_proof(first, second, read), tree_hash(first, read), tree_hash(second, read)

        second, (proof, first_root, second_root) = self._with_nodes(context, second, "second", compute)
        return {"log": context.origin, "first": first, "second": second, "first_root": first_root.hex(),
                "second_root": second_root.hex(), "proof": [p.hex() for p in proof]}

    def prove_range(self, tenant: str, start: int, end: int, size: int | None = None) -> dict[str, Any]:
        context = self._tenant(tenant)

        def compute(size: int, read: HashReader) -> tuple[tuple[list[bytes], list[bytes]], list[bytes], bytes]:
            if not 0 <= start < end <= size:
                raise InvalidInput(f"a range needs 0 <= start < end <= size ({size})")
            if end - start > MAX_RANGE:
                raise InvalidInput(f"a range proof covers at most {MAX_RANGE} entries")
            leaves = read([stored_hash_index(0, seq) for seq in range(start, end)])
            return range_proof(start, end, size, read), leaves, tree_hash(size, read)

        size, ((left, right), leaves, root) = self._with_nodes(context, size, "size", compute)
        return {"log": context.origin, "start": start, "end": end, "tree_size": size, "root": root.hex(),
                "entry_hashes": [h.hex() for h in leaves], "left": [h.hex() for h in left],
                "right": [h.hex() for h in right]}

    def _signing_key(self, context: _TenantContext) -> Ed25519PrivateKey:
        if context.signing_key is None:
            context.signing_key = unwrap_signing_key(self._master, context.signing_key_wrapped, context.origin)
        return context.signing_key

    def checkpoint(self, tenant: str) -> str:
        """Sign the current tree head and keep it: later rollbacks are measured against it."""
        return self._checkpoint(self._tenant(tenant))[1]

    def _checkpoint(self, context: _TenantContext) -> tuple[int, str]:
        with self._read() as conn:
            head = repo.get_log(conn, context.log_id)
        root = root_from_peaks(_split_peaks(bytes(head.peaks))) if head.size else EMPTY_ROOT
        note = sign_checkpoint(Checkpoint(context.origin, head.size, root), self._signing_key(context))
        with self._write_conn() as conn, conn.begin():
            repo.insert_checkpoint(conn, context.log_id, head.size, root, note, self._clock())
        return head.size, note

    def receipt(self, tenant: str, seq: int) -> dict[str, Any]:
        """A self-contained proof that entry `seq` is in the log: header, inclusion proof, checkpoint."""
        context = self._tenant(tenant)
        with self._read() as conn:
            row = repo.read_entry(conn, context.log_id, seq)
        if row is None:
            raise NotFound(f"log {context.origin} has no entry {seq}", seq=seq)
        size, note = self._checkpoint(context)
        proof = self.prove_inclusion(tenant, seq, size)
        return {
            "v": 1, "type": "caseledger.receipt", "log": context.origin, "seq": seq,
            "entry_hash": bytes(row.entry_hash).hex(), "header": canonical_header(bytes(row.header)),
            "inclusion": {"tree_size": proof["tree_size"], "proof": proof["proof"]},
            "checkpoint": note, "vkey": verifier_key(context.origin, context.public_key),
        }

    def verify_log(self, tenant: str, *, workers: int | None = None) -> dict[str, Any]:
        """Re-verify the whole stored log; raises `VerificationError` naming the first bad seq.

        Large logs are verified by several processes (`workers`, default: by size and cores).
        """
        context = self._tenant(tenant)
        with self._snapshot() as conn:
            return verify_stored_log(conn, context.log_id, context.origin, context.public_key,
                                     url=self.engine.url.render_as_string(hide_password=False), workers=workers)

    def _snapshot(self) -> Connection:
        """A read connection whose queries all see one snapshot (REPEATABLE READ on PostgreSQL)."""
        conn = self.engine.connect()
        if is_sqlite(conn):
            return conn.execution_options(**SNAPSHOT)
        return conn.execution_options(isolation_level="REPEATABLE READ")


def _uuid4(random: bytes | None = None) -> str:
    """A random (version 4) UUID, lowercase: what `str(uuid.uuid4())` gives, several times faster.

    `random` is 16 fresh random bytes, if the caller already has them.
    """
    raw = bytearray(os.urandom(16) if random is None else random)
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def canonical_header(data: bytes) -> dict[str, Any]:
    """The stored header bytes as a dict (they were validated when written)."""
    value: dict[str, Any] = json.loads(data)
    return value


def _data_key_aad(key_id: str) -> bytes:
    return wrap_aad("data", key_id)


def _split_peaks(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]

