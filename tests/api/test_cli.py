"""The `caseledger` command as a user runs it: JSON out, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import pytest
from typer.testing import CliRunner

from api.cli import app
from ledger.settings import Settings
from tests.conftest import env_for
from verification.entry import CHANNELS

ROOT = Path(__file__).resolve().parents[2]


class CLI:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd

    def run(self, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "api.cli", *args], env=self.env, cwd=self.cwd, input=stdin,
            capture_output=True, text=True, timeout=120,
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.run(*args, stdin=stdin).stdout)

    def lines(self, *args: str, stdin: str | None = None) -> list[Any]:
        return [json.loads(line) for line in self.run(*args, stdin=stdin).stdout.splitlines()]


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> CLI:
    env = env_for(settings)
    env["PYTHONPATH"] = str(ROOT)
    tool = CLI(env, tmp_path)
    made = tool.json("init")
    assert Path(made["data_dir"]).is_dir()
    return tool


class Outcome(Protocol):
    """What a run of the command leaves: a subprocess's, or an in-process run's."""

    returncode: int
    stderr: str


def _error(result: Outcome) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_init_in_development_makes_a_private_master_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASELEDGER_")}
    env["PYTHONPATH"] = str(ROOT)
    tool = CLI(env, tmp_path)
    result = tool.run("init", "--data-dir", str(tmp_path / "d"))
    made = json.loads(result.stdout)
    key = Path(made["master_key_file"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "development mode generated an UNPROTECTED master key" in result.stderr
    assert (tmp_path / "d" / "caseledger.db").exists()
    again = tool.run("init", "--data-dir", str(tmp_path / "d"))
    assert "master_key_file" not in json.loads(again.stdout)
    created = tool.json("--data-dir", str(tmp_path / "d"), "tenant", "create", "acme")
    assert created["origin"] == "caseledger.local/acme"


def test_production_refuses_to_start_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASELEDGER_")}
    env |= {"PYTHONPATH": str(ROOT), "CASELEDGER_MODE": "production"}
    tool = CLI(env, tmp_path)
    assert "production mode needs" in _error(tool.run("init", "--data-dir", str(tmp_path / "p"), ok=False))
    env["CASELEDGER_MASTER_KEY"] = "0" * 64
    assert "placeholder" in _error(tool.run("tenant", "show", "x", ok=False))
    key = tmp_path / "master.key"
    key.write_text("ab" * 32)
    key.chmod(0o644)
    env.pop("CASELEDGER_MASTER_KEY")
    env |= {"CASELEDGER_MASTER_KEY_FILE": str(key), "CASELEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    assert "readable by others" in _error(tool.run("tenant", "show", "x", ok=False))


def test_the_whole_command_line_flow(cli: CLI, tmp_path: Path) -> None:
    created = cli.json("tenant", "create", "acme")
    assert set(created) == {"tenant", "origin", "vkey"}
    content = tmp_path / "call.txt"
    content.write_text("Customer asked about the overdraft fee.")
    receipt = cli.json("append", "--tenant", "acme", "--kind", "interaction", "--channel", "phone",
                       "--case", "C-7", "--subject-ref", "cust-1", "--actor", "user:alice",
                       "--content-file", str(content))
    assert receipt["seq"] == 0 and set(receipt) == {"log", "seq", "entry_hash", "header"}
    batch = "\n".join(json.dumps({"kind": "interaction", "channel": ch, "case": "C-7", "subject_ref": "cust-1",
                                  "content": {"text": f"message {i}"}})
                      for i, ch in enumerate(["email", "chat", "sms"]))
    receipts = cli.lines("append", "--tenant", "acme", "--jsonl", "-", stdin=batch)
    assert [r["seq"] for r in receipts] == [1, 2, 3]
    assert receipts[0]["header"]["case_prev"] == receipt["entry_hash"]
    read = cli.json("read", "--tenant", "acme", "--seq", "0")
    assert read["content_text"] == "Customer asked about the overdraft fee."
    # JSON content reads back as JSON, in the RFC 8785 form it was stored in (as over HTTP)
    assert cli.json("read", "--tenant", "acme", "--seq", "2")["content"] == {"text": "message 1"}
    shown = cli.json("tenant", "show", "acme")
    assert shown["size"] == 4 and len(shown["root"]) == 64
    note = cli.run("checkpoint", "--tenant", "acme").stdout
    assert note.startswith("caseledger.local/acme\n4\n") and "\n— caseledger.local/acme " in note
    inclusion = cli.json("prove", "--tenant", "acme", "--seq", "1")
    assert set(inclusion) == {"type", "v", "log", "leaf_index", "tree_size", "leaf_hash", "root", "proof", "checkpoint"}
    assert inclusion["type"] == "caseledger.inclusion-proof" and inclusion["v"] == 1
    assert inclusion["root"] == shown["root"]
    consistency = cli.json("prove", "--tenant", "acme", "--first", "2", "--second", "4")
    assert set(consistency) == {"type", "v", "log", "first", "second", "first_root", "second_root", "proof",
                                "checkpoint"}
    ranged = cli.json("prove", "--tenant", "acme", "--start", "1", "--end", "3")
    assert ranged["entry_hashes"] == [r["entry_hash"] for r in receipts[:2]]
    for proof in (inclusion, consistency, ranged):
        path = tmp_path / "proof.json"
        path.write_text(json.dumps(proof))
        assert cli.json("verify", str(path), "--vkey", created["vkey"])["ok"] is True
    summary = cli.json("verify-log", "--tenant", "acme")
    assert summary["size"] == 4 and summary["checkpoints"] == 1
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(cli.run("receipt", "--tenant", "acme", "--seq", "2").stdout)
    checked = cli.json("verify", str(receipt_file), "--vkey", created["vkey"])
    assert checked["ok"] and checked["key_trusted"] and checked["seq"] == 2
    doc = json.loads(receipt_file.read_text())
    doc["inclusion"]["proof"][0] = "00" * 32
    receipt_file.write_text(json.dumps(doc))
    assert "root" in _error(cli.run("verify", str(receipt_file), "--vkey", created["vkey"], ok=False)).lower()


def test_verify_needs_no_database(cli: CLI, tmp_path: Path) -> None:
    vkey = cli.json("tenant", "create", "t")["vkey"]
    cli.json("append", "--tenant", "t", "--kind", "interaction", "--content-file", "-", stdin="x")
    receipt = tmp_path / "r.json"
    receipt.write_text(cli.run("receipt", "--tenant", "t", "--seq", "0").stdout)
    offline = CLI({"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
                   "CASELEDGER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, tmp_path)
    assert offline.json("verify", str(receipt), "--vkey", vkey)["ok"] is True


def test_bad_input_gives_one_line_errors(cli: CLI, tmp_path: Path) -> None:
    cli.json("tenant", "create", "t")
    assert "no tenant 'ghost'" in _error(
        cli.run("append", "--tenant", "ghost", "--kind", "interaction", ok=False))
    assert "unknown kind" in _error(cli.run("append", "--tenant", "t", "--kind", "rumour", ok=False))
    assert "unknown channel" in _error(
        cli.run("append", "--tenant", "t", "--kind", "interaction", "--channel", "fax", ok=False))
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    assert "limit is 1048576" in _error(
        cli.run("append", "--tenant", "t", "--kind", "interaction", "--content-file", str(big), ok=False))
    lines = [json.dumps({"kind": "interaction", "content": f"ok {i}"}) for i in range(3)]
    lines.append('{"kind": "interaction", "content": "broken')
    lines.append(json.dumps({"kind": "interaction", "content": "after the bad line"}))
    result = cli.run("append", "--tenant", "t", "--jsonl", "-", stdin="\n".join(lines), ok=False)
    assert "line 4: not valid JSON" in _error(result)
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [0, 1, 2]
    assert cli.json("tenant", "show", "t")["size"] == 3
    bad_kind = "\n".join([json.dumps({"kind": "interaction"}), json.dumps({"kind": "nope"})])
    refused = cli.run("append", "--tenant", "t", "--jsonl", "-", stdin=bad_kind, ok=False)
    assert "line 2: unknown kind" in _error(refused)
    assert cli.json("tenant", "show", "t")["size"] == 4
    assert "beyond the log" in _error(cli.run("prove", "--tenant", "t", "--seq", "0", "--size", "99", ok=False))
    assert "no entry 40" in _error(cli.run("read", "--tenant", "t", "--seq", "40", ok=False))
    assert cli.json("verify-log", "--tenant", "t")["size"] == 4
    not_json = tmp_path / "n.json"
    not_json.write_text("nope")
    assert "not JSON" in _error(cli.run("verify", str(not_json), ok=False))
    cut = subprocess.run([sys.executable, "-m", "api.cli", "--data-dir", str(tmp_path / "nothing-here"),
                          "tenant", "show", "t"], env={**cli.env, "CASELEDGER_DATABASE_URL": ""}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert "caseledger init" in _error(cut)


def test_append_help_lists_the_channels_of_the_one_list() -> None:
    """The channel list is written once, in `verification.entry`; the help text is built from it."""
    shown = CliRunner().invoke(app, ["append", "--help"], env={"COLUMNS": "300", "TERM": "dumb"})
    assert shown.exit_code == 0
    [line] = [line for line in shown.output.splitlines() if "--channel" in line]
    assert ", ".join(sorted(CHANNELS)) in line
