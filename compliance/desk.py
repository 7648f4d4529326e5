"""The compliance records as the faces use them: who may do what (`compliance.access`), then the rules
(`compliance.retention`, `.holds`, `.erasure`). HTTP and the CLI both come through here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compliance.access import Permission, Reader, require
from compliance.audit import AuditOutcome, SelfAudit
from compliance.disclosures import DisclosureReport, Disclosures
from compliance.erasure import ErasureDecision, Erasures
from compliance.holds import Hold, Holds
from compliance.retention import PolicyVersion, Retention, RetentionPolicy
from ledger.errors import Conflict
from ledger.service import Ledger

__all__ = ["ComplianceDesk"]


class ComplianceDesk:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.retention = Retention(ledger)
        self.holds = Holds(ledger)
        self.erasures = Erasures(ledger)

    # retention
    def policy(self, tenant: str, reader: Reader) -> dict[str, Any]:
        require(reader, Permission.READ_COMPLIANCE)
        history = self.retention.history(tenant)
        return {"current": history[-1].to_json() if history else None,
                "history": [version.to_json() for version in history]}

    def set_policy(self, tenant: str, reader: Reader, profiles: Sequence[str], rules: Sequence[Mapping[str, Any]],
                   locked: bool) -> PolicyVersion:
        require(reader, Permission.SET_RETENTION)
        return self.retention.set(tenant, RetentionPolicy.of(profiles, rules, locked=locked), reader.actor)

    # holds
    def place_hold(self, tenant: str, reader: Reader, reason: str, *, case: str | None,
                   subject_ref: str | None) -> Hold:
        require(reader, Permission.PLACE_HOLDS)
        return self.holds.place(tenant, reader.actor, reason, case=case, subject_ref=subject_ref)

    def release_hold(self, tenant: str, reader: Reader, hold_id: str, reason: str) -> Hold:
        require(reader, Permission.RELEASE_HOLDS)
        return self.holds.release(tenant, hold_id, reader.actor, reason)

    def hold(self, tenant: str, reader: Reader, hold_id: str) -> Hold:
        require(reader, Permission.READ_COMPLIANCE)
        return self.holds.get(tenant, hold_id)

    def all_holds(self, tenant: str, reader: Reader, active: bool | None) -> list[Hold]:
        require(reader, Permission.READ_COMPLIANCE)
        return self.holds.all(tenant, active=active)

    # erasure
    def request_erasure(self, tenant: str, reader: Reader, subject_ref: str, reason: str) -> ErasureDecision:
        require(reader, Permission.REQUEST_ERASURE)
        return self.erasures.request(tenant, subject_ref, reason, reader.actor)

    def erasure(self, tenant: str, reader: Reader, request_id: str) -> ErasureDecision:
        require(reader, Permission.READ_COMPLIANCE)
        return self.erasures.get(tenant, request_id)

    def certificate_pdf(self, tenant: str, reader: Reader, request_id: str, out_path: Path) -> None:
        """The erasure certificate as a signed PDF page; Conflict while the erasure is deferred."""
        from compliance.certificate_pdf import render_certificate_pdf  # ReportLab and pyHanko: only here
        from compliance.export_report import report_signer

        decision = self.erasure(tenant, reader, request_id)
        if decision.certificate is None:
            raise Conflict(f"erasure request {request_id} is {decision.status}: it has no certificate yet")
        render_certificate_pdf(decision.certificate, out_path, report_signer(self.ledger))

    def all_erasures(self, tenant: str, reader: Reader) -> list[ErasureDecision]:
        require(reader, Permission.READ_COMPLIANCE)
        return self.erasures.all(tenant)

    def run(self, tenant: str, reader: Reader) -> dict[str, Any]:
        require(reader, Permission.RUN_COMPLIANCE)
        return self.erasures.run(tenant)

    # accounting of disclosures, self-audit
    def disclosures(self, tenant: str, reader: Reader, *, case: str | None, subject_ref: str | None,
                    since: str | None, until: str | None) -> DisclosureReport:
        require(reader, Permission.READ_COMPLIANCE)
        return Disclosures(self.ledger).report(tenant, case=case, subject_ref=subject_ref, since=since, until=until)

    def audit(self, tenant: str, reader: Reader) -> AuditOutcome:
        require(reader, Permission.RUN_AUDIT)
        return SelfAudit(self.ledger).run(tenant)
