"""Retention policies, legal holds and erasure by crypto-shredding (issue 11 items 2-4), on SQLite and
PostgreSQL, with a clock the tests move by years."""

from __future__ import annotations

import json
from datetime import date

import pytest

from compliance.erasure import Erasures
from compliance.holds import Holds
from compliance.retention import Period, Retention, RetentionPolicy
from ledger.appender import NewEntry
from ledger.documents import NewDocument
from ledger.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from ledger.service import Ledger
from tests.compliance.conftest import Clock
from verification import Trust, verify_consistency_proof, verify_inclusion_proof
from verification.erasure_certificate import ErasureCertificate, verify_erasure_certificate
from verification.errors import SignatureError, VerificationError


def _say(ledger: Ledger, text: str, *, case: str = "C-1", ref: str | None = "cust-1", kind: str = "interaction") -> int:
    return ledger.appender.append("t", NewEntry(kind=kind, channel="chat", case=case, subject_ref=ref,
                                                actor="user:agent-1", content=text.encode())).seq


def _trust(ledger: Ledger) -> Trust:
    return Trust.of(ledger.tenants.info("t").vkey)


# ------------------------------------------------------------------ profiles and rules

@pytest.mark.parametrize(("profiles", "kind", "expected"), [
    (["hipaa"], "interaction", date(2032, 3, 2)),
    (["sec-17a-4"], "document", date(2032, 3, 2)),
    (["finra-4511"], "access", date(2032, 3, 2)),
    (["gdpr"], "interaction", None),
    (["none"], "interaction", None),
    (["gdpr", "hipaa"], "interaction", date(2032, 3, 2)),
])
def test_each_profile_keeps_what_its_rule_says(profiles: list[str], kind: str, expected: date | None) -> None:
    assert RetentionPolicy.of(profiles).ends(kind, date(2026, 3, 2)) == expected


def test_profiles_and_rules_combine_and_the_longest_period_wins() -> None:
    policy = RetentionPolicy.of(["hipaa"], [{"kinds": ["interaction"], "years": 7}, {"kinds": ["access"], "days": 30}])
    assert policy.ends("interaction", date(2026, 1, 10)) == date(2033, 1, 10)
    assert policy.ends("access", date(2026, 1, 10)) == date(2032, 1, 10)  # hipaa's 6 years beat 30 days
    assert policy.period("document") == Period(years=6)
    assert RetentionPolicy.of(["sec-17a-4"]).rules[0].accessible == Period(years=2)


def test_a_period_from_29_february_ends_on_1_march() -> None:
    assert RetentionPolicy.of(["hipaa"]).ends("interaction", date(2028, 2, 29)) == date(2034, 3, 1)


