"""Who works on a case (DESIGN §2 `assignment` entries): derived from the log itself.

A case is assigned to whoever opened it (the actor of its first entry). Supervisors assign more
agents, and take them off, with `assignment` entries in the case — `{"action": "assign" |
"unassign", "agent": "user:…"}` in `meta` — so who could read what is itself on record. The
identity provider may also assign cases through the token's `cases` claim (`compliance.access`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.appender import Appended, NewEntry
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.service import Ledger
from verification.entry import ACTOR_RE

__all__ = ["ASSIGN", "UNASSIGN", "CaseAssignments", "CaseStaff", "staff_of"]

ASSIGN = "assign"
UNASSIGN = "unassign"


@dataclass(frozen=True)
class CaseStaff:
    """A case as far as access goes: whether it has entries, who opened it, who is assigned now."""

    exists: bool
    opener: str | None
    agents: frozenset[str]


def staff_of(headers: Iterable[Mapping[str, Any]]) -> CaseStaff:
    """Fold a case's first entry and its `assignment` entries (in log order) into its staff."""
    opener: str | None = None
    agents: set[str] = set()
    for header in headers:
        if opener is None:
            opener = str(header["actor"])
            agents.add(opener)
        if header["kind"] != "assignment":
            continue
        meta = header.get("meta") or {}
        agent = meta.get("agent")
        if isinstance(agent, str):
            if meta.get("action") == ASSIGN:
                agents.add(agent)
            elif meta.get("action") == UNASSIGN:
                agents.discard(agent)
    return CaseStaff(opener is not None, opener, frozenset(agents))


class CaseAssignments:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def staff(self, tenant: str, case: str) -> CaseStaff:
        return staff_of(self._ledger.reads.case_opening(tenant, case))

    def assign(self, tenant: str, actor: str, case: str, agent: str) -> Appended:
        """Assign `agent` to `case` (which may not exist yet); Conflict if it already is."""
        self._check_agent(agent)
        if agent in self.staff(tenant, case).agents:
            raise Conflict(f"{agent} is already assigned to case {case!r}", case=case)
        return self._record(tenant, actor, case, ASSIGN, agent)

    def unassign(self, tenant: str, actor: str, case: str, agent: str) -> Appended:
        """Take `agent` off `case`; NotFound if it is not assigned."""
        self._check_agent(agent)
        if agent not in self.staff(tenant, case).agents:
            raise NotFound(f"{agent} is not assigned to case {case!r}", case=case)
        return self._record(tenant, actor, case, UNASSIGN, agent)

    @staticmethod
    def _check_agent(agent: str) -> None:
        if not ACTOR_RE.match(agent) or not agent.startswith("user:"):
            raise InvalidInput("agent must look like user:ID")

    def _record(self, tenant: str, actor: str, case: str, action: str, agent: str) -> Appended:
        entry = NewEntry(kind="assignment", channel="api", case=case, actor=actor,
                         meta={"action": action, "agent": agent})
        return self._ledger.appender.append(tenant, entry)
