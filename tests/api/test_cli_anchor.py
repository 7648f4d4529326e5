"""`caseledger anchor …` and `caseledger verify --rpc` as an operator and an examiner run them, against a
real node (anvil): deploy, run, status, receipts verified offline and online, a SIGKILL between submit
and confirm, and misconfiguration answered in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from contracts.chain import AnchorChain
from contracts.config import ChainConfig
from ledger.errors import ConfigurationError
from ledger.settings import Mode, Settings
from tests.anvil import AnvilNode
from tests.api.test_cli import CLI, ROOT
from tests.conftest import env_for


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode() as started:
        yield started


@pytest.fixture
def anchor_cli(settings: Settings, tmp_path: Path, node: AnvilNode) -> CLI:
    """A CLI whose settings anchor to a contract it deployed itself, with tenant acme."""
    node.set_automine(True)
    key_file = tmp_path / "publisher.key"
    key_file.write_text(node.keys[1] + "\n")
    key_file.chmod(0o600)
    env = env_for(settings) | {
        "PYTHONPATH": str(ROOT), "CASELEDGER_ANCHOR_RPC_URL": node.rpc_url,
        "CASELEDGER_ANCHOR_CHAIN_ID": str(node.chain_id), "CASELEDGER_ANCHOR_KEY_FILE": str(key_file),
        "CASELEDGER_ANCHOR_CONFIRMATIONS": "1"}
    tool = CLI(env, tmp_path)
    tool.json("init")
    tool.json("tenant", "create", "acme")
    deployed = tool.json("anchor", "deploy")
    assert deployed["chain_id"] == node.chain_id and deployed["publisher"] == deployed["owner"]
    tool.env["CASELEDGER_ANCHOR_CONTRACT"] = deployed["contract"]
    return tool


def _append(cli: CLI, count: int = 1) -> None:
    for i in range(count):
        cli.json("append", "--tenant", "acme", "--kind", "interaction", "--channel", "chat", "--case", f"c{i}")


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _chain(node: AnvilNode, cli: CLI) -> AnchorChain:
    return AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id,
                                   contract=cli.env["CASELEDGER_ANCHOR_CONTRACT"], confirmations=1), node.keys[1])


def test_deploy_run_status_and_receipts_verified_offline_and_online(anchor_cli: CLI, node: AnvilNode,
                                                                    tmp_path: Path) -> None:
    _append(anchor_cli, 2)
    done = anchor_cli.json("anchor", "run")
    assert done["state"] == "confirmed" and done["leaves"] == 1 and done["logs"] == ["caseledger.local/acme"]
    assert anchor_cli.json("anchor", "run") == {"round": None, "reason": "no log grew since its last anchor"}
    status = anchor_cli.json("anchor", "status")
    [shown] = status["rounds"]
    assert shown["round"] == done["round"] and shown["tx"] == done["tx"] and shown["confirmations"] >= 1
    vkey = anchor_cli.json("tenant", "show", "acme")["vkey"]

    anchor_file = tmp_path / "anchor.json"
    anchor_file.write_text(anchor_cli.run("anchor", "receipt", "--tenant", "acme").stdout)
    offline = anchor_cli.json("verify", str(anchor_file), "--vkey", vkey)
    assert offline["checks"] == ["offline"] and offline["round"]["id"] == done["round"]
    online = anchor_cli.json("verify", str(anchor_file), "--vkey", vkey, "--rpc", node.rpc_url)
    assert online["checks"] == ["offline", "online"] and online["online"]["ok"] is True

    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(anchor_cli.run("receipt", "--tenant", "acme", "--seq", "0").stdout)
    assert "anchor" in json.loads(receipt_file.read_text())
    checked = anchor_cli.json("verify", str(receipt_file), "--vkey", vkey, "--rpc", node.rpc_url)
    assert checked["checks"] == ["offline", "online"] and checked["anchor"]["round"]["id"] == done["round"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the chain, not the database, is under test
@pytest.mark.parametrize(("member", "value"), [
    ("tx", "0x" + "ab" * 32), ("block_hash", "0x" + "cd" * 32), ("chain_id", 1),
    ("contract", "0x" + "12" * 20), ("block", 1),
])
def test_an_anchor_receipt_changed_on_its_chain_side_fails_online(anchor_cli: CLI, node: AnvilNode, tmp_path: Path,
                                                                  member: str, value: Any) -> None:
    _append(anchor_cli)
    anchor_cli.json("anchor", "run")
    vkey = anchor_cli.json("tenant", "show", "acme")["vkey"]
    doc = json.loads(anchor_cli.run("anchor", "receipt", "--tenant", "acme").stdout)
    doc["chain"][member] = value
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(doc))
    assert anchor_cli.json("verify", str(path), "--vkey", vkey)["checks"] == ["offline"]  # the chain is not signed
    _one_line_error(anchor_cli.run("verify", str(path), "--vkey", vkey, "--rpc", node.rpc_url, ok=False))


def test_a_run_killed_between_submit_and_confirm_resumes_without_a_second_anchor(
        anchor_cli: CLI, node: AnvilNode, settings: Settings) -> None:
    _append(anchor_cli)
    env = anchor_cli.env | {"CASELEDGER_ANCHOR_CONFIRMATIONS": "2"}
    # automine: the transaction is mined at once, and the run waits for a second block that never comes
    run = subprocess.Popen([sys.executable, "-m", "api.cli", "anchor", "run"], env=env, cwd=anchor_cli.cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chain = _chain(node, anchor_cli)
    try:
        deadline = time.monotonic() + 60
        while chain.round(1) is None:
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the round was not anchored"
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.kill()
        run.communicate()
    status = anchor_cli.json("anchor", "status")
    [interrupted] = status["rounds"]
    assert interrupted["state"] == "submitted" and interrupted["tx"] is not None
    node.mine(1)
    done = json.loads(anchor_cli.run("anchor", "run", ok=True).stdout)
    assert done["state"] == "confirmed" and done["round"] == 1 and done["tx"] == interrupted["tx"]
    assert len(chain.events(round_id=1)) == 1
    assert anchor_cli.json("read", "--tenant", "acme", "--seq", "1")["header"]["kind"] == "anchor"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the chain, not the database, is under test
def test_anchoring_misconfigured_is_one_line_and_never_shows_the_key(anchor_cli: CLI, node: AnvilNode,
                                                                       tmp_path: Path) -> None:
    key = Path(anchor_cli.env["CASELEDGER_ANCHOR_KEY_FILE"]).read_text().strip()
    off = CLI({k: v for k, v in anchor_cli.env.items() if k != "CASELEDGER_ANCHOR_RPC_URL"}, anchor_cli.cwd)
    assert "anchoring is off" in _one_line_error(off.run("anchor", "run", ok=False))
    wrong_chain = CLI(anchor_cli.env | {"CASELEDGER_ANCHOR_CHAIN_ID": "11155111"}, anchor_cli.cwd)
    _append(anchor_cli)
    message = _one_line_error(wrong_chain.run("anchor", "run", ok=False))
    assert "chain" in message and key[2:] not in message
    down = CLI(anchor_cli.env | {"CASELEDGER_ANCHOR_RPC_URL": "http://127.0.0.1:9"}, anchor_cli.cwd)
    assert "chain_error" in json.loads(down.run("anchor", "status").stdout)  # the rounds are still shown
    assert key[2:] not in _one_line_error(down.run("anchor", "run", ok=False))
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key")
    bad = CLI(anchor_cli.env | {"CASELEDGER_ANCHOR_KEY_FILE": str(bad_key)}, anchor_cli.cwd)
    assert "64 hex digits" in _one_line_error(bad.run("anchor", "run", ok=False))


def test_production_refuses_an_anchoring_key_file_others_may_read(tmp_path: Path) -> None:
    readable = tmp_path / "readable.key"
    readable.write_text(os.urandom(32).hex())
    readable.chmod(0o644)
    settings = Settings(mode=Mode.PRODUCTION, master_key=SecretStr(os.urandom(32).hex()), data_dir=tmp_path,
                        database_url=f"sqlite:///{tmp_path / 'x.db'}", anchor_rpc_url="http://127.0.0.1:8545",
                        anchor_chain_id=1, anchor_contract="0x" + "12" * 20, anchor_key_file=readable)
    with pytest.raises(ConfigurationError, match="readable by others"):
        settings.check_production()
    readable.chmod(0o600)
    settings.check_production()
    with pytest.raises(ConfigurationError, match="CASELEDGER_ANCHOR_CONTRACT"):
        settings.model_copy(update={"anchor_contract": None}).check_production()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the chain, not the database, is under test
def test_verify_rpc_of_a_document_without_an_anchor_is_a_usage_error(anchor_cli: CLI, node: AnvilNode,
                                                                       tmp_path: Path) -> None:
    _append(anchor_cli)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(anchor_cli.run("receipt", "--tenant", "acme", "--seq", "0").stdout)
    vkey = anchor_cli.json("tenant", "show", "acme")["vkey"]
    result = anchor_cli.run("verify", str(receipt), "--vkey", vkey, "--rpc", node.rpc_url, ok=False)
    assert result.returncode == 2 and "no anchor" in _one_line_error(result)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the chain, not the database, is under test
def test_verify_rpc_pins_the_operators_contract(anchor_cli: CLI, node: AnvilNode, tmp_path: Path) -> None:
    """An operator holding the log key could anchor a forged root on a contract of its own: an examiner
    names the contract the operator published, not the one the receipt names."""
    _append(anchor_cli)
    anchor_cli.json("anchor", "run")
    vkey = anchor_cli.json("tenant", "show", "acme")["vkey"]
    path = tmp_path / "anchor.json"
    path.write_text(anchor_cli.run("anchor", "receipt", "--tenant", "acme").stdout)
    published = anchor_cli.env["CASELEDGER_ANCHOR_CONTRACT"]
    pinned = anchor_cli.json("verify", str(path), "--vkey", vkey, "--rpc", node.rpc_url,
                             "--contract", published.lower())
    assert pinned["online"]["contract_trusted"] is True
    unpinned = anchor_cli.json("verify", str(path), "--vkey", vkey, "--rpc", node.rpc_url)
    assert unpinned["online"]["contract_trusted"] is False
    other = "0x" + "34" * 20
    message = _one_line_error(anchor_cli.run("verify", str(path), "--vkey", vkey, "--rpc", node.rpc_url,
                                             "--contract", other, ok=False))
    assert other in message


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the chain, not the database, is under test
def test_a_failed_round_is_printed_and_exits_1(anchor_cli: CLI, node: AnvilNode) -> None:
    chain = _chain(node, anchor_cli)
    chain.remove_publisher(chain.address)
    _append(anchor_cli)
    result = anchor_cli.run("anchor", "run", ok=False)
    assert result.returncode == 1
    assert json.loads(result.stdout)["state"] == "failed"
    assert "not a publisher" in _one_line_error(result)
    chain.add_publisher(chain.address)
    assert anchor_cli.json("anchor", "run")["state"] == "confirmed"
