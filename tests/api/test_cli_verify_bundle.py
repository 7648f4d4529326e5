"""`caseledger verify bundle.json` as an examiner runs it: a whole export checked offline, with no database.

The bundles are built by `tests.verification.test_bundle` (a hand-made log, an Ed25519-signed
checkpoint) and written to files; the command runs as a separate process. Exit 0 with the result of
every check and the counts (JSON, or with ``--summary`` lines of text); 1 with one line on stderr
naming the first failed check and its seq (the result, that check failed in it, still on stdout);
2 for bad usage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_cli import CLI, ROOT, _error
from tests.verification.test_bundle import C1, case_bundle, range_bundle
from tests.verification.test_receipt import OTHER_KEY, VKEY
from verification.bundle_result import BUNDLE_CHECKS
from verification.checkpoint import Checkpoint, sign_checkpoint

Doc = dict[str, Any]


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """The command with no database and no CASELEDGER_ settings: `verify` needs neither."""
    return CLI({"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
                "CASELEDGER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, tmp_path)


def write(where: Path, name: str, doc: Doc) -> str:
    path = where / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_a_bundle_verifies_with_a_summary(cli: CLI, tmp_path: Path) -> None:
    result = cli.run("verify", write(tmp_path, "bundle.json", case_bundle()), "--vkey", VKEY, "--summary")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("caseledger.bundle of caseledger.local/acme-bank (scope: case c-1)")
    assert [line.split()[:2] for line in lines[1:1 + len(BUNDLE_CHECKS)]] == [["ok", name] for name in BUNDLE_CHECKS]
    assert f"content: {len(C1) - 2} verified, 1 redacted, 1 not verifiable (no commitment), 0 not included" in lines
    assert lines[-1] == "result: VALID" and result.stderr == ""


def test_json_output(cli: CLI, tmp_path: Path) -> None:
    result = cli.json("verify", write(tmp_path, "bundle.json", range_bundle()), "--vkey", VKEY)
    assert result["ok"] is True and result["valid"] is True and result["proof"] == "range"
    assert [c["name"] for c in result["checks"]] == list(BUNDLE_CHECKS) and all(c["ok"] for c in result["checks"])
    assert result["counts"]["entries"] == 9


def _drop_from_case(doc: Doc) -> Doc:
    del doc["entries"][2]
    del doc["proof"]["inclusion"][2]
    return doc


def _resigned(doc: Doc) -> Doc:
    doc["checkpoint"] = sign_checkpoint(Checkpoint("caseledger.local/acme-bank", 21, b"\x01" * 32), OTHER_KEY)
    return doc


@pytest.mark.parametrize(("doc", "check"), [
    (_drop_from_case(case_bundle()), f"case_chain: entry {C1[3]}: "),
    (_resigned(case_bundle()), "checkpoint_signature: "),
], ids=["entry removed from the case", "checkpoint signed by another key"])
def test_a_tampered_bundle_fails_naming_the_check(cli: CLI, tmp_path: Path, doc: Doc, check: str) -> None:
    path = write(tmp_path, "bundle.json", doc)
    result = cli.run("verify", path, "--vkey", VKEY, "--summary", ok=False)
    assert result.returncode == 1
    assert _error(result).startswith(f"caseledger: {check}"), result.stderr
    name = check.split(":")[0]
    assert any(line.split()[:2] == ["FAIL", name] for line in result.stdout.splitlines())
    assert result.stdout.splitlines()[-1].startswith("result: INVALID")
    as_json = cli.run("verify", path, "--vkey", VKEY, ok=False)
    assert as_json.returncode == 1 and _error(as_json) == _error(result)
    assert json.loads(as_json.stdout)["valid"] is False


def test_untrusted_malformed_and_misused(cli: CLI, tmp_path: Path) -> None:
    bundle = write(tmp_path, "bundle.json", case_bundle())
    untrusted = cli.run("verify", bundle, ok=False)
    assert untrusted.returncode == 1
    assert _error(untrusted).startswith("caseledger: checkpoint_signature: key not trusted")
    malformed = cli.run("verify", write(tmp_path, "bad.json", case_bundle() | {"extra": 1}), "--vkey", VKEY,
                        ok=False)
    assert malformed.returncode == 1 and "'extra'" in _error(malformed) and malformed.stdout == ""
    misused = cli.run("verify", bundle, "--vkey", VKEY, "--file", bundle, ok=False)
    assert misused.returncode == 2 and "not for bundles" in _error(misused)
