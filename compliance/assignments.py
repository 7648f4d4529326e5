"""Assigning agents to cases: a supervisor's decision, recorded as an `assignment` entry in the case.

Who works on a case is derived from the log (`ledger.cases`): its opener and the assignment
entries, so who could read what is itself on record.
"""

from __future__ import annotations

from ledger.appender import Appended, NewEntry
from ledger.cases import ASSIGN, UNASSIGN
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.service import Ledger
from verification.entry import ACTOR_RE

__all__ = ["CaseAssignments"]


class CaseAssignments:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def assign(self, tenant: str, actor: str, case: str, agent: str) -> Appended:
        """Assign `agent` to `case` (which may not exist yet); Conflict if it already is."""
        self._check_agent(agent)
        if agent in self._ledger.cases.staff(tenant, case).agents:
            raise Conflict(f"{agent} is already assigned to case {case!r}", case=case)
        return self._record(tenant, actor, case, ASSIGN, agent)

    def unassign(self, tenant: str, actor: str, case: str, agent: str) -> Appended:
        """Take `agent` off `case`; NotFound if it is not assigned."""
        self._check_agent(agent)
        if agent not in self._ledger.cases.staff(tenant, case).agents:
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
