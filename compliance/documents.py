"""Documents (DESIGN §8) as the API serves them: who may upload to a case, who may read what of a
document, and a file checked against the keys and the log this server knows.

Uploading is logging: agents and supervisors, on the cases they may log to (`AccessService.rule_for`).
That is checked twice: here, before a byte of the file is taken in (an agent posting to a case that
exists and is not its own is refused at once), and by the appender under the log's lock when the
entry is committed (so an agent taken off the case meanwhile cannot slip the document in).

Reading: a document's header-level facts (id, seq, case, size) go to whoever may read the entry's
header — agents on their own cases, supervisors, auditors, admins. Its name, title, media type and
the salt of its commitment are personal data (DESIGN §8): they go only to readers of the case's
content, and each such read first appends an ``access`` entry, as any decryption through the API
does. The document receipt carries name, media type and salt, so it is content-level too.

Verification checks what the client sends and reveals nothing of the log beyond whether the
receipt's checkpoint is one of its states: trust is the key of the caller's own tenant's log (any
other log is "unknown"), and the receipt's checkpoint must be consistent with the log's current one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from compliance.access import AccessService, Permission, Reader, allowed, require
from ledger.appender import NewEntry
from ledger.cases import CaseRule
from ledger.documents import DocumentRef, NewDocument
from ledger.errors import InvalidInput, NotFound, PolicyViolation
from verification.checkpoint import Checkpoint, parse_checkpoint
from verification.document_receipt import DocumentReceipt, verify_file
from verification.errors import VerificationError
from verification.merkle import verify_consistency
from verification.trust import Trust

__all__ = ["DocumentAccess"]

_PURPOSE = re.compile(r"[A-Za-z0-9 _.:-]{1,64}\Z")
#: the checks `verify` reports besides those of `verify_file`
LOG_CHECK, CONSISTENT_CHECK = "log", "consistent"


def _check_purpose(purpose: str | None) -> None:
    if purpose is not None and not _PURPOSE.match(purpose):
        raise InvalidInput("X-Purpose must be 1-64 of letters, digits, spaces and _ . : -")


def _stated_checkpoint(note: str) -> Checkpoint:
    """The receipt's checkpoint body as it states it (its signature is the `checkpoint_signature` check)."""
    if "\n\n" not in note:
        raise VerificationError("the checkpoint is not a signed note")
    return parse_checkpoint(note[: note.rfind("\n\n") + 1])


