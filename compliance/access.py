"""Who may read what, and the access log (HIPAA §164.312(b)): every decryption is itself an entry.

Roles: agents log interactions and read the cases they work on (a case in which they logged an
entry); supervisors read every case of their tenant; auditors read headers, proofs and checkpoints,
and content only with the ``content`` permission; admins manage the tenant and read headers;
clients only verify. Reading content appends an ``access`` entry — who, which entries or case, when
and for what purpose — before any content is returned, so no content leaves unlogged.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ledger.errors import InvalidInput, NotFound, PolicyViolation
from ledger.service import Ledger, NewEntry, ReadEntry

__all__ = ["PERMISSIONS", "AccessService", "Permission", "Reader", "allowed", "check_can_log", "render_content",
           "require"]

_PURPOSE = re.compile(r"[A-Za-z0-9 _.:-]{1,64}\Z")
_MAX_LOGGED_SEQS = 200


class Permission(StrEnum):
    LOG_INTERACTIONS = "interactions:write"
    READ_HEADERS = "entries:read"
    READ_CASES = "cases:read"
    READ_CONTENT = "content:read"
    READ_LOG = "log:read"
    READ_PROOFS = "proofs:read"


#: the permission table the README shows; auditors get content only with the "content" grant, and
#: agents hold case and content permissions only for the cases they work on
PERMISSIONS: dict[Permission, frozenset[str]] = {
    Permission.LOG_INTERACTIONS: frozenset({"agent", "supervisor"}),
    Permission.READ_HEADERS: frozenset({"supervisor", "auditor", "admin"}),
    Permission.READ_CASES: frozenset({"agent", "supervisor", "auditor"}),
    Permission.READ_CONTENT: frozenset({"agent", "supervisor", "auditor"}),
    Permission.READ_LOG: frozenset({"agent", "supervisor", "auditor", "admin", "client"}),
    Permission.READ_PROOFS: frozenset({"agent", "supervisor", "auditor", "admin", "client"}),
}


@dataclass(frozen=True)
class Reader:
    actor: str
    role: str
    perms: frozenset[str] = field(default_factory=frozenset)
    #: cases assigned to this agent by the identity provider (token claim ``cases``), if it says
    cases: frozenset[str] | None = None


def check_can_log(reader: Reader, case: str) -> None:
    """Agents with an assignment list log only to their cases (else they could join any case)."""
    require(reader, Permission.LOG_INTERACTIONS)
    if reader.role == "agent" and reader.cases is not None and case not in reader.cases:
        raise PolicyViolation(f"case {case!r} is not assigned to this agent")


def allowed(reader: Reader, permission: Permission) -> bool:
    if reader.role not in PERMISSIONS[permission]:
        return False
    return not (permission is Permission.READ_CONTENT and reader.role == "auditor" and "content" not in reader.perms)


def require(reader: Reader, permission: Permission) -> None:
    if not allowed(reader, permission):
        raise PolicyViolation(f"role {reader.role!r} lacks the permission {permission.value}")


def render_content(content: bytes) -> dict[str, Any]:
    """Content as JSON when it is JSON (what the API logs), else text, else base64."""
    try:
        text = content.decode()
    except UnicodeDecodeError:
        return {"content_base64": base64.b64encode(content).decode()}
    try:
        return {"content": json.loads(text)}
    except ValueError:
        return {"content_text": text}


def _entry_json(seq: int, entry: ReadEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": seq, "entry_hash": entry.entry_hash, "header": entry.header}
    if entry.erased:
        out["erased"] = True
    elif entry.content is not None:
        out |= render_content(entry.content)
    return out


class AccessService:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @staticmethod
    def _check_purpose(purpose: str | None) -> None:
        if purpose is not None and not _PURPOSE.match(purpose):
            raise InvalidInput("X-Purpose must be 1-64 of letters, digits, spaces and _ . : -")

    def _case_for_agent(self, tenant: str, reader: Reader, case: str | None) -> list[tuple[int, ReadEntry]]:
        """The case's entries (headers only) if the agent works on it, else an empty list.

        An agent works on the cases its token assigns (``cases`` claim); without that claim, on
        the cases in which it logged an entry.
        """
        if case is None or (reader.cases is not None and case not in reader.cases):
            return []
        entries = self.ledger.read_case(tenant, case, decrypt=False)
        if reader.cases is not None:
            return entries
        return entries if any(e.header["actor"] == reader.actor for _, e in entries) else []

    def _log_access(self, tenant: str, reader: Reader, seqs: list[int], case: str | None,
                    purpose: str | None) -> None:
        meta: dict[str, Any] = {"scope": "entry" if case is None else "case", "count": len(seqs),
                                "seqs": seqs[:_MAX_LOGGED_SEQS]}
        if case is not None:
            meta["case"] = case
        if purpose is not None:
            meta["purpose"] = purpose
        self.ledger.append(tenant, NewEntry(kind="access", actor=reader.actor, channel="api", meta=meta))

    def entry(self, tenant: str, reader: Reader, seq: int, content: bool, purpose: str | None) -> dict[str, Any]:
        self._check_purpose(purpose)
        if reader.role != "agent":
            require(reader, Permission.READ_CONTENT if content else Permission.READ_HEADERS)
        entry = self.ledger.read(tenant, seq, decrypt=False)
        if reader.role == "agent" and not self._case_for_agent(tenant, reader, entry.header["case"]):
            raise NotFound(f"no entry {seq}", seq=seq)
        if content:
            entry = self.ledger.read(tenant, seq)
        if entry.content is not None:
            self._log_access(tenant, reader, [seq], None, purpose)
        return _entry_json(seq, entry)

    def timeline(self, tenant: str, reader: Reader, case: str, purpose: str | None) -> dict[str, Any]:
        self._check_purpose(purpose)
        require(reader, Permission.READ_CASES)
        if reader.role == "agent" and not self._case_for_agent(tenant, reader, case):
            raise NotFound(f"no case {case!r}", case=case)
        entries = self.ledger.read_case(tenant, case, decrypt=allowed(reader, Permission.READ_CONTENT))
        if not entries:
            raise NotFound(f"no case {case!r}", case=case)
        if any(entry.content is not None for _, entry in entries):
            self._log_access(tenant, reader, [seq for seq, _ in entries], case, purpose)
        return {"case": case, "entries": [_entry_json(seq, entry) for seq, entry in entries]}
