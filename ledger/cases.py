"""Who works on a case, as the log itself records it.

A case is its opener's (the actor of its first entry); `assignment` entries in the case —
`{"action": "assign" | "unassign", "agent": "user:…"}` in `meta` — put more agents on it and take
them off. Reads derive the staff from those entries; the appender checks an entry's `case_rule`
against the staff under the log's lock, so two agents cannot both open a case and an agent taken
off a case cannot slip one more entry in. Who may do what with that is `compliance.access`'s rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine

from ledger.connections import reading
from ledger.reads import stored_header
from ledger.repository.entries import case_staff_headers
from ledger.tenants import Tenants

__all__ = ["ASSIGN", "UNASSIGN", "CaseRule", "CaseStaff", "Cases", "apply_entry", "staff_of"]

ASSIGN = "assign"
UNASSIGN = "unassign"


class CaseRule(StrEnum):
    """What an entry's author must be to the entry's case, checked under the log's lock."""

    #: on the case's staff (opened it, or assigned)
    STAFF = "staff"
    #: on the case's staff, or the case has no entries yet (this entry opens it)
    STAFF_OR_NEW = "staff-or-new"


@dataclass(frozen=True)
class CaseStaff:
    """A case as far as access goes: who opened it (None: no entries yet), who works on it now."""

    opener: str | None
    agents: frozenset[str]

    @property
    def exists(self) -> bool:
        return self.opener is not None


def apply_entry(agents: set[str] | None, actor: str, kind: str, meta: Mapping[str, Any]) -> set[str]:
    """The staff after one more entry of the case (`agents` None: the case had no entries)."""
    staff = {actor} if agents is None else agents
    agent = meta.get("agent")
    if kind == "assignment" and isinstance(agent, str):
        if meta.get("action") == ASSIGN:
            staff.add(agent)
        elif meta.get("action") == UNASSIGN:
            staff.discard(agent)
    return staff


def staff_of(headers: Iterable[Mapping[str, Any]]) -> CaseStaff:
    """Fold a case's first entry and its `assignment` entries, in log order, into its staff."""
    opener: str | None = None
    agents: set[str] | None = None
    for header in headers:
        if opener is None:
            opener = str(header["actor"])
        agents = apply_entry(agents, str(header["actor"]), str(header["kind"]), header.get("meta") or {})
    return CaseStaff(opener, frozenset(agents or ()))


class Cases:
    def __init__(self, engine: Engine, tenants: Tenants) -> None:
        self._engine = engine
        self._tenants = tenants

    def staff(self, tenant: str, case: str) -> CaseStaff:
        """Who works on `case` now (a case without entries has no staff)."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            found = case_staff_headers(conn, context.log_id, [case])
        return staff_of(stored_header(header) for header in found.get(case, []))
