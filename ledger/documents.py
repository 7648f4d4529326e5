"""Documents (DESIGN §8): a file streamed into a segmented envelope in the blob store, entered as a
`document` entry, and read back as a stream.

An upload never holds the file: each chunk is hashed into the commitment SHA-256(salt ‖ file) and
sealed segment by segment (DESIGN §4) into a temporary blob, which is fsynced and linked into place
*before* the entry is appended (with its index row, in the entry's own transaction), all inside the
blob writer's lock. So a crash leaves, at worst, a blob without an entry (swept by `recover`), never
an entry without its blob. The entry's header carries
`ct` (SHA-256 of the stored envelope), `commit` and, in `meta`, only the size; the salt, title, file
name and media type are personal data and travel in the entry's own version-1 envelope, under the
same data key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ledger.anchoring import Anchoring
from ledger.appender import Appender, NewEntry, Preset
from ledger.blobs import BlobStore
from ledger.cases import CaseRule
from ledger.checkpoints import Checkpoints, SignedCheckpoint
from ledger.connections import reading, writing
from ledger.datakeys import NO_SUBJECT, DataKeys
from ledger.envelope import SALT_SIZE, SegmentSealer, content_aad, open_stream
from ledger.errors import DecryptionError, Gone, InvalidInput, NotFound, TooLarge
from ledger.reads import Reads
from ledger.repository import documents as repo
from ledger.subjects import Subjects
from ledger.tenants import Tenants
from verification.document_receipt import DocumentReceipt, check_document_name
from verification.entry import canonical_json
from verification.errors import FormatError

__all__ = ["DEFAULT_MAX_DOCUMENT_BYTES", "DocumentInfo", "DocumentRef", "Documents", "NewDocument", "safe_name",
           "sniff_media_type"]

DEFAULT_MAX_DOCUMENT_BYTES = 25 * 1024 * 1024
_MAX_NAME_BYTES = 255
_MAX_TITLE = 200
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\Z")
#: what a browser would run or render as a page: never recorded as declared, whatever the uploader says
_ACTIVE = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/javascript", "application/javascript",
                     "text/xml", "application/xml"})
#: magic bytes → media type (what is recorded when the file says what it is)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"{\\rtf", "application/rtf"),
)
#: zip containers: office documents are zip files, so a declared office type is kept for them
_ZIP_FAMILY = re.compile(
    r"application/(zip|vnd\.openxmlformats-officedocument\..+|vnd\.oasis\.opendocument\..+|epub\+zip)\Z")
_SNIFF_BYTES = 512


@dataclass(frozen=True)
class NewDocument:
    """What an uploader gives besides the bytes. `name` and `declared_type` are taken as hostile."""

    case: str
    title: str
    name: str
    declared_type: str | None = None
    subject_ref: str | None = None
    actor: str = "service:caseledger"
    channel: str = "api"
    #: what the uploader must be to the case, checked under the log lock (`ledger.cases`)
    case_rule: CaseRule | None = None


@dataclass(frozen=True)
class DocumentRef:
    """What the index and the header say of a document, without decrypting anything."""

    document_id: str
    seq: int
    case: str | None
    size: int


@dataclass(frozen=True)
class DocumentInfo:
    document_id: str
    seq: int
    case: str | None
    size: int
    name: str
    media_type: str
    declared_type: str | None
    title: str
    salt: bytes
    key_id: str
    origin: str


def safe_name(raw: str) -> str:
    """The file name to store for an uploader's `raw` name: its last path component, without control
    or format characters, leading dots or spaces, at most 255 UTF-8 bytes (keeping the extension);
    "document" when nothing is left. What it returns passes `check_document_name`."""
    base = re.split(r"[/\\]", raw)[-1] if isinstance(raw, str) else ""
    kept = "".join(c for c in unicodedata.normalize("NFC", base)
                   if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
    kept = kept.strip().lstrip(". ")
    stem, dot, ext = kept.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, dot, ext = kept, "", ""
    while len((stem + dot + ext).encode()) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    name = (stem.rstrip() + dot + ext) if stem.strip() else ""
    if name in ("", ".", ".."):
        name = "document" + (dot + ext if ext else "")
    try:
        return check_document_name(name)
    except FormatError:
        return "document"


def sniff_media_type(head: bytes, declared: str | None) -> str:
    """The media type to record: the file's own magic bytes when it has them (a declared type that
    contradicts them is not believed); else the declared type when it is well-formed and not one a
    browser would run; else text/plain for UTF-8 text and application/octet-stream otherwise."""
    claimed = declared.strip().lower().split(";")[0].strip() if isinstance(declared, str) else None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind == "application/zip" and claimed and _ZIP_FAMILY.match(claimed):
                return claimed
            return kind
    if claimed and _MEDIA_TYPE.match(claimed) and claimed not in _ACTIVE and not _claims_magic(claimed):
        return claimed
    try:
        head.decode("utf-8")
        text = b"\x00" not in head
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sniffed bytes
        text = exc.start >= len(head) - 3 and b"\x00" not in head
    return "text/plain" if text and head else "application/octet-stream"


def _claims_magic(claimed: str) -> bool:
    """A type whose files always start with known magic bytes (which these did not)."""
    return claimed in {kind for _, kind in _MAGIC}


class Documents:
    def __init__(self, engine: Engine, tenants: Tenants, subjects: Subjects, data_keys: DataKeys, appender: Appender,
                 reads: Reads, anchoring: Anchoring, checkpoints: Checkpoints, blobs: BlobStore, max_bytes: int,
                 clock: Callable[[], str]) -> None:
        self._engine = engine
        self._tenants = tenants
        self._subjects = subjects
        self._data_keys = data_keys
        self._appender = appender
        self._reads = reads
        self._anchoring = anchoring
        self._checkpoints = checkpoints
        self.blobs = blobs
        self.max_bytes = max_bytes
        self._clock = clock

    def upload(self, tenant: str, doc: NewDocument, chunks: Iterable[bytes]) -> DocumentReceipt:
        """Store `chunks` as a document of `doc.case`; returns its document receipt. `TooLarge` as soon
        as more than `max_bytes` arrive; nothing is left behind by any failure."""
        title = doc.title.strip() if isinstance(doc.title, str) else ""
        if not 1 <= len(title) <= _MAX_TITLE or any(unicodedata.category(c) == "Cc" for c in title):
            raise InvalidInput(f"title must be 1-{_MAX_TITLE} characters without control characters")
        name = safe_name(doc.name)
        if not doc.case:
            raise InvalidInput("a document belongs to a case")
        entry_id = str(uuid.uuid4())
        # case, channel, subject reference and actor are checked before a byte of the file is read
        self._appender.check(NewEntry(kind="document", content=b"", case=doc.case, channel=doc.channel,
                                      subject_ref=doc.subject_ref, actor=doc.actor,
                                      preset=Preset(entry_id, "-", "0" * 64, "0" * 64)))
        context = self._tenants.get(tenant)
        subject = self._subjects.handle(tenant, doc.subject_ref) if doc.subject_ref else None
        key_id, key = self._data_keys.current(context, subject or NO_SUBJECT)
        salt = os.urandom(SALT_SIZE)
        commitment = hashlib.sha256(salt)
        sealer = SegmentSealer(key, content_aad(context.origin, entry_id, key_id))
        size, head = 0, b""
        with self.blobs.writer(entry_id) as blob:
            blob.write(sealer.header())
            for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(f"the document is larger than the limit of {self.max_bytes} bytes",
                                   limit=self.max_bytes)
                commitment.update(chunk)
                if len(head) < _SNIFF_BYTES:
                    head += chunk[: _SNIFF_BYTES - len(head)]
                blob.write(sealer.update(chunk))
            blob.write(sealer.finish())
            stored = blob.commit()
            media_type = sniff_media_type(head, doc.declared_type)
            declared = doc.declared_type if isinstance(doc.declared_type, str) else None
            private = {"salt": salt.hex(), "name": name, "media_type": media_type, "title": title,
                       "declared_type": declared[:255] if declared else None}
            created_at = self._clock()

            def index(conn: Connection, seq: int) -> None:  # in the entry's own transaction
                repo.insert_document(conn, entry_id, context.log_id, seq, doc.case, size, created_at)

            entry = NewEntry(kind="document", content=canonical_json(private), channel=doc.channel, case=doc.case,
                             subject_ref=doc.subject_ref, actor=doc.actor, meta={"size": size},
                             case_rule=doc.case_rule, with_entry=index, checkpoint=True,
                             preset=Preset(entry_id, key_id, stored.sha256, commitment.hexdigest()))
            try:
                appended = self._appender.append(tenant, entry)
            except BaseException:
                self.blobs.delete(entry_id)  # the entry was not committed: its blob goes with it
                raise
        # against the checkpoint signed in the entry's own transaction: no second write for the receipt
        assert appended.checkpoint is not None
        receipt = self._checkpoints.receipt(tenant, appended.seq, SignedCheckpoint(*appended.checkpoint))
        return DocumentReceipt(entry_id, name, media_type, size, salt.hex(), receipt)

    def locate(self, tenant: str, document_id: str) -> DocumentRef:
        """A document of `tenant`'s log, decrypting nothing; NotFound alike for another tenant's."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            row = repo.get_document(conn, context.log_id, document_id)
        if row is None:
            raise NotFound(f"no document {document_id}")
        return DocumentRef(document_id, int(row.seq), row.case_id, int(row.size))

    def info(self, tenant: str, document_id: str) -> DocumentInfo:
        """What is known of a document, its name, title, media type and salt decrypted; `Gone` once its
        keys were destroyed (erased by crypto-shredding)."""
        ref = self.locate(tenant, document_id)
        entry = self._reads.entry(tenant, ref.seq)
        if entry.erased:
            raise Gone(f"document {document_id} was erased: its keys were destroyed")
        if not isinstance(entry.content, bytes):
            raise DecryptionError()
        private = json.loads(entry.content)
        return DocumentInfo(document_id, ref.seq, ref.case, ref.size, private["name"], private["media_type"],
                            private.get("declared_type"), private["title"], bytes.fromhex(private["salt"]),
                            str(entry.header["key"]), self._tenants.get(tenant).origin)

    def receipt(self, tenant: str, document_id: str) -> DocumentReceipt:
        """The document receipt (DESIGN §8): with its anchor once the entry is anchored."""
        info = self.info(tenant, document_id)
        receipt = self._anchoring.entry_receipt(tenant, info.seq)
        return DocumentReceipt(document_id, info.name, info.media_type, info.size, info.salt.hex(), receipt)

    def stream(self, tenant: str, document_id: str) -> tuple[DocumentInfo, Iterator[bytes]]:
        """The document's bytes, decrypted segment by segment as they are read. A stored blob that
        was altered raises `DecryptionError` before the segment that fails; one that was cut or
        extended, at its end — so a caller sending them must break the transfer, not finish it."""
        info = self.info(tenant, document_id)
        key = self._data_keys.get(self._tenants.get(tenant), info.key_id)
        if key is None:
            raise Gone(f"document {document_id} was erased: its keys were destroyed")
        aad = content_aad(info.origin, document_id, info.key_id)
        return info, open_stream(key, self.blobs.open(document_id), aad)

    def recover(self) -> dict[str, Any]:
        """After a crash: index `document` entries the index lacks, and remove blobs without an entry."""
        with reading(self._engine) as conn:
            missing = repo.unindexed_documents(conn)
        for row in missing:
            header = json.loads(bytes(row.header))
            with writing(self._engine) as conn, conn.begin():
                repo.insert_document(conn, header["id"], int(row.log_id), int(row.seq), header["case"],
                                     int(header["meta"].get("size", 0)), self._clock())

        def known(document_id: str) -> bool:
            with reading(self._engine) as conn:
                return repo.document_exists(conn, document_id)

        return {"indexed": len(missing), "removed_blobs": self.blobs.clean_orphans(known)}
