"""Typed SQLAlchemy tables (STYLE §13). Schema changes go through Alembic migrations only."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AnchorRound", "AnchorRoundLog", "Base", "CaseHead", "Checkpoint", "DataKey", "Document", "Entry",
           "ErasureRequest", "Export", "Lease", "LegalHold", "Log", "Node", "RetentionPolicy", "Share", "Subject",
           "Tenant"]


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[str] = mapped_column(String(32))
    #: tenant key wrapped by the master key
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)


class Log(Base):
    """One log per tenant; its row is the sequencing lock and holds the head of the chain."""

    __tablename__ = "logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), unique=True)
    origin: Mapped[str] = mapped_column(String(200), unique=True)
    signing_key_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))
    head_time: Mapped[str] = mapped_column(String(32), default="")
    #: the Merkle peaks of the current tree, 32 bytes each, largest subtree first
    peaks: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    #: grows whenever subject mappings or data keys change: invalidates every process's key caches
    key_epoch: Mapped[int] = mapped_column(BigInteger, default=0)


class Entry(Base):
    """Append-only: database triggers refuse UPDATE and DELETE (migration 0001)."""

    __tablename__ = "entries"

    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(64))
    #: the RFC 8785 header bytes, exactly as hashed
    header: Mapped[bytes] = mapped_column(LargeBinary)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary)
    envelope: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_entries_case", "log_id", "case_id", "seq"),
        # who works on a case (`ledger.cases`) is read under the log lock: its assignments by index
        Index("ix_entries_assignments", "log_id", "case_id", "seq", sqlite_where=text("kind = 'assignment'"),
              postgresql_where=text("kind = 'assignment'")),
        # `document` entries without an index row, after a crash (`ledger.documents.recover`)
        Index("ix_entries_documents", "log_id", "seq", sqlite_where=text("kind = 'document'"),
              postgresql_where=text("kind = 'document'")),
        # a subject's entries, for erasure, expiry and the accounting of disclosures (`compliance`)
        Index("ix_entries_subject", "log_id", "subject", "seq", sqlite_where=text("subject IS NOT NULL"),
              postgresql_where=text("subject IS NOT NULL")),
    )


class CaseHead(Base):
    """Hash of the newest entry of each case: the `case_prev` of the case's next entry."""

    __tablename__ = "case_heads"

    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    head_hash: Mapped[str] = mapped_column(String(64))


class Node(Base):
    """Complete-subtree hashes in tlog storage order (leaves included). Append-only."""

    __tablename__ = "nodes"

    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class Checkpoint(Base):
    """Every signed checkpoint ever issued: the yardstick for detecting a rolled-back log."""

    __tablename__ = "checkpoints"

    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))


class Subject(Base):
    """The only link between an outside customer reference and a subject handle; deletable."""

    __tablename__ = "subjects"

    handle: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    ref_mac: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("tenant_id", "ref_mac", name="uq_subjects_ref"),)


class DataKey(Base):
    """Per-subject data keys, by version; `wrapped` is NULL once destroyed (crypto-shredding)."""

    __tablename__ = "data_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    #: subject handle, or "" for the tenant's key for content without a subject
    subject: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(32))
    destroyed_at: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("tenant_id", "subject", "version", name="uq_data_keys_version"),)


