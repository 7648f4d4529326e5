"""Reading entries: one entry, a case's timeline across channels, pages of headers.

Content is decrypted only when asked; an entry whose data key was destroyed reads as erased.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Engine

from ledger.connections import reading
from ledger.datakeys import DataKeys
from ledger.envelope import SALT_SIZE, content_aad, open_envelope
from ledger.errors import DecryptionError, NotFound
from ledger.repository import entries as repo
from ledger.repository.tenants import key_epoch
from ledger.tenants import TenantContext, Tenants

__all__ = ["ReadEntry", "Reads", "ct_names_envelope", "stored_header"]

@dataclass(frozen=True)
class ReadEntry:
    seq: int
    header: dict[str, Any]
    entry_hash: str
    #: None when the entry has no content, was read without decrypting, or is `erased`
    content: bytes | None
    salt: bytes | None
    #: its data key was destroyed (crypto-shredding): the content is gone for good
    erased: bool
    #: the header's stored RFC 8785 bytes, exactly as hashed (where the read had them at hand)
    header_bytes: bytes | None = field(default=None, repr=False, compare=False)


def ct_names_envelope(header: dict[str, Any]) -> bool:
    """Whether the header's `ct` is the hash of the entry's stored envelope. A document's `ct` names
    its blob in the blob store instead (DESIGN §8); its envelope, holding the file's salt, name and
    media type, is authenticated by AES-GCM under its (log, id, key) alone."""
    return bool(header["kind"] != "document")


def stored_header(data: bytes) -> dict[str, Any]:
    """A header as stored (RFC 8785 bytes, checked when written) as a dict; no check again."""
    value: dict[str, Any] = json.loads(data)
    return value


class _PagedRow(NamedTuple):
    """A row of `repo.entry_pages`, with the names `Reads._open` reads."""

    seq: int
    entry_id: str
    kind: str
    case_id: str | None
    subject: str | None
    key_id: str | None
    header: bytes
    entry_hash: bytes
    envelope: bytes | None


class Reads:
    def __init__(self, engine: Engine, tenants: Tenants, data_keys: DataKeys) -> None:
        self._engine = engine
        self._tenants = tenants
        self._data_keys = data_keys

    def entry(self, tenant: str, seq: int, *, decrypt: bool = True) -> ReadEntry:
        """An entry's header, and its decrypted content when `decrypt` (None once erased)."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            row = repo.read_entry(conn, context.log_id, seq)
            if decrypt:
                context.sync(key_epoch(conn, context.log_id))
        if row is None:
            raise NotFound(f"no entry {seq}", seq=seq)
        return self._open(context, row, decrypt)

    def case(self, tenant: str, case: str, *, decrypt: bool = True) -> list[ReadEntry]:
        """Every entry of a case, across channels, in log order (empty for an unknown case)."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            rows = repo.case_entries(conn, context.log_id, case)
            if decrypt:
                context.sync(key_epoch(conn, context.log_id))
        return [self._open(context, row, decrypt) for row in rows]

    def headers(self, tenant: str, after: int = -1, limit: int = 100) -> list[ReadEntry]:
        """A page of entries (headers only) after `after`, in seq order."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            rows = repo.entries_page(conn, context.log_id, after + 1, limit)
        return [ReadEntry(int(row.seq), stored_header(bytes(row.header)), bytes(row.entry_hash).hex(), None, None,
                          False) for row in rows]

    def span(self, tenant: str, start: int, end: int, *, decrypt: bool = True) -> Iterator[ReadEntry]:
        """Entries [start, end) in order, read a page at a time over one snapshot (for exports)."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            if decrypt:
                context.sync(key_epoch(conn, context.log_id))
            for page in repo.entry_pages(conn, context.log_id, start, end):
                for row in page:
                    yield self._open(context, _PagedRow(*row), decrypt)

    def of_subject(self, tenant: str, subject: str, *, decrypt: bool = True) -> Iterator[ReadEntry]:
        """Every entry of the subject with handle `subject`, in order, a page at a time."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            if decrypt:
                context.sync(key_epoch(conn, context.log_id))
            for row in repo.subject_entries(conn, context.log_id, subject):
                yield self._open(context, row, decrypt)

    def seq_at(self, tenant: str, time: str) -> int:
        """The first seq whose header time is at or after `time` (a header time; the log's size if
        none is): entry times never decrease, so a binary search over stored headers finds it."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            low, high = 0, repo.count_entries(conn, context.log_id)
            while low < high:
                middle = (low + high) // 2
                row = repo.read_entry(conn, context.log_id, middle)
                if row is None or stored_header(bytes(row.header))["time"] >= time:
                    high = middle
                else:
                    low = middle + 1
        return low

    def _open(self, context: TenantContext, row: Any, decrypt: bool) -> ReadEntry:
        raw = bytes(row.header)
        header = stored_header(raw)
        digest = bytes(row.entry_hash).hex()
        seq = int(row.seq)
        if row.envelope is None or not decrypt:
            return ReadEntry(seq, header, digest, None, None, False, raw)
        envelope = bytes(row.envelope)
        if ct_names_envelope(header) and hashlib.sha256(envelope).hexdigest() != header["ct"]:
            raise DecryptionError()
        key = self._data_keys.get(context, row.key_id)
        if key is None:
            return ReadEntry(seq, header, digest, None, None, True, raw)
        plain = open_envelope(key, envelope, content_aad(context.origin, header["id"], row.key_id))
        return ReadEntry(seq, header, digest, plain[SALT_SIZE:], plain[:SALT_SIZE], False, raw)
