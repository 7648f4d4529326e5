"""`caseledger compliance` end to end in subprocesses, on SQLite and PostgreSQL: a policy, a hold, an
erasure deferred by the hold then carried out by the run, its certificate verified by `verify`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.test_cli import CLI, cli  # noqa: F401  (the fixture)


def test_the_compliance_commands_place_a_hold_defer_then_carry_out_an_erasure(cli: CLI, tmp_path: Path) -> None:  # noqa: F811
    cli.json("tenant", "create", "acme")
    seq = cli.json("append", "--tenant", "acme", "--kind", "interaction", "--case", "C-1", "--channel", "email",
                   "--subject-ref", "cust-9", "--content-file", "-",
                   stdin="my IBAN is CH93 0076 2011 6238 5295 7")["seq"]
    policy = cli.json("compliance", "policy", "set", "--tenant", "acme", "--actor", "user:ada", "--profile", "gdpr",
                      "--rule", "access=30d")
    assert policy["version"] == 1 and policy["rules"] == [{"kinds": ["access"], "days": 30}]
    bad = cli.run("compliance", "policy", "set", "--tenant", "acme", "--actor", "user:ada", "--rule", "forever",
                  ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith("caseledger: --rule 'forever'")
    assert "Traceback" not in bad.stderr
    hold = cli.json("compliance", "hold", "place", "--tenant", "acme", "--actor", "user:sue", "--case", "C-1",
                    "--reason", "matter 2026-7")
    certificate = tmp_path / "certificate.json"
    deferred = cli.json("compliance", "erase", "--tenant", "acme", "--actor", "user:dpo", "--subject-ref", "cust-9",
                        "--reason", "gdpr-art-17", "--certificate", str(certificate))
    assert deferred["status"] == "deferred" and deferred["held_by"] == hold["id"] and not certificate.exists()
    assert cli.json("compliance", "run", "--tenant", "acme")["acme"]["still_deferred"] == [deferred["id"]]
    cli.json("compliance", "hold", "release", "--tenant", "acme", "--actor", "user:sue", hold["id"],
             "--reason", "closed")
    assert cli.json("compliance", "run")["acme"]["erased"] == [deferred["id"]]
    read = cli.run("read", "--tenant", "acme", "--seq", str(seq))
    assert json.loads(read.stdout)["erased"] is True and "was erased" in read.stderr
    done = cli.json("compliance", "erasures", "--tenant", "acme", "--id", deferred["id"])
    certificate.write_text(json.dumps(done["certificate"]), encoding="utf-8")
    vkey = cli.json("tenant", "show", "acme")["vkey"]
    verified = cli.run("verify", str(certificate), "--vkey", vkey)
    assert "ok" in verified.stdout
    assert cli.run("verify-log", "--tenant", "acme").returncode == 0
    audited = cli.json("compliance", "audit")
    assert audited["ok"] is True and audited["logs"][0]["tenant"] == "acme"
    accounting = cli.json("compliance", "disclosures", "--tenant", "acme", "--case", "C-1")
    assert accounting["scope"] == {"case": "C-1"} and accounting["disclosures"] == []
    again = cli.run("compliance", "hold", "release", "--tenant", "acme", "--actor", "user:sue", hold["id"],
                    "--reason", "closed", ok=False)
    assert again.returncode == 1 and "released already" in again.stderr


def test_export_writes_a_signed_pdf_that_verify_checks_in_one_command(cli: CLI, tmp_path: Path) -> None:  # noqa: F811
    cli.json("tenant", "create", "acme")
    for channel in ("phone", "chat"):
        cli.json("append", "--tenant", "acme", "--kind", "interaction", "--case", "C-7", "--channel", channel,
                 "--content-file", "-", stdin='{"note":"<b>not bold</b>","card":"4111"}')
    report = tmp_path / "report.pdf"
    made = cli.json("export", "--tenant", "acme", "--case", "C-7", "--content", "--redact", "/card",
                    "--format", "pdf", "--out", str(report), "--actor", "user:auditor")
    assert made["status"] == "done" and made["written"] == [str(report)]
    vkey = cli.json("tenant", "show", "acme")["vkey"]
    cert = Path(cli.env["CASELEDGER_DATA_DIR"]) / "keys" / "report-signing.pem"
    verified = json.loads(cli.run("verify", str(report), "--vkey", vkey, "--cert", str(cert)).stdout)
    assert verified["ok"] and verified["signer_trusted"] and verified["bundle"]["valid"]
    assert verified["bundle"]["counts"]["content_redacted"] == 2
    unsure = cli.run("verify", str(report), "--vkey", vkey, ok=False)
    assert unsure.returncode == 2 and "--cert" in unsure.stderr
    data = bytearray(report.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x01
    edited = tmp_path / "edited.pdf"
    edited.write_bytes(bytes(data))
    failed = cli.run("verify", str(edited), "--vkey", vkey, "--cert", str(cert), ok=False)
    assert failed.returncode == 1 and failed.stderr.startswith("caseledger: ") and "Traceback" not in failed.stderr
    bundle = tmp_path / "bundle.json"
    cli.json("export", "--tenant", "acme", "--from", "0", "--to", "2", "--format", "bundle", "--out", str(bundle))
    assert json.loads(cli.run("verify", str(bundle), "--vkey", vkey).stdout)["ok"] is True
    again = cli.run("export", "--tenant", "acme", "--case", "C-7", "--out", str(bundle), ok=False)
    assert again.returncode == 2 and "exists already" in again.stderr