class AnchorRound(Base):
    """An anchoring round (DESIGN §6): pending → submitted → confirmed, or failed with a reason.

    `open` is 1 while the round is pending or submitted and NULL otherwise; its unique index lets at
    most one round be open, so a round is resumed after a crash, never started twice.
    """

    __tablename__ = "anchor_rounds"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'submitted', 'confirmed', 'failed')", name="ck_anchor_rounds_state"),
        CheckConstraint("(state IN ('pending', 'submitted') AND open = 1) OR "
                        "(state IN ('confirmed', 'failed') AND open IS NULL)", name="ck_anchor_rounds_open"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16))
    open: Mapped[int | None] = mapped_column(Integer, unique=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    root: Mapped[bytes] = mapped_column(LargeBinary)
    leaves: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    #: the signed transaction, stored before it is sent, so a restart sends the same one again
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    max_fee: Mapped[int | None] = mapped_column(BigInteger)
    priority_fee: Mapped[int | None] = mapped_column(BigInteger)
    block: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    confirmed_at: Mapped[str | None] = mapped_column(String(32))
    #: why the round failed, or the last error that interrupted it (it is retried)
    reason: Mapped[str | None] = mapped_column(Text)


class AnchorRoundLog(Base):
    """One log's leaf in a round: the checkpoint anchored, its anchor receipt and its `anchor` entry."""

    __tablename__ = "anchor_round_logs"

    round_id: Mapped[int] = mapped_column(ForeignKey("anchor_rounds.id"), primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"), primary_key=True)
    leaf_index: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    checkpoint: Mapped[str] = mapped_column(Text)
    #: the anchor receipt (JSON), once the round is confirmed
    receipt: Mapped[str | None] = mapped_column(Text)
    #: seq of the `anchor` entry recording the round in this log, once appended
    entry_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_anchor_round_logs_log", "log_id", "size"),)


class Lease(Base):
    """A named lease held by one process at a time (the deployment's one anchoring task)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[float] = mapped_column(Float)


class Document(Base):
    """A `document` entry's index: found by its entry id, its blob named by it (DESIGN §8)."""

    __tablename__ = "documents"

    document_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[str | None] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("log_id", "seq", name="uq_documents_entry"),)


class Share(Base):
    """A share link (DESIGN §8): only the SHA-256 of its token is kept; downloads are counted here."""

    __tablename__ = "shares"

    share_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.document_id"))
    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    recipient: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[str] = mapped_column(String(32))
    #: seconds since the epoch, UTC
    expires_at: Mapped[float] = mapped_column(Float)
    max_downloads: Mapped[int] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[str | None] = mapped_column(String(32))
    revoked_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        CheckConstraint("downloads >= 0 AND downloads <= max_downloads", name="ck_shares_downloads"),
        Index("ix_shares_document", "document_id"),
    )


class RetentionPolicy(Base):
    """A version of a tenant's retention policy (DESIGN §10); each is set by a `policy` entry, and
    governs the entries after that entry (a change applies from that day on)."""

    __tablename__ = "retention_policies"

    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the `policy` entry that set it: entries with a greater seq are governed by it
    seq: Mapped[int] = mapped_column(BigInteger)
    set_at: Mapped[str] = mapped_column(String(32))
    set_by: Mapped[str] = mapped_column(String(128))
    #: JSON: {"profiles": [...], "rules": [{"kinds": [...], "years"|"days": n}]}
    spec: Mapped[str] = mapped_column(Text)
    locked: Mapped[int] = mapped_column(Integer)


class LegalHold(Base):
    """A legal hold on a case or a subject handle; placed and released by `hold` entries."""

    __tablename__ = "legal_holds"

    hold_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"))
    case_id: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(256))
    placed_by: Mapped[str] = mapped_column(String(128))
    placed_at: Mapped[str] = mapped_column(String(32))
    place_seq: Mapped[int] = mapped_column(BigInteger)
    released_by: Mapped[str | None] = mapped_column(String(128))
    released_at: Mapped[str | None] = mapped_column(String(32))
    release_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_legal_holds_log", "log_id"),
                      CheckConstraint("(case_id IS NULL) <> (subject IS NULL)", name="ck_legal_holds_target"))


class ErasureRequest(Base):
    """An erasure request for a subject (GDPR Art. 17) and where it stands; its decisions are
    `erasure` entries. Only the subject's random handle is kept, never its reference."""

    __tablename__ = "erasure_requests"

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"))
    subject: Mapped[str] = mapped_column(String(64))
    #: HMAC-SHA256(salt, reference): the salt is the requester's alone, so this names nobody here
    subject_digest: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[str] = mapped_column(String(32))
    #: deferred (a retention period or a hold applies) or erased
    status: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[str | None] = mapped_column(String(32))
    held_by: Mapped[str | None] = mapped_column(String(36))
    decision_seq: Mapped[int] = mapped_column(BigInteger)
    erased_seq: Mapped[int | None] = mapped_column(BigInteger)
    erased_at: Mapped[str | None] = mapped_column(String(32))
    #: the signed erasure certificate (JSON), once erased
    certificate: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_erasure_requests_log", "log_id", "status"),)


class Export(Base):
    """An export job (DESIGN §9): its scope, state and, once done, the file it wrote."""

    __tablename__ = "exports"

    export_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("logs.id"))
    #: JSON: scope, include_content, redactions, format
    spec: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[str] = mapped_column(String(32))
    export_seq: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(512))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_exports_log", "log_id"),)
