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
    assert bad.returncode == 2 and bad.stderr.startswith("caseledger: --rule 'forever'") and "Traceback" not in bad.stderr
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
    again = cli.run("compliance", "hold", "release", "--tenant", "acme", "--actor", "user:sue", hold["id"],
                    "--reason", "closed", ok=False)
    assert again.returncode == 1 and "released already" in again.stderr
