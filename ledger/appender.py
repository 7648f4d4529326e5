"""Appending (DESIGN §5): check, prepare (encrypt), then sequence and commit in groups.

Content is encrypted before the log is locked; only numbering, time and the two chain links are
assigned under the lock. Appends arriving together share one transaction (group commit), and an
append returns only after its commit is durable.
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
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ledger.cases import CaseRule, apply_entry, staff_of
from ledger.connections import reading, writing
from ledger.datakeys import NO_SUBJECT, DataKeys
from ledger.db import WalCheckpointer, WriterLock
from ledger.envelope import SALT_SIZE, content_aad, seal
from ledger.errors import Conflict, FormatError, InvalidInput, PolicyViolation, TooLarge
from ledger.groupcommit import BackgroundBatcher, GroupCommitter
from ledger.reads import stored_header
from ledger.repository import checkpoints as checkpoint_repo
from ledger.repository import entries as repo
from ledger.repository.tenants import key_epoch
from ledger.subjects import Subjects
from ledger.tenants import TenantContext, Tenants
from ledger.tree import stored_hash_index
from verification.compact import CompactRange
from verification.entry import (
    ACTOR_RE,
    CASE_RE,
    CHANNELS,
    HEADER_VERSION,
    KINDS,
    MAX_JSON_DEPTH,
    canonical_json,
    encode_header,
    json_depth,
    plain_json,
)
from verification.merkle import leaf_hash

__all__ = ["ANCHOR_ACTOR", "AUDIT_ACTOR", "MAX_META_BYTES", "RECORD_KINDS", "Appended", "Appender", "NewEntry",
           "Preset"]

#: clear metadata per entry: small and non-personal
MAX_META_BYTES = 4096
#: `anchor` entries record anchoring rounds (`ledger.anchoring`): only that service writes them
ANCHOR_ACTOR = "service:anchor"
#: the self-audit's actor, the only one that writes `audit` entries
AUDIT_ACTOR = "service:audit"
#: compliance records (DESIGN §10): written only together with their record's row (`NewEntry.with_entry`)
RECORD_KINDS = frozenset({"policy", "hold", "erasure", "export"})
#: a header, with meta inside it, nests at most MAX_JSON_DEPTH levels
_MAX_META_DEPTH = MAX_JSON_DEPTH - 1
_log = logging.getLogger("caseledger.ledger")


class Preset(NamedTuple):
    """What the documents module fixes before appending (DESIGN §8): the entry's id and data key, which
    its blob is already sealed under, and the header's `ct` and `commit`, of the blob and of the file."""

    entry_id: str
    key_id: str
    ct: str
    commit: str


@dataclass(frozen=True)
class NewEntry:
    """What a caller asks to log. Personal data goes only in `content`, which is encrypted."""

    kind: str
    content: bytes | None = None
    channel: str | None = None
    case: str | None = None
    subject_ref: str | None = None
    #: the subject's handle itself, for a record about a subject whose reference is not at hand (an
    #: erasure carried out later); never with content, and never together with `subject_ref`
    subject: str | None = None
    actor: str = "service:caseledger"
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: make a salted commitment to the content (DESIGN §2: on every entry with content, unless False)
    commit: bool | None = None
    #: what the author must be to the case, checked under the log lock (`ledger.cases`)
    case_rule: CaseRule | None = None
    #: an id, key, `ct` and `commit` fixed by the caller (documents); `content` is then sealed under that key
    preset: Preset | None = None
    #: run in the entry's own transaction, given its seq: a row that must exist exactly when the entry
    #: does (a document's index row); if it raises, the entry is not written
    with_entry: Callable[[Connection, int], None] | None = None
    #: sign a checkpoint of the tree the entry's transaction leaves, in that transaction, and return it
    #: in `Appended.checkpoint` (a receipt without a second write: a document's upload)
    checkpoint: bool = False


