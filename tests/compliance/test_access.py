"""The access rules on their own, over a real ledger (SQLite and PostgreSQL): who works on a case."""

from __future__ import annotations

import pytest

from compliance.access import AccessService, Permission, Reader, allowed
from compliance.assignments import staff_of
from ledger.appender import NewEntry
from ledger.errors import CaseExists, Conflict, InvalidInput, NotFound, PolicyViolation
from ledger.service import Ledger

AGENT = Reader("user:alice", "agent")
OTHER = Reader("user:bob", "agent")


def _log(ledger: Ledger, reader: Reader, case: str) -> None:
    new_case = AccessService(ledger).may_log("t", reader, case)
    ledger.appender.append("t", NewEntry(kind="interaction", case=case, actor=reader.actor, content=b"x",
                                         new_case=new_case))


def test_staff_is_the_opener_plus_assignments_in_log_order() -> None:
    def header(actor: str, kind: str = "interaction", **meta: str) -> dict[str, object]:
        return {"actor": actor, "kind": kind, "meta": meta}

    assert not staff_of([]).exists
    staff = staff_of([header("user:a"), header("user:s", "assignment", action="assign", agent="user:b"),
                      header("user:s", "assignment", action="unassign", agent="user:a")])
    assert staff.exists and staff.opener == "user:a" and staff.agents == {"user:b"}


def test_an_agent_opens_a_case_and_only_then_owns_it(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    access = AccessService(ledger)
    assert access.may_log("t", AGENT, "K-1") is True  # new: the entry must open it
    _log(ledger, AGENT, "K-1")
    assert access.may_log("t", AGENT, "K-1") is False
    assert access.works_on("t", AGENT, "K-1") and not access.works_on("t", OTHER, "K-1")
    with pytest.raises(PolicyViolation):
        access.may_log("t", OTHER, "K-1")


def test_a_case_opened_meanwhile_refuses_the_entry_that_had_to_open_it(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    access = AccessService(ledger)
    mine, theirs = access.may_log("t", AGENT, "K-2"), access.may_log("t", OTHER, "K-2")
    assert mine and theirs
    _log(ledger, AGENT, "K-2")
    with pytest.raises(CaseExists):
        ledger.appender.append("t", NewEntry(kind="interaction", case="K-2", actor=OTHER.actor, new_case=True))
    assert ledger.tenants.info("t").size == 1


def test_supervisors_assign_and_unassign(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    access = AccessService(ledger)
    _log(ledger, AGENT, "K-3")
    access.assignments.assign("t", "user:sam", "K-3", OTHER.actor)
    assert access.works_on("t", OTHER, "K-3")
    with pytest.raises(Conflict):
        access.assignments.assign("t", "user:sam", "K-3", OTHER.actor)
    access.assignments.unassign("t", "user:sam", "K-3", OTHER.actor)
    assert not access.works_on("t", OTHER, "K-3")
    with pytest.raises(NotFound):
        access.assignments.unassign("t", "user:sam", "K-3", OTHER.actor)
    with pytest.raises(InvalidInput):
        access.assignments.assign("t", "user:sam", "K-3", "service:robot")
    kinds = [entry.header["kind"] for entry in ledger.reads.case("t", "K-3", decrypt=False)]
    assert kinds == ["interaction", "assignment", "assignment"]


def test_the_tokens_cases_claim_grants_and_bounds(ledger: Ledger) -> None:
    ledger.tenants.create("t")
    access = AccessService(ledger)
    _log(ledger, AGENT, "K-4")
    claimed = Reader("user:carol", "agent", cases=frozenset({"K-4"}))
    assert access.works_on("t", claimed, "K-4") and access.may_log("t", claimed, "K-4") is False
    with pytest.raises(PolicyViolation):  # a claim bounds the cases the agent may open
        access.may_log("t", claimed, "K-5")
    with pytest.raises(PolicyViolation):
        access.may_log("t", Reader("user:dave", "agent", cases=frozenset()), "K-4")


def test_role_table() -> None:
    assert allowed(Reader("user:s", "supervisor"), Permission.ASSIGN_CASES)
    for role in ("agent", "auditor", "admin", "client"):
        assert not allowed(Reader("user:x", role), Permission.ASSIGN_CASES)
    assert not allowed(Reader("user:a", "auditor"), Permission.READ_CONTENT)
    assert allowed(Reader("user:a", "auditor", frozenset({"content"})), Permission.READ_CONTENT)
