"""web3's dependency py_ecc raises the recursion limit to 100,000 on import; with it, deep JSON would
crash the process instead of raising RecursionError in our bounded parsers. `contracts` puts it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_chain_client_keeps_the_recursion_limit() -> None:
    code = ("import sys; before = sys.getrecursionlimit(); import api.cli, api.app, contracts.chain, "
            "contracts.online, ledger.service, web3; print(before, sys.getrecursionlimit())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    before, after = out.split()
    assert before == after


def test_deep_json_is_refused_not_a_crash_after_web3_is_loaded(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    result = subprocess.run([sys.executable, "-m", "api.cli", "verify", str(deep), "--rpc", "http://127.0.0.1:9"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("caseledger: ") and "too deeply" in result.stderr