class Appended(NamedTuple):
    """What an append returns: where the entry went and the header it was given (immutable)."""

    log: str
    seq: int
    entry_hash: str
    header: dict[str, Any]
    #: the header's RFC 8785 bytes, as hashed
    header_bytes: bytes = b""
    #: with `NewEntry.checkpoint`: (size, root, signed note) of the tree its transaction committed
    checkpoint: tuple[int, bytes, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"log": self.log, "seq": self.seq, "entry_hash": self.entry_hash, "header": self.header}

    def as_json(self) -> bytes:
        """`as_dict` as JSON, with the header's own bytes spliced in rather than encoded again."""
        header = self.header_bytes or canonical_json(self.header)
        return b'{"log":%b,"seq":%d,"entry_hash":"%b","header":%b}' % (
            json.dumps(self.log).encode(), self.seq, self.entry_hash.encode(), header)


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
    case_rule: CaseRule | None
    with_entry: Callable[[Connection, int], None] | None
    #: signs a checkpoint of (size, root) for the log, when the entry asks for one
    sign: Callable[[int, bytes], str] | None


class _StaleKeys(Exception):
    """A subject mapping or data key cached by this process was changed elsewhere: prepare again."""


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_HANDLE = re.compile(r"[A-Za-z0-9_-]{8,64}\Z")


def _valid_preset(entry: NewEntry) -> bool:
    preset = entry.preset
    return (preset is not None and entry.content is not None and isinstance(preset.key_id, str)
            and all(isinstance(v, str) for v in preset) and bool(_UUID.match(preset.entry_id))
            and bool(_HEX64.match(preset.ct)) and bool(_HEX64.match(preset.commit)))


