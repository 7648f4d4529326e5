"""The access rules on their own, over a real ledger (SQLite and PostgreSQL): who works on a case."""

from __future__ import annotations

import pytest

from compliance.access import AccessService, Permission, Reader, allowed
from ledger.appender import NewEntry
from ledger.cases import CaseRule, staff_of
from ledger.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from ledger.service import Ledger

AGENT = Reader("user:alice", "agent")
OTHER = Reader("user:bob", "agent")


def _log(ledger: Ledger, reader: Reader, case: str) -> None:
    ledger.appender.append("t", NewEntry(kind="interaction", case=case, actor=reader.actor, content=b"x",
                                         case_rule=AccessService.rule_for(reader, case)))


def test_staff_is_the_opener_plus_assignments_in_log_order() -> None:
    def header(actor: str, kind: str = "interaction", **meta: str) -> dict[str, object]:
        return {"actor": actor, "kind": kind, "meta": meta}

    assert not staff_of([]).exists
    staff = staff_of([header("user:a"), header("user:s", "assignment", action="assign", agent="user:b"),
                      header("user:s", "assignment", action="unassign", agent="user:a")])
    assert staff.exists and staff.opener == "user:a" and staff.agents == {"user:b"}


def test_rules_by_role_and_claim() -> None:
    assert AccessService.rule_for(Reader("user:s", "supervisor"), "K") is None
    assert AccessService.rule_for(AGENT, "K") is CaseRule.STAFF_OR_NEW
    claimed = Reader("user:c", "agent", cases=frozenset({"K"}))
    assert AccessService.rule_for(claimed, "K") is None
    assert AccessService.rule_for(claimed, "L") is CaseRule.STAFF  # a claim bounds the cases it may open
    with pytest.raises(PolicyViolation):
        AccessService.rule_for(Reader("user:a", "auditor"), "K")


def test_an_agent_opens_a_case_and_only_then_owns_it(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    access = AccessService(ledger)
    _log(ledger, AGENT, "K-1")
    assert access.works_on("t", AGENT, "K-1") and not access.works_on("t", OTHER, "K-1")
    with pytest.raises(PolicyViolation):
        _log(ledger, OTHER, "K-1")
    _log(ledger, AGENT, "K-1")
    assert ledger.tenants.info("t").size == 2


def test_the_rule_is_checked_within_one_transaction_too(ledger: Ledger) -> None:
    """Entries committed together see each other: the first opens the case for its author only."""
    ledger.tenants.create("t")
    opens = NewEntry(kind="interaction", case="K-2", actor=AGENT.actor, case_rule=CaseRule.STAFF_OR_NEW)
    again = NewEntry(kind="interaction", case="K-2", actor=AGENT.actor, case_rule=CaseRule.STAFF_OR_NEW)
    intruder = NewEntry(kind="interaction", case="K-2", actor=OTHER.actor, case_rule=CaseRule.STAFF_OR_NEW)
    assert len(ledger.appender.append_batch("t", [opens, again])) == 2
    with pytest.raises(PolicyViolation):
        ledger.appender.append_batch("t", [again, intruder])
    assert ledger.tenants.info("t").size == 2, "a refused batch writes nothing"
    assign = NewEntry(kind="assignment", case="K-2", actor="user:sam", meta={"action": "assign", "agent": OTHER.actor})
    assert len(ledger.appender.append_batch("t", [assign, intruder])) == 2
    with pytest.raises(PolicyViolation):  # a claim-bound agent may not open a case
        ledger.appender.append("t", NewEntry(kind="interaction", case="K-3", actor=OTHER.actor,
                                             case_rule=CaseRule.STAFF))


def test_supervisors_assign_and_unassign(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    access = AccessService(ledger)
    _log(ledger, AGENT, "K-4")
    access.assignments.assign("t", "user:sam", "K-4", OTHER.actor)
    assert access.works_on("t", OTHER, "K-4")
    _log(ledger, OTHER, "K-4")
    with pytest.raises(Conflict):
        access.assignments.assign("t", "user:sam", "K-4", OTHER.actor)
    access.assignments.unassign("t", "user:sam", "K-4", OTHER.actor)
    assert not access.works_on("t", OTHER, "K-4")
    with pytest.raises(PolicyViolation):
        _log(ledger, OTHER, "K-4")
    with pytest.raises(NotFound):
        access.assignments.unassign("t", "user:sam", "K-4", OTHER.actor)
    with pytest.raises(InvalidInput):
        access.assignments.assign("t", "user:sam", "K-4", "service:robot")
    kinds = [entry.header["kind"] for entry in ledger.reads.case("t", "K-4", decrypt=False)]
    assert kinds == ["interaction", "assignment", "interaction", "assignment"]


def test_the_tokens_cases_claim_grants_reading(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    access = AccessService(ledger)
    _log(ledger, AGENT, "K-5")
    assert access.works_on("t", Reader("user:carol", "agent", cases=frozenset({"K-5"})), "K-5")
    assert not access.works_on("t", Reader("user:dave", "agent", cases=frozenset()), "K-5")


def test_role_table() -> None:
    assert allowed(Reader("user:s", "supervisor"), Permission.ASSIGN_CASES)
    for role in ("agent", "auditor", "admin", "client"):
        assert not allowed(Reader("user:x", role), Permission.ASSIGN_CASES)
    assert not allowed(Reader("user:a", "auditor"), Permission.READ_CONTENT)
    assert allowed(Reader("user:a", "auditor", frozenset({"content"})), Permission.READ_CONTENT)
