"""``caseledger compliance``: retention policy, legal holds, erasure requests, and the run that carries
out erasures and expiries that have become due (DESIGN §10). The operator's commands: the actor
they record is ``--actor``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import TenantOpt, app, emit, fail, open_ledger
from compliance.desk import ComplianceDesk

compliance_app = typer.Typer(no_args_is_help=True, help="Retention, legal holds and erasure (DESIGN §10).")
app.add_typer(compliance_app, name="compliance")
policy_app = typer.Typer(no_args_is_help=True, help="The tenant's retention policy.")
compliance_app.add_typer(policy_app, name="policy")
hold_app = typer.Typer(no_args_is_help=True, help="Legal holds on a case or a subject.")
compliance_app.add_typer(hold_app, name="hold")

ActorOpt = Annotated[str, typer.Option("--actor", help="who does it, recorded in the log (user:… or service:…)")]
_RULE = re.compile(r"(?P<kinds>[a-z*,_]+)=(?P<n>[0-9]{1,5})(?P<unit>[yd])\Z")


def _rule(text: str) -> dict[str, Any]:
    """``interaction,document=7y`` or ``access=30d`` as a rule."""
    match = _RULE.fullmatch(text)
    if match is None:
        fail(f"--rule {text!r}: write KINDS=Ny or KINDS=Nd, e.g. interaction=7y or access,share=30d", 2)
    unit = "years" if match["unit"] == "y" else "days"
    return {"kinds": match["kinds"].split(","), unit: int(match["n"])}


@policy_app.command("show")
def policy_show(tenant: TenantOpt) -> None:
    """The policy in force and its history."""
    with open_ledger() as led:
        history = ComplianceDesk(led).retention.history(tenant)
    emit({"current": history[-1].to_json() if history else None, "history": [v.to_json() for v in history]})


@policy_app.command("set")
def policy_set(
    tenant: TenantOpt,
    actor: ActorOpt,
    profile: Annotated[list[str] | None, typer.Option("--profile", help="hipaa, sec-17a-4, finra-4511, gdpr, none")
                       ] = None,
    rule: Annotated[list[str] | None, typer.Option("--rule", help="KINDS=Ny or KINDS=Nd (kinds comma-separated, "
                                                                  "* for all)")] = None,
    lock: Annotated[bool, typer.Option("--lock", help="lock it: from then on it can only be lengthened")] = False,
) -> None:
    """Set the retention policy from now on (a `policy` entry)."""
    from compliance.retention import RetentionPolicy

    rules = [_rule(r) for r in rule or []]
    with open_ledger() as led:
        version = ComplianceDesk(led).retention.set(tenant, RetentionPolicy.of(profile or [], rules, locked=lock),
                                                    actor)
    emit(version.to_json())


@hold_app.command("place")
def hold_place(
    tenant: TenantOpt,
    actor: ActorOpt,
    reason: Annotated[str, typer.Option(help="a matter number or code: recorded in clear, no personal data")],
    case: Annotated[str | None, typer.Option(help="the case to hold")] = None,
    subject_ref: Annotated[str | None, typer.Option("--subject-ref", help="the customer reference to hold")] = None,
) -> None:
    """Place a legal hold (a `hold` entry): nothing it covers is erased or expires until released."""
    with open_ledger() as led:
        emit(ComplianceDesk(led).holds.place(tenant, actor, reason, case=case, subject_ref=subject_ref).to_json())


@hold_app.command("release")
def hold_release(tenant: TenantOpt, actor: ActorOpt, hold_id: Annotated[str, typer.Argument(help="the hold's id")],
                 reason: Annotated[str, typer.Option(help="why it ends")]) -> None:
    """Release a hold (a `hold` entry)."""
    with open_ledger() as led:
        emit(ComplianceDesk(led).holds.release(tenant, hold_id, actor, reason).to_json())


@hold_app.command("list")
def hold_list(tenant: TenantOpt,
              active: Annotated[bool, typer.Option("--active", help="only holds in place")] = False) -> None:
    with open_ledger() as led:
        emit({"holds": [h.to_json() for h in ComplianceDesk(led).holds.all(tenant, active=True if active else None)]})


@compliance_app.command()
def erase(
    tenant: TenantOpt,
    actor: ActorOpt,
    subject_ref: Annotated[str, typer.Option("--subject-ref", help="the customer's reference")],
    reason: Annotated[str, typer.Option(help="gdpr-art-17, consent-withdrawn, unlawful-processing, "
                                             "legal-obligation or other")],
    certificate: Annotated[Path | None, typer.Option(help="write the erasure certificate (JSON) here")] = None,
) -> None:
    """Request the erasure of a subject: carried out now, or deferred while retention or a hold applies.
    Prints the decision with its salt, which is shown this once (the certificate names the subject by
    HMAC-SHA256(salt, reference))."""
    with open_ledger() as led:
        decision = ComplianceDesk(led).erasures.request(tenant, subject_ref, reason, actor)
    if certificate is not None and decision.certificate is not None:
        certificate.write_text(json.dumps(decision.certificate, indent=2) + "\n", encoding="utf-8")
    emit(decision.to_json())


@compliance_app.command()
def erasures(tenant: TenantOpt,
             request_id: Annotated[str | None, typer.Option("--id", help="one request, with its certificate")] = None,
             pdf: Annotated[Path | None, typer.Option("--pdf", help="with --id: write its certificate as a "
                                                                    "signed PDF page here")] = None) -> None:
    """The erasure requests and where they stand."""
    with open_ledger() as led:
        desk = ComplianceDesk(led)
        if pdf is not None:
            if request_id is None:
                fail("--pdf needs --id", 2)
            from compliance.access import Reader

            desk.certificate_pdf(tenant, Reader("service:cli", "admin"), request_id, pdf)
        if request_id is not None:
            emit(desk.erasures.get(tenant, request_id).to_json())
        else:
            emit({"erasures": [d.to_json() for d in desk.erasures.all(tenant)]})


@compliance_app.command()
def run(tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="one tenant (default: all)")] = None) -> None:
    """Carry out the erasures and expiries that have become due."""
    with open_ledger() as led:
        desk = ComplianceDesk(led)
        names = [tenant] if tenant is not None else led.tenants.names()
        emit({name: desk.erasures.run(name) for name in names})


@compliance_app.command()
def audit(tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="one tenant (default: all)")] = None
          ) -> None:
    """Run the self-audit now (verify-log and, where anchoring is on, the anchored checkpoint's
    consistency); each log's outcome is an `audit` entry. Exit 1 if any log fails."""
    from compliance.audit import SelfAudit

    with open_ledger() as led:
        outcome = SelfAudit(led).run(tenant)
    emit(outcome.to_json())
    if not outcome.ok:
        failed = [log for log in outcome.logs if not log.ok]
        fail(f"self-audit FAILED for {', '.join(log.log for log in failed)}: {failed[0].message}", 1)


@compliance_app.command()
def disclosures(
    tenant: TenantOpt,
    case: Annotated[str | None, typer.Option(help="a case")] = None,
    subject_ref: Annotated[str | None, typer.Option("--subject-ref", help="a customer's reference")] = None,
    since: Annotated[str | None, typer.Option(help="from (RFC 3339; default: six years ago)")] = None,
    until: Annotated[str | None, typer.Option(help="until (RFC 3339; default: now)")] = None,
) -> None:
    """The accounting of disclosures and the access report of a case or a customer (HIPAA §164.528)."""
    from compliance.disclosures import Disclosures

    with open_ledger() as led:
        emit(Disclosures(led).report(tenant, case=case, subject_ref=subject_ref, since=since, until=until).to_json())