class DocumentAccess:
    def __init__(self, access: AccessService) -> None:
        self.access = access
        self.ledger = access.ledger

    # --- upload ------------------------------------------------------------------------------------

    def new_document(self, tenant: str, reader: Reader, *, case: str, title: str, name: str,
                     declared_type: str | None, subject_ref: str | None) -> NewDocument:
        """What `reader` uploads to `case`, once it is known the reader may: `PolicyViolation` (403) for
        a role that may not log, and for an agent's upload to a case that exists and is not its own."""
        rule = AccessService.rule_for(reader, case)
        if rule is not None:
            staff = self.ledger.cases.staff(tenant, case)
            if reader.actor not in staff.agents and (rule is CaseRule.STAFF or staff.exists):
                raise PolicyViolation(f"case {case!r} is not assigned to this agent", case=case)
        return NewDocument(case=case, title=title, name=name, declared_type=declared_type, subject_ref=subject_ref,
                           actor=reader.actor, case_rule=rule)

    def upload(self, tenant: str, doc: NewDocument, chunks: Iterable[bytes]) -> DocumentReceipt:
        """Store the file (`ledger.documents`); the case rule is checked again under the log's lock."""
        return self.ledger.documents.upload(tenant, doc, chunks)

    # --- reading -----------------------------------------------------------------------------------

    def _document(self, tenant: str, reader: Reader, document_id: str) -> DocumentRef:
        """The document, if `reader` may read its entry's header (nothing decrypted yet); NotFound alike
        for another tenant's document and one of a case the agent does not work on."""
        if reader.role != "agent":
            require(reader, Permission.READ_HEADERS)
        ref = self.ledger.documents.locate(tenant, document_id)
        if reader.role == "agent" and not self.access.works_on(tenant, reader, ref.case):
            raise NotFound(f"no document {document_id}")
        return ref

    def _log_access(self, tenant: str, reader: Reader, info: DocumentRef, what: str, purpose: str | None) -> None:
        meta: dict[str, Any] = {"scope": "document", "document": info.document_id, "read": what, "count": 1,
                                "seqs": [info.seq]}
        if purpose is not None:
            meta["purpose"] = purpose
        self.ledger.appender.append(tenant, NewEntry(kind="access", actor=reader.actor, channel="api", meta=meta))

    def info(self, tenant: str, reader: Reader, document_id: str, purpose: str | None) -> dict[str, Any]:
        """id, seq, case and size for header readers; with name, title and media type (an ``access``
        entry first) for readers of the case's content."""
        _check_purpose(purpose)
        ref = self._document(tenant, reader, document_id)
        out: dict[str, Any] = {"id": ref.document_id, "seq": ref.seq, "case": ref.case, "size": ref.size}
        if allowed(reader, Permission.READ_CONTENT):
            self._log_access(tenant, reader, ref, "info", purpose)
            info = self.ledger.documents.info(tenant, document_id)
            out |= {"name": info.name, "title": info.title, "media_type": info.media_type}
        return out

    def receipt(self, tenant: str, reader: Reader, document_id: str, purpose: str | None) -> DocumentReceipt:
        """The document receipt (with its anchor once anchored), for readers of the case's content:
        it carries the name, media type and salt. An ``access`` entry is appended first."""
        _check_purpose(purpose)
        if reader.role != "agent":
            require(reader, Permission.READ_CONTENT)
        ref = self._document(tenant, reader, document_id)
        self._log_access(tenant, reader, ref, "receipt", purpose)
        return self.ledger.documents.receipt(tenant, document_id)

    # --- verification ------------------------------------------------------------------------------

    def verify(self, tenant: str, receipt: DocumentReceipt, chunks: Iterable[bytes]) -> dict[str, Any]:
        """`verify_file` with the key of `tenant`'s log, collecting every check, between a ``log`` check
        (the receipt is of this log) and a ``consistent`` one (its checkpoint is a state of this log)."""
        head = self.ledger.tenants.info(tenant)
        r = receipt.receipt
        known = r.log == head.origin
        log_check = {"name": LOG_CHECK, "ok": known,
                     "detail": f"a log of this server: {head.origin}" if known else f"unknown log {r.log!r}"}
        trust = Trust.of(head.vkey) if known else Trust()
        result = verify_file(receipt, trust, chunks, collect=True)
        ok, detail = self._consistent(tenant, r.checkpoint, head.size or 0, head.root) if known else (
            False, "not checked: unknown log")
        checks = [log_check, *result["checks"], {"name": CONSISTENT_CHECK, "ok": ok, "detail": detail}]
        return {"valid": all(check["ok"] for check in checks), "checks": checks}

    def _consistent(self, tenant: str, note: str, size: int, root_hex: str | None) -> tuple[bool, str]:
        """Whether the tree of the receipt's checkpoint is a prefix of the log's tree of `size`, `root_hex`."""
        try:
            checkpoint = _stated_checkpoint(note)
            root = bytes.fromhex(root_hex or "")
            if checkpoint.size > size:
                return False, f"the receipt's checkpoint is of {checkpoint.size} entries, the log has {size}"
            if checkpoint.size == size:
                if checkpoint.root != root:
                    raise VerificationError("the receipt's checkpoint has another root than the log's at its size")
                return True, f"the log's current checkpoint (size {size})"
            if checkpoint.size == 0:
                return True, "the empty tree is a prefix of every tree"
            proof = self.ledger.proofs.consistency(tenant, checkpoint.size, size)
            verify_consistency(checkpoint.size, size, [bytes.fromhex(p) for p in proof.proof], checkpoint.root, root)
        except VerificationError as exc:
            return False, " ".join(exc.message.split())
        return True, f"the log of size {size} extends the receipt's checkpoint of size {checkpoint.size}"