def _uuid4(random: bytes) -> str:
    """A random (version 4) UUID from 16 fresh random bytes: what `str(uuid.uuid4())` gives, faster."""
    raw = bytearray(random)
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Appender:
    def __init__(self, engine: Engine, tenants: Tenants, subjects: Subjects, data_keys: DataKeys,
                 clock: Callable[[], str], max_content_bytes: int) -> None:
        self._engine = engine
        self._tenants = tenants
        self._subjects = subjects
        self._data_keys = data_keys
        self._clock = clock
        self._max_content_bytes = max_content_bytes
        self._committer: GroupCommitter[_Prepared, Appended] = GroupCommitter(self._write)
        self._writers = WriterLock(engine)
        self._checkpointer = WalCheckpointer(engine)
        self._background: BackgroundBatcher[str, NewEntry, Appended] = BackgroundBatcher(self._append_checked)
        #: called after each append transaction commits, with its number of entries (metrics hook)
        self.on_commit: Callable[[int], None] | None = None

    @property
    def commits(self) -> int:
        """Append transactions committed by this process (a gauge of how well appends are grouped)."""
        return self._committer.commits

    def close(self) -> None:
        """Finish what is queued for the background appender, then release the locks."""
        self._background.close()
        self._checkpointer.close()
        self._writers.close()

    def append(self, tenant: str, entry: NewEntry) -> Appended:
        return self.append_batch(tenant, [entry])[0]

    def append_batch(self, tenant: str, entries: Sequence[NewEntry]) -> list[Appended]:
        """Append entries atomically, in order; returns only after the commit is durable."""
        if not entries:
            return []
        for index, entry in enumerate(entries):
            self.check(entry, index if len(entries) > 1 else None)
        return self._append_checked(tenant, entries)

    def append_future(self, tenant: str, entries: Sequence[NewEntry]) -> Future[list[Appended]]:
        """`append_batch` for an event loop: check now, commit in the background, never block.

        Raises at once what `check` raises. The entries then wait for the background appender,
        which commits them atomically, in one transaction with whatever else was queued meanwhile;
        the Future completes (with the receipts, or the error) only after that commit is durable.
        """
        entries = list(entries)
        for index, entry in enumerate(entries):
            self.check(entry, index if len(entries) > 1 else None)
        return self._background.submit(tenant, entries)

    def check(self, entry: NewEntry, index: int | None = None) -> None:
        """Raise `InvalidInput` if `entry` cannot be appended; `index` names it within a batch."""
        where = "" if index is None else f"entry {index}: "
        # types first: a list or a number (from a JSONL line) is neither hashable nor measurable
        if not isinstance(entry.kind, str) or entry.kind not in KINDS:
            shown = repr(entry.kind) if isinstance(entry.kind, str) else "(not a string)"
            raise InvalidInput(f"{where}unknown kind {shown}; one of {', '.join(sorted(KINDS))}")
        if entry.channel is not None and (not isinstance(entry.channel, str) or entry.channel not in CHANNELS):
            shown = repr(entry.channel) if isinstance(entry.channel, str) else "(not a string)"
            raise InvalidInput(f"{where}unknown channel {shown}; one of {', '.join(sorted(CHANNELS))}")
        if entry.case is not None and (not isinstance(entry.case, str) or not CASE_RE.match(entry.case)):
            raise InvalidInput(f"{where}case id must be 1-128 of letters, digits and . _ : -")
        if entry.subject_ref is not None:  # here, not only when the batch is written: a bad line is named
            Subjects.check_ref(entry.subject_ref, where)
        if not isinstance(entry.actor, str) or not ACTOR_RE.match(entry.actor):
            raise InvalidInput(f"{where}actor must look like user:ID or service:ID")
        if entry.preset is not None and not _valid_preset(entry):
            raise InvalidInput(f"{where}a preset needs content, a lowercase UUID entry id and hex ct and commit")
        if entry.kind == "document" and entry.preset is None:
            raise InvalidInput(f"{where}kind 'document' is made by uploading the file (ledger.documents), whose "
                               "header's ct then names the stored blob")
        if entry.kind == "anchor" and entry.actor != ANCHOR_ACTOR:
            raise InvalidInput(f"{where}kind 'anchor' is written by the anchoring service ({ANCHOR_ACTOR}) only")
        if entry.subject is not None and (entry.subject_ref is not None or entry.content is not None
                                          or not isinstance(entry.subject, str) or not _HANDLE.match(entry.subject)):
            raise InvalidInput(f"{where}a subject handle is given alone, on an entry without content")
        if entry.kind in RECORD_KINDS and entry.with_entry is None:
            raise InvalidInput(f"{where}kind {entry.kind!r} is a compliance record: it is written by the service "
                               "that keeps the record (compliance), with its row")
        if entry.kind == "audit" and entry.actor != AUDIT_ACTOR:
            raise InvalidInput(f"{where}kind 'audit' is written by the self-audit ({AUDIT_ACTOR}) only")
        if entry.content is not None and len(entry.content) > self._max_content_bytes:
            raise TooLarge(f"{where}content is {len(entry.content)} bytes; the limit is {self._max_content_bytes}",
                           limit=self._max_content_bytes)
        if not isinstance(entry.meta, Mapping):
            raise InvalidInput(f"{where}meta must be an object")
        if json_depth(entry.meta) > _MAX_META_DEPTH:
            raise InvalidInput(f"{where}meta nests deeper than {_MAX_META_DEPTH} levels (the header around it "
                               f"makes {MAX_JSON_DEPTH})", limit=_MAX_META_DEPTH)
        try:
            meta = plain_json(dict(entry.meta))
        except FormatError:
            raise InvalidInput(f"{where}meta holds text with a lone surrogate (not valid Unicode)") from None
        if meta is None:
            raise InvalidInput(f"{where}meta must be an object of strings, integers, booleans and nulls "
                               "(no floats: their text form is not portable)")
        if len(meta) > MAX_META_BYTES:
            raise InvalidInput(f"{where}meta is limited to 4 KiB of clear, non-personal metadata")

    def _append_checked(self, tenant: str, entries: Sequence[NewEntry]) -> list[Appended]:
        if not entries:
            return []
        context = self._tenants.get(tenant)
        refs = {entry.subject_ref for entry in entries if entry.subject_ref}
        handled = any(entry.subject is not None for entry in entries)
        for _attempt in range(3):
            if handled and not refs:  # nothing else reads the key epoch the header's handle is checked at
                with reading(self._engine) as conn:
                    context.sync(key_epoch(conn, context.log_id))
            handles = self._subjects.handles(context, refs) if refs else {}
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

    def _prepare(self, context: TenantContext, entry: NewEntry, handles: Mapping[str, str]) -> _Prepared:
        random = os.urandom(16 + SALT_SIZE)  # one system call for the id and the salt
        preset = entry.preset
        entry_id = _uuid4(random[:16]) if preset is None else preset.entry_id
        subject = handles[entry.subject_ref] if entry.subject_ref else entry.subject
        key_id = envelope = ct = commit = None
        if entry.content is not None:
            if preset is None:
                key_id, key = self._data_keys.current(context, subject or NO_SUBJECT)
            else:
                key_id, found = preset.key_id, self._data_keys.get(context, preset.key_id)
                if found is None:
                    raise Conflict("the data key was destroyed while the document was stored")
                key = found
            salt = random[16:]
            envelope = seal(key, salt + entry.content, content_aad(context.origin, entry_id, key_id))
            ct = hashlib.sha256(envelope).hexdigest()
            if preset is not None:
                ct, commit = preset.ct, preset.commit
            elif entry.commit is not False:
                commit = hashlib.sha256(salt + entry.content).hexdigest()
        return _Prepared(entry_id, entry.kind, entry.actor, entry.case, entry.channel, subject, key_id,
                         envelope, ct, commit, dict(entry.meta), context.epoch, entry.case_rule, entry.with_entry,
                         partial(self._tenants.sign, context) if entry.checkpoint else None)

    @staticmethod
    def _check_case_rule(item: _Prepared, staff: dict[str | None, set[str] | None], opens: bool) -> None:
        """Refuse an item its case's rule forbids; else fold it into the staff (it may open the
        case or assign someone) for the items after it."""
        agents = staff[item.case]
        if item.case_rule is not None and not (
                item.actor in agents if agents is not None else item.case_rule is CaseRule.STAFF_OR_NEW):
            raise PolicyViolation(f"case {item.case!r} is not assigned to this agent", case=item.case)
        staff[item.case] = apply_entry(None if opens else agents, item.actor, item.kind, item.meta)

    def _write(self, log_id: int, items: list[_Prepared]) -> list[Appended]:
        """Sequence and commit `items` in one transaction, under the log's lock."""
        with self._writers, writing(self._engine) as conn, conn.begin():
            cases = {item.case for item in items if item.case is not None}
            ruled = {item.case for item in items if item.case_rule is not None and item.case is not None}
            head, heads, stored_staff = repo.lock_log(conn, log_id, cases, ruled)
            if any(item.epoch != head.key_epoch for item in items if item.subject or item.key_id):
                raise _StaleKeys()
            staff: dict[str | None, set[str] | None] = {
                case: set(staff_of(map(stored_header, stored_staff[case])).agents) if case in stored_staff else None
                for case in ruled}
            size, prev, last_time = head.size, head.head_hash, head.head_time
            tree = CompactRange.from_bytes(size, head.peaks)
            now = max(self._clock(), last_time)
            entry_rows: list[tuple[Any, ...]] = []
            node_rows: list[tuple[int, int, bytes]] = []
            appended: list[Appended] = []
            with_entries: list[tuple[Callable[[Connection, int], None], int]] = []
            for item in items:
                case_prev = heads.get(item.case) if item.case is not None else None
                if item.case in staff:
                    self._check_case_rule(item, staff, case_prev is None)
                header = {
                    "v": HEADER_VERSION, "log": head.origin, "seq": size, "id": item.entry_id, "time": now,
                    "kind": item.kind, "actor": item.actor, "case": item.case, "case_prev": case_prev,
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
                for offset, node in enumerate(tree.append(digest)):
                    node_rows.append((log_id, first + offset, node))
                appended.append(Appended(head.origin, size, prev, header, header_bytes))
                if item.with_entry is not None:
                    with_entries.append((item.with_entry, size))
                size += 1
            repo.write_appended(conn, log_id, repo.LogHead(size, prev, now, tree.to_bytes(), head.origin,
                                                           head.key_epoch),
                                entry_rows, node_rows, {case: heads[case] for case in cases})
            for write, seq in with_entries:
                write(conn, seq)
            signer = next((item.sign for item in items if item.sign is not None), None)
            if signer is not None:
                root = tree.root()
                note = checkpoint_repo.insert_checkpoint(conn, log_id, size, root, signer(size, root), now)
                signed = (size, root, note)
                appended = [a._replace(checkpoint=signed) if item.sign is not None else a
                            for a, item in zip(appended, items, strict=True)]
        self._checkpointer.nudge()
        if self.on_commit is not None:
            try:
                self.on_commit(len(appended))
            except Exception:  # the entries are committed: a failing metrics hook must not say otherwise
                _log.exception("on_commit hook failed")
        return appended
