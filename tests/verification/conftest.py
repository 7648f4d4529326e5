"""Real documents from a real ledger, made through the `caseledger` command (never by importing the ledger).

One interpreter runs the commands in process (a fresh SQLite data directory), so the fixture
costs one start-up rather than one per command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

_SCRIPT = """
import json, sys
from typer.testing import CliRunner
from api.cli import app
runner = CliRunner()
out = {}
def run(name, *args, stdin=None):
    result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    out[name] = result.stdout
run("init", "init")
run("tenant", "tenant", "create", "acme")
for i in range(5):
    run(f"append{i}", "append", "--tenant", "acme", "--kind", "interaction", "--case", "C-1",
        "--content-file", "-", stdin=f"message {i}")
run("receipt", "receipt", "--tenant", "acme", "--seq", "2")
run("inclusion", "prove", "--tenant", "acme", "--seq", "3")
run("consistency", "prove", "--tenant", "acme", "--first", "2", "--second", "5")
run("range", "prove", "--tenant", "acme", "--start", "1", "--end", "4")
run("checkpoint", "checkpoint", "--tenant", "acme")
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="session")
def ledger_documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``vkey``, ``receipt`` (of seq 2), ``inclusion`` (seq 3), ``consistency`` (2 to 5), ``range`` ([1, 4))
    and ``checkpoint`` (a signed note of size 5) of a five-entry log, as the command printed them."""
    where = tmp_path_factory.mktemp("ledger")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASELEDGER_")}
    env |= {"PYTHONPATH": str(ROOT), "CASELEDGER_DATA_DIR": str(where / "data"),
            "CASELEDGER_DATABASE_URL": f"sqlite:///{where / 'ledger.db'}", "CASELEDGER_MASTER_KEY": MASTER_KEY}
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, cwd=where, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    docs: dict[str, Any] = {name: json.loads(printed[name])
                            for name in ("receipt", "inclusion", "consistency", "range")}
    docs["vkey"] = json.loads(printed["tenant"])["vkey"]
    docs["checkpoint"] = printed["checkpoint"]
    return docs
