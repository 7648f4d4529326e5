"""Erasure by crypto-shredding (GDPR Art. 17; DESIGN §10), and expiry at the end of retention.

A request for a subject is decided at once and the decision is an `erasure` entry with its reason
code. While a retention period applies to any of the subject's entries, or a legal hold covers the
subject or a case holding one of them, it is **deferred**: the entry states the day on which erasure
becomes possible, or the hold. Otherwise it is **carried out**: in the transaction of the `erasure`
entry that records it, every version of the subject's data keys is destroyed and the mapping from
its reference to its handle deleted (the log's key epoch moves, so every process drops its cached
keys and mappings); the subject's document blobs are then deleted. The entries, their commitments and
every proof stay and verify; the content and the link to the person are gone.

`run` (`caseledger compliance run`, and a task in `serve`) carries out deferred requests that have
become due, and expires subjects whose every entry is past its retention period: expiry is the same
key destruction, recorded the same way, with reason ``retention-expired``.

The requester is handed a salt with the decision; the erasure certificate names the subject only by
HMAC-SHA256(salt, reference), and the salt is kept nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from compliance.holds import Hold, Holds
from compliance.retention import PolicyBook, Retention, entry_date
from ledger.appender import NewEntry
from ledger.connections import reading, writing
from ledger.errors import InvalidInput, NotFound
from ledger.repository import compliance as repo
from ledger.repository.datakeys import destroy_data_keys
from ledger.repository.tenants import bump_key_epoch
from ledger.service import Ledger
from verification.erasure_certificate import (
    ErasureCertificate,
    certificate_text,
    subject_digest,
)

__all__ = ["EXPIRY_REASON", "REASON_CODES", "ErasureDecision", "Erasures"]

#: why a subject is erased (recorded in clear)
REASON_CODES = frozenset({"gdpr-art-17", "consent-withdrawn", "unlawful-processing", "legal-obligation", "other"})
EXPIRY_REASON = "retention-expired"
ERASURE_ACTOR = "service:compliance"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@dataclass(frozen=True)
class ErasureDecision:
    request_id: str
    #: "deferred" or "erased"
    status: str
    reason: str
    requested_at: str
    decision_seq: int
    #: the day erasure becomes possible, while a retention period applies
    not_before: str | None = None
    #: the hold that blocks it
    held_by: str | None = None
    erased_seq: int | None = None
    erased_at: str | None = None
    #: handed to the requester only, with the decision: the certificate's subject digest is keyed by it
    salt: str | None = None
    certificate: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.request_id, "status": self.status, "reason": self.reason,
               "requested_at": self.requested_at, "decision_seq": self.decision_seq, "not_before": self.not_before,
               "held_by": self.held_by, "erased_seq": self.erased_seq, "erased_at": self.erased_at}
        if self.salt is not None:
            out["salt"] = self.salt
        if self.certificate is not None:
            out["certificate"] = self.certificate
        return out


@dataclass(frozen=True)
class _Standing:
    """Where a subject stands: its entries with content, the cases they are in, retention and holds."""

    entries: tuple[int, ...]
    cases: frozenset[str]
    documents: tuple[str, ...]
    not_before: date | None
    holds: tuple[Hold, ...]


def _decision(row: Any) -> ErasureDecision:
    return ErasureDecision(str(row.request_id), str(row.status), str(row.reason), str(row.requested_at),
                           int(row.decision_seq), row.not_before, row.held_by,
                           None if row.erased_seq is None else int(row.erased_seq), row.erased_at,
                           certificate=json.loads(row.certificate) if row.certificate else None)


def _today(now: str) -> date:
    return datetime.fromisoformat(now).astimezone(UTC).date()


class Erasures:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._retention = Retention(ledger)
        self._holds = Holds(ledger)

    # ------------------------------------------------------------------ deciding

    def standing(self, tenant: str, subject: str, book: PolicyBook | None = None) -> _Standing:
        book = book or self._retention.book(tenant)
        seqs: list[int] = []
        cases: set[str] = set()
        documents: list[str] = []
        ends: list[date] = []
        for entry in self._ledger.reads.of_subject(tenant, subject, decrypt=False):
            header = entry.header
            if header["case"] is not None:
                cases.add(str(header["case"]))
            if header["key"] is None:
                continue
            seqs.append(entry.seq)
            if header["kind"] == "document":
                documents.append(str(header["id"]))
            end = book.ends(entry.seq, str(header["kind"]), entry_date(header))
            if end is not None:
                ends.append(end)
        holds = self._holds.covering(tenant, cases=cases, subject=subject)
        return _Standing(tuple(seqs), frozenset(cases), tuple(documents), max(ends) if ends else None, holds)

    def request(self, tenant: str, subject_ref: str, reason: str, actor: str) -> ErasureDecision:
        """Decide an erasure request for `subject_ref`; carry it out unless retention or a hold applies."""
        if reason not in REASON_CODES:
            raise InvalidInput(f"unknown reason code {reason!r}; one of {', '.join(sorted(REASON_CODES))}")
        if not isinstance(subject_ref, str) or not subject_ref:
            raise InvalidInput("subject_ref is the customer's reference, a non-empty string")
        try:
            handle = self._ledger.subjects.handle(tenant, subject_ref, create=False)
        except NotFound:
            raise NotFound("no such subject: nothing is recorded about it (or it was erased already)") from None
        salt = os.urandom(32)
        digest = subject_digest(salt, subject_ref)
        request_id = str(uuid.uuid4())
        now = self._ledger.clock()
        standing = self.standing(tenant, handle)
        blocked = self._blocked(standing, now)
        if blocked is None:
            decision = self._erase(tenant, handle, request_id, reason, actor, now, digest, standing, new=True)
        else:
            decision = self._defer(tenant, handle, request_id, reason, actor, now, digest, *blocked)
        return ErasureDecision(**{**decision.__dict__, "salt": salt.hex()})

    @staticmethod
    def _blocked(standing: _Standing, now: str) -> tuple[str | None, str | None] | None:
        """(not_before, hold id) while erasure must wait, None when it can be carried out."""
        not_before = standing.not_before.isoformat() if standing.not_before and standing.not_before > _today(now) \
            else None
        held = standing.holds[0].hold_id if standing.holds else None
        return None if not_before is None and held is None else (not_before, held)

    def _defer(self, tenant: str, handle: str, request_id: str, reason: str, actor: str, now: str, digest: str,
               not_before: str | None, held_by: str | None) -> ErasureDecision:
        context = self._ledger.tenants.get(tenant)
        made: list[ErasureDecision] = []

        def record(conn: Any, seq: int) -> None:
            repo.insert_request(conn, {
                "request_id": request_id, "log_id": context.log_id, "subject": handle, "reason": reason,
                "requested_by": actor, "requested_at": now, "status": "deferred", "not_before": not_before,
                "held_by": held_by, "decision_seq": seq, "subject_digest": digest})
            made.append(ErasureDecision(request_id, "deferred", reason, now, seq, not_before, held_by))

        meta = {"request": request_id, "decision": "deferred", "reason": reason,
                "blocked_by": "legal-hold" if held_by else "retention", "not_before": not_before, "hold": held_by}
        self._append(tenant, handle, actor, meta, record)
        return made[0]

    def _append(self, tenant: str, handle: str, actor: str, meta: dict[str, Any], record: Any) -> int:
        """An `erasure` entry about the subject `handle` (in its header, as every entry of it)."""
        appended = self._ledger.appender.append(tenant, NewEntry(
            kind="erasure", actor=actor, meta=meta, with_entry=record, subject=handle))
        return appended.seq

    # ------------------------------------------------------------------ carrying out

    def _erase(self, tenant: str, handle: str, request_id: str, reason: str, actor: str, now: str, digest: str,
               standing: _Standing, *, new: bool) -> ErasureDecision:
        context = self._ledger.tenants.get(tenant)
        seqs: list[int] = []

        def record(conn: Any, seq: int) -> None:  # the keys go in the entry's own transaction
            if new:
                repo.insert_request(conn, {
                    "request_id": request_id, "log_id": context.log_id, "subject": handle, "reason": reason,
                    "requested_by": actor, "requested_at": now, "status": "erased", "decision_seq": seq,
                    "erased_seq": seq, "erased_at": now, "subject_digest": digest})
            elif not repo.update_request(conn, request_id, "deferred",
                                         {"status": "erased", "erased_seq": seq, "erased_at": now}):
                raise InvalidInput(f"erasure request {request_id} was carried out already")
            destroy_data_keys(conn, context.tenant_id, handle, now)
            repo.delete_subject_handle(conn, context.tenant_id, handle)
            bump_key_epoch(conn, context.log_id)
            seqs.append(seq)

        meta = {"request": request_id, "decision": "erased", "reason": reason, "entries": len(standing.entries)}
        self._append(tenant, handle, actor, meta, record)
        context.invalidate()
        for document_id in standing.documents:
            with contextlib.suppress(NotFound):  # gone already (a run interrupted after the keys went)
                self._ledger.documents.blobs.delete(document_id)
        return self._certify(tenant, request_id)

    def _certify(self, tenant: str, request_id: str) -> ErasureDecision:
        """The request, with its certificate (made once, when first asked for after the erasure)."""
        context = self._ledger.tenants.get(tenant)
        with reading(self._ledger.engine) as conn:
            row = repo.get_request(conn, context.log_id, request_id)
        if row is None:
            raise NotFound(f"no erasure request {request_id}")
        if row.status != "erased" or row.certificate:
            return _decision(row)
        standing = self.standing(tenant, str(row.subject))
        erased = tuple(s for s in standing.entries if s < int(row.erased_seq))
        receipt = self._ledger.anchoring.entry_receipt(tenant, int(row.erased_seq))
        body = certificate_text(context.origin, request_id, str(row.subject_digest), str(row.erased_at),
                                receipt.seq, receipt.entry_hash, erased)
        note = self._ledger.tenants.sign_text(context, body)
        certificate = ErasureCertificate(context.origin, request_id, str(row.subject_digest), str(row.erased_at),
                                         erased, receipt, note, context.vkey)
        with writing(self._ledger.engine) as conn, conn.begin():
            repo.set_certificate(conn, request_id, json.dumps(certificate.to_json()))
        return self._certify(tenant, request_id)

    def get(self, tenant: str, request_id: str) -> ErasureDecision:
        if not isinstance(request_id, str) or not _UUID.fullmatch(request_id):
            raise NotFound(f"no erasure request {request_id}")
        return self._certify(tenant, request_id)

    def all(self, tenant: str) -> list[ErasureDecision]:
        context = self._ledger.tenants.get(tenant)
        with reading(self._ledger.engine) as conn:
            return [_decision(row) for row in repo.requests_of_log(conn, context.log_id)]

    # ------------------------------------------------------------------ what has become due

    def run_all(self) -> dict[str, dict[str, Any]]:
        """`run` for every tenant (the deployment's scheduled compliance run)."""
        return {tenant: self.run(tenant) for tenant in self._ledger.tenants.names()}

    def run(self, tenant: str) -> dict[str, Any]:
        """Carry out deferred requests now due, and expire subjects past retention (unless held)."""
        context = self._ledger.tenants.get(tenant)
        now = self._ledger.clock()
        book = self._retention.book(tenant)
        done: dict[str, Any] = {"erased": [], "expired": [], "still_deferred": []}
        with reading(self._ledger.engine) as conn:
            pending = repo.due_requests(conn, context.log_id)
        for row in pending:
            standing = self.standing(tenant, str(row.subject), book)
            if self._blocked(standing, now) is not None:
                done["still_deferred"].append(str(row.request_id))
                continue
            self._erase(tenant, str(row.subject), str(row.request_id), str(row.reason), ERASURE_ACTOR, now,
                        str(row.subject_digest), standing, new=False)
            done["erased"].append(str(row.request_id))
        with reading(self._ledger.engine) as conn:
            subjects = repo.subjects_with_keys(conn, context.tenant_id)
        for subject in subjects:
            standing = self.standing(tenant, subject, book)
            if standing.not_before is None or standing.not_before > _today(now) or standing.holds:
                continue  # no period applies (kept until asked), not yet due, or held
            request_id = str(uuid.uuid4())
            self._erase(tenant, subject, request_id, EXPIRY_REASON, ERASURE_ACTOR, now, "0" * 64, standing,
                        new=True)
            done["expired"].append(request_id)
        return done

