"""Who may read and write what, and the access log (HIPAA §164.312(b)): every decryption is itself an entry.

Roles: agents log interactions and read the cases they work on; supervisors read every case of
their tenant and assign agents to cases; auditors read headers, proofs and checkpoints, and content
only with the ``content`` permission; admins manage the tenant and read headers; clients only verify.

An agent works on a case when the case is assigned to it (`compliance.assignments`: it opened the
case, or a supervisor assigned it) or when the token's ``cases`` claim names it. An agent may open a
new case (unless its token's ``cases`` claim is there and does not name it); posting to a case that
exists and is not its own is refused and writes nothing. Reading content appends an ``access``
entry — who, which entries or case, when and for what purpose — before any content is returned, so
no content leaves unlogged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from compliance.assignments import CaseAssignments
from ledger.appender import NewEntry
from ledger.cases import CaseRule
from ledger.content import render_content
from ledger.errors import Gone, InvalidInput, NotFound, PolicyViolation
from ledger.reads import ReadEntry
from ledger.service import Ledger
from verification.receipt import Receipt

__all__ = ["PERMISSIONS", "AccessService", "Permission", "Reader", "allowed", "require"]

_PURPOSE = re.compile(r"[A-Za-z0-9 _.:-]{1,64}\Z")
_MAX_LOGGED_SEQS = 200


class Permission(StrEnum):
    LOG_INTERACTIONS = "interactions:write"
    READ_HEADERS = "entries:read"
    READ_CASES = "cases:read"
    READ_CONTENT = "content:read"
    READ_LOG = "log:read"
    READ_PROOFS = "proofs:read"
    ASSIGN_CASES = "cases:assign"
    READ_COMPLIANCE = "compliance:read"
    SET_RETENTION = "retention:write"
    PLACE_HOLDS = "holds:place"
    RELEASE_HOLDS = "holds:release"
    REQUEST_ERASURE = "erasures:request"
    RUN_COMPLIANCE = "compliance:run"
    EXPORT = "exports:create"
    RUN_AUDIT = "audit:run"


#: the permission table the README shows; auditors get content only with the "content" grant, and
#: agents hold case and content permissions only for the cases they work on
PERMISSIONS: dict[Permission, frozenset[str]] = {
    Permission.LOG_INTERACTIONS: frozenset({"agent", "supervisor"}),
    Permission.READ_HEADERS: frozenset({"supervisor", "auditor", "admin"}),
    Permission.READ_CASES: frozenset({"agent", "supervisor", "auditor"}),
    Permission.READ_CONTENT: frozenset({"agent", "supervisor", "auditor"}),
    Permission.READ_LOG: frozenset({"agent", "supervisor", "auditor", "admin", "client"}),
    Permission.READ_PROOFS: frozenset({"agent", "supervisor", "auditor", "admin", "client"}),
    Permission.ASSIGN_CASES: frozenset({"supervisor"}),
    # compliance records (DESIGN §10): policies are the admin's; holds are placed by supervisors,
    # admins and auditors and released by supervisors and admins; erasure is decided by the rules
    Permission.READ_COMPLIANCE: frozenset({"supervisor", "auditor", "admin"}),
    Permission.SET_RETENTION: frozenset({"admin"}),
    Permission.PLACE_HOLDS: frozenset({"supervisor", "auditor", "admin"}),
    Permission.RELEASE_HOLDS: frozenset({"supervisor", "admin"}),
    Permission.REQUEST_ERASURE: frozenset({"supervisor", "admin"}),
    Permission.RUN_COMPLIANCE: frozenset({"admin"}),
    Permission.EXPORT: frozenset({"supervisor", "auditor"}),
    Permission.RUN_AUDIT: frozenset({"auditor", "admin"}),
}


@dataclass(frozen=True)
class Reader:
    actor: str
    role: str
    perms: frozenset[str] = field(default_factory=frozenset)
    #: cases assigned to this agent by the identity provider (token claim ``cases``), if it says
    cases: frozenset[str] | None = None


def allowed(reader: Reader, permission: Permission) -> bool:
    if reader.role not in PERMISSIONS[permission]:
        return False
    return not (permission is Permission.READ_CONTENT and reader.role == "auditor" and "content" not in reader.perms)


def require(reader: Reader, permission: Permission) -> None:
    if not allowed(reader, permission):
        raise PolicyViolation(f"role {reader.role!r} lacks the permission {permission.value}")


def _entry_json(entry: ReadEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": entry.seq, "entry_hash": entry.entry_hash, "header": entry.header}
    if entry.erased:
        out["erased"] = True
    elif entry.content is not None:
        out |= render_content(entry.content)
    return out


class AccessService:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.assignments = CaseAssignments(ledger)

    @staticmethod
    def _check_purpose(purpose: str | None) -> None:
        if purpose is not None and not _PURPOSE.match(purpose):
            raise InvalidInput("X-Purpose must be 1-64 of letters, digits, spaces and _ . : -")

    def works_on(self, tenant: str, reader: Reader, case: str | None) -> bool:
        """Whether an agent works on `case`: by the token's ``cases`` claim, or on the case's staff."""
        if case is None:
            return False
        if reader.cases is not None and case in reader.cases:
            return True
        return reader.actor in self.ledger.cases.staff(tenant, case).agents

    @staticmethod
    def rule_for(reader: Reader, case: str) -> CaseRule | None:
        """What the author of an entry `reader` logs to `case` must be to that case, checked by the
        appender under the log's lock: nothing for supervisors and for cases the token's claim
        names; an agent must otherwise work on the case, or open it — unless its token carries a
        ``cases`` claim, which then bounds the cases it may open."""
        require(reader, Permission.LOG_INTERACTIONS)
        if reader.role != "agent" or (reader.cases is not None and case in reader.cases):
            return None
        return CaseRule.STAFF if reader.cases is not None else CaseRule.STAFF_OR_NEW

    def _log_access(self, tenant: str, reader: Reader, seqs: list[int], case: str | None,
                    purpose: str | None) -> None:
        meta: dict[str, Any] = {"scope": "entry" if case is None else "case", "count": len(seqs),
                                "seqs": seqs[:_MAX_LOGGED_SEQS]}
        if case is not None:
            meta["case"] = case
        if purpose is not None:
            meta["purpose"] = purpose
        self.ledger.appender.append(tenant, NewEntry(kind="access", actor=reader.actor, channel="api", meta=meta))

    def entry(self, tenant: str, reader: Reader, seq: int, content: bool, purpose: str | None) -> dict[str, Any]:
        """One entry; 404 alike for an entry that does not exist and one the agent may not see."""
        self._check_purpose(purpose)
        if reader.role != "agent":
            require(reader, Permission.READ_CONTENT if content else Permission.READ_HEADERS)
        entry = self.ledger.reads.entry(tenant, seq, decrypt=False)
        if reader.role == "agent" and not self.works_on(tenant, reader, entry.header["case"]):
            raise NotFound(f"no entry {seq}", seq=seq)
        if content:
            entry = self.ledger.reads.entry(tenant, seq)
            if entry.erased:
                raise Gone(f"the content of entry {seq} was erased: its keys were destroyed (the header and "
                           "every proof remain)", seq=seq)
        if entry.content is not None:
            self._log_access(tenant, reader, [seq], None, purpose)
        return _entry_json(entry)

    def receipt(self, tenant: str, reader: Reader, seq: int) -> Receipt:
        """The entry's receipt, for whoever may read its header (404 alike for an entry an agent may
        not see); with its anchor once anchored."""
        if reader.role != "agent":
            require(reader, Permission.READ_HEADERS)
        else:
            entry = self.ledger.reads.entry(tenant, seq, decrypt=False)
            if not self.works_on(tenant, reader, entry.header["case"]):
                raise NotFound(f"no entry {seq}", seq=seq)
        return self.ledger.anchoring.entry_receipt(tenant, seq)

    def timeline(self, tenant: str, reader: Reader, case: str, purpose: str | None) -> dict[str, Any]:
        """A case across channels; 404 alike for an unknown case and one the agent does not work on."""
        self._check_purpose(purpose)
        require(reader, Permission.READ_CASES)
        if reader.role == "agent" and not self.works_on(tenant, reader, case):
            raise NotFound(f"no case {case!r}", case=case)
        entries = self.ledger.reads.case(tenant, case, decrypt=allowed(reader, Permission.READ_CONTENT))
        if not entries:
            raise NotFound(f"no case {case!r}", case=case)
        if any(entry.content is not None for entry in entries):
            self._log_access(tenant, reader, [entry.seq for entry in entries], case, purpose)
        return {"case": case, "entries": [_entry_json(entry) for entry in entries]}