@pytest.mark.parametrize(("profiles", "rules", "message"), [
    (["hipaa", "forever"], [], "unknown retention profile 'forever'"),
    ([], [{"kinds": ["interaction"]}], "either 'years' or 'days'"),
    ([], [{"kinds": ["interaction"], "years": 0}], "from 1 to 100"),
    ([], [{"kinds": ["interaction"], "years": 2, "days": 3}], "either 'years' or 'days'"),
    ([], [{"kinds": ["chitchat"], "days": 3}], "'kinds' is a list of entry kinds"),
    ([], [{"kinds": [], "days": 3}], "'kinds' is a list of entry kinds"),
    ([], [{"kinds": ["*"], "days": True}], "whole number"),
    ([], [{"kinds": ["*"], "days": 3, "note": "x"}], "a rule is"),
])
def test_a_malformed_policy_is_refused_naming_what_is_wrong(profiles: list[str], rules: list[dict[str, object]],
                                                           message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        RetentionPolicy.of(profiles, rules)


# ------------------------------------------------------------------ policies on record

def test_every_policy_change_is_a_policy_entry_and_governs_entries_from_then_on(timed: Ledger, clock: Clock) -> None:
    timed.tenants.create("t")
    retention = Retention(timed)
    before = _say(timed, "before any policy")
    first = retention.set("t", RetentionPolicy.of(["hipaa"]), "user:admin")
    governed = _say(timed, "under hipaa")
    second = retention.set("t", RetentionPolicy.of(["none"]), "user:admin")
    after = _say(timed, "under none")
    entry = timed.reads.entry("t", first.seq, decrypt=False).header
    assert entry["kind"] == "policy" and entry["actor"] == "user:admin"
    assert entry["meta"] == {"profiles": ["hipaa"], "rules": [], "locked": False}
    assert [v.version for v in retention.history("t")] == [1, 2] and retention.current("t") == second
    book = retention.book("t")
    created = date(2026, 3, 2)
    assert book.ends(before, "interaction", created) is None
    assert book.ends(governed, "interaction", created) == date(2032, 3, 2)
    assert book.ends(after, "interaction", created) is None


def test_a_policy_entry_cannot_be_written_around_the_service(timed: Ledger) -> None:
    timed.tenants.create("t")
    with pytest.raises(InvalidInput, match="compliance record"):
        timed.appender.append("t", NewEntry(kind="policy", meta={"profiles": []}))
    with pytest.raises(InvalidInput, match="compliance record"):
        timed.appender.append("t", NewEntry(kind="hold", meta={"action": "release"}))


def test_a_locked_policy_can_be_lengthened_but_never_shortened_unlocked_or_removed(timed: Ledger) -> None:
    timed.tenants.create("t")
    retention = Retention(timed)
    retention.set("t", RetentionPolicy.of(["hipaa"], locked=True), "user:admin")
    size = timed.tenants.info("t").size
    for attempt, message in [
        (RetentionPolicy.of(["none"], locked=True), "every kind would be kept no time instead of 6 years"),
        (RetentionPolicy.of([], [{"kinds": ["*"], "days": 2000}], locked=True), "2000 days instead of 6 years"),
        (RetentionPolicy.of([], [{"kinds": ["interaction"], "years": 9}], locked=True), "every kind"),
        (RetentionPolicy.of(["hipaa"]), "cannot be unlocked or removed"),
    ]:
        with pytest.raises(PolicyViolation, match=message):
            retention.set("t", attempt, "user:admin")
    assert timed.tenants.info("t").size == size, "a refused change writes nothing"
    longer = retention.set("t", RetentionPolicy.of(["hipaa"], [{"kinds": ["interaction"], "years": 10}], locked=True),
                           "user:admin")
    assert longer.version == 2 and longer.policy.period("interaction") == Period(years=10)
    days = RetentionPolicy.of([], [{"kinds": ["*"], "days": 2200}, {"kinds": ["interaction"], "years": 11}],
                              locked=True)
    assert retention.set("t", days, "user:admin").version == 3


# ------------------------------------------------------------------ holds

def test_a_hold_is_placed_and_released_on_record(timed: Ledger) -> None:
    timed.tenants.create("t")
    holds = Holds(timed)
    on_case = holds.place("t", "user:sup", "SEC inquiry 2026-14", case="C-1")
    on_subject = holds.place("t", "user:sup", "litigation", subject_ref="cust-1")
    assert on_subject.subject == timed.subjects.handle("t", "cust-1") and on_subject.case is None
    placed = timed.reads.entry("t", on_case.place_seq, decrypt=False).header
    assert placed["kind"] == "hold" and placed["case"] == "C-1"
    assert placed["meta"] == {"action": "place", "hold": on_case.hold_id, "reason": "SEC inquiry 2026-14"}
    released = holds.release("t", on_case.hold_id, "user:admin", "inquiry closed")
    assert not released.active and released.released_by == "user:admin" and released.release_seq is not None
    assert timed.reads.entry("t", released.release_seq, decrypt=False).header["meta"]["action"] == "release"
    with pytest.raises(Conflict, match="released already"):
        holds.release("t", on_case.hold_id, "user:admin", "again")
    assert [h.hold_id for h in holds.all("t", active=True)] == [on_subject.hold_id]


def test_another_tenants_hold_is_not_found_and_personal_reasons_are_refused(timed: Ledger) -> None:
    timed.tenants.create("t")
    timed.tenants.create("u")
    holds = Holds(timed)
    hold = holds.place("t", "user:sup", "audit", case="C-1")
    with pytest.raises(NotFound):
        holds.release("u", hold.hold_id, "user:admin", "mine now")
    with pytest.raises(InvalidInput, match="no names or other personal data"):
        holds.place("t", "user:sup", "jane.doe@example.com sued", case="C-1")
    with pytest.raises(InvalidInput, match="either a case or a subject_ref"):
        holds.place("t", "user:sup", "both", case="C-1", subject_ref="cust-1")


# ------------------------------------------------------------------ erasure

def test_an_erasure_with_no_retention_is_carried_out_and_every_proof_still_verifies(timed: Ledger) -> None:
    timed.tenants.create("t")
    kept = _say(timed, "another customer", ref="cust-2")
    erased = [_say(timed, "my card is 4111 1111 1111 1111"), _say(timed, "call me on +41 79 000 00 00", case="C-2")]
    document = timed.documents.upload("t", NewDocument(case="C-1", title="statement", name="s.pdf",
                                                       subject_ref="cust-1"), [b"%PDF-1.7 statement"])
    blob = timed.documents.blobs.path(document.document_id)
    assert blob.exists()
    size_before = timed.tenants.info("t").size or 0

    decision = Erasures(timed).request("t", "cust-1", "gdpr-art-17", "user:dpo")

    assert decision.status == "erased" and decision.salt is not None and decision.certificate is not None
    for seq in [*erased, document.receipt.seq]:
        assert timed.reads.entry("t", seq).erased
    assert timed.reads.entry("t", kept).content == b"another customer"
    assert not blob.exists(), "the subject's blobs are deleted"
    with pytest.raises(NotFound):
        timed.subjects.handle("t", "cust-1", create=False)
    record = timed.reads.entry("t", decision.erased_seq or -1, decrypt=False).header
    assert record["kind"] == "erasure" and record["meta"]["decision"] == "erased"
    assert "cust-1" not in json.dumps(record)
    assert timed.logcheck.verify("t")["ok"] is True
    trust = _trust(timed)
    size = timed.tenants.info("t").size
    for seq in erased:
        verify_inclusion_proof(timed.proofs.inclusion("t", seq, size, signed=True).to_json(), trust)
    verify_consistency_proof(timed.proofs.consistency("t", size_before, size, signed=True).to_json(), trust)

    certificate = decision.certificate
    result = verify_erasure_certificate(certificate, trust, subject_ref="cust-1", salt=bytes.fromhex(decision.salt))
    assert result["ok"] and result["subject_matches"] and result["entries"] == 3
    assert ErasureCertificate.from_json(certificate).entries == tuple(sorted([*erased, document.receipt.seq]))
    with pytest.raises(VerificationError, match="another subject"):
        verify_erasure_certificate(certificate, trust, subject_ref="cust-2", salt=bytes.fromhex(decision.salt))
    forged = dict(certificate, entries=certificate["entries"][:-1])
    with pytest.raises(SignatureError, match="does not say what"):
        verify_erasure_certificate(forged, trust)
    with pytest.raises(VerificationError, match="key not trusted"):
        verify_erasure_certificate(certificate, Trust())
    assert Erasures(timed).get("t", decision.request_id).certificate == certificate


def test_an_erased_subjects_content_is_gone_in_a_second_worker_with_warm_caches(timed: Ledger, clock: Clock) -> None:
    timed.tenants.create("t")
    seq = _say(timed, "secret")
    second = Ledger.open(timed.settings, clock=clock)
    try:
        assert second.reads.entry("t", seq).content == b"secret"  # its caches now hold the key and mapping
        second.subjects.handle("t", "cust-1")
        Erasures(timed).request("t", "cust-1", "gdpr-art-17", "user:dpo")
        assert second.reads.entry("t", seq).erased
        again = second.appender.append("t", NewEntry(kind="interaction", case="C-9", subject_ref="cust-1",
                                                     content=b"new"))
        assert again.header["subject"] != timed.reads.entry("t", seq, decrypt=False).header["subject"]
    finally:
        second.close()


def test_retention_defers_an_erasure_until_its_end_and_the_run_then_carries_it_out(timed: Ledger,
                                                                                   clock: Clock) -> None:
    timed.tenants.create("t")
    Retention(timed).set("t", RetentionPolicy.of(["hipaa", "gdpr"]), "user:admin")
    seq = _say(timed, "kept six years")
    erasures = Erasures(timed)
    decision = erasures.request("t", "cust-1", "gdpr-art-17", "user:dpo")
    assert decision.status == "deferred" and decision.not_before == "2032-03-02" and decision.certificate is None
    meta = timed.reads.entry("t", decision.decision_seq, decrypt=False).header["meta"]
    assert meta == {"request": decision.request_id, "decision": "deferred", "reason": "gdpr-art-17",
                    "blocked_by": "retention", "not_before": "2032-03-02", "hold": None}
    assert erasures.run("t")["still_deferred"] == [decision.request_id]
    assert timed.reads.entry("t", seq).content == b"kept six years"
    clock.years_later(6)
    done = erasures.run("t")
    assert done["erased"] == [decision.request_id]
    assert timed.reads.entry("t", seq).erased
    carried = erasures.get("t", decision.request_id)
    assert carried.status == "erased" and carried.certificate is not None
    assert verify_erasure_certificate(carried.certificate, _trust(timed))["entries"] == 1


def test_a_hold_blocks_erasure_and_expiry_until_it_is_released(timed: Ledger, clock: Clock) -> None:
    timed.tenants.create("t")
    Retention(timed).set("t", RetentionPolicy.of(["finra-4511"]), "user:admin")
    held_seq = _say(timed, "under investigation", case="C-1")
    other_seq = _say(timed, "another customer's, expiring", case="C-7", ref="cust-2")
    hold = Holds(timed).place("t", "user:sup", "FINRA exam", case="C-1")
    clock.years_later(7)
    erasures = Erasures(timed)
    decision = erasures.request("t", "cust-1", "gdpr-art-17", "user:dpo")
    assert decision.status == "deferred" and decision.held_by == hold.hold_id and decision.not_before is None
    done = erasures.run("t")
    assert done["still_deferred"] == [decision.request_id] and len(done["expired"]) == 1, "cust-2 expires"
    assert timed.reads.entry("t", held_seq).content == b"under investigation"
    assert timed.reads.entry("t", other_seq).erased
    expiry = timed.reads.entry("t", (timed.tenants.info("t").size or 0) - 1, decrypt=False).header
    assert expiry["kind"] == "erasure" and expiry["meta"]["reason"] == "retention-expired"
    Holds(timed).release("t", hold.hold_id, "user:admin", "exam closed")
    assert erasures.run("t")["erased"] == [decision.request_id]
    assert timed.reads.entry("t", held_seq).erased
    assert timed.logcheck.verify("t")["ok"] is True


def test_an_erasure_request_is_refused_for_bad_input_and_unknown_subjects(timed: Ledger) -> None:
    timed.tenants.create("t")
    timed.tenants.create("u")
    _say(timed, "hello")
    erasures = Erasures(timed)
    with pytest.raises(InvalidInput, match="unknown reason code"):
        erasures.request("t", "cust-1", "because", "user:dpo")
    with pytest.raises(NotFound, match="no such subject"):
        erasures.request("t", "nobody", "gdpr-art-17", "user:dpo")
    with pytest.raises(NotFound, match="no such subject"):
        erasures.request("u", "cust-1", "gdpr-art-17", "user:dpo")
    decision = erasures.request("t", "cust-1", "gdpr-art-17", "user:dpo")
    with pytest.raises(NotFound):
        erasures.get("u", decision.request_id)
    with pytest.raises(NotFound, match="erased already"):
        erasures.request("t", "cust-1", "gdpr-art-17", "user:dpo")
