"""`caseledger verify` as a user runs it: only trusted keys or roots count; one-line errors; exit 1 or 2.

The documents are made once by the real command; `verify` itself runs in-process through the same
entry point (`api.cli.main`, with its exit codes and one-line errors), since it needs no database
and a fresh interpreter per call would cost a second each. `tests/api/test_cli.py` runs it as a
separate process too.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.cli import main
from ledger.settings import Settings
from tests.api.test_cli import CLI, ROOT, _error
from tests.conftest import TEST_MASTER_KEY, env_for
from verification.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint, verifier_key
from verification.proofs import ConsistencyProof, InclusionProof


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


class Verify:
    """`caseledger verify …` through `api.cli.main`, in this process."""

    def run(self, *args: str, ok: bool = True) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        argv, sys.argv = sys.argv, ["caseledger", *args]
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = argv
        if ok:
            assert code == 0, err.getvalue()
        return Ran(code, out.getvalue(), err.getvalue())

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)


@pytest.fixture
def cli() -> Verify:
    return Verify()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("verify-docs")
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'l.db'}", master_key=TEST_MASTER_KEY)
    real = CLI(env_for(settings) | {"PYTHONPATH": str(ROOT)}, root)
    real.json("init")
    vkey = real.json("tenant", "create", "acme")["vkey"]
    lines = "".join(json.dumps({"kind": "interaction", "content": f"m {i}"}) + "\n" for i in range(4))
    real.lines("append", "--tenant", "acme", "--jsonl", "-", stdin=lines)
    files = {}
    for name, args in {"receipt": ("receipt", "--tenant", "acme", "--seq", "2"),
                       "inclusion": ("prove", "--tenant", "acme", "--seq", "1"),
                       "consistency": ("prove", "--tenant", "acme", "--first", "2", "--second", "4"),
                       "range": ("prove", "--tenant", "acme", "--start", "1", "--end", "3")}.items():
        files[name] = root / f"{name}.json"
        files[name].write_text(real.run(*args).stdout)
    note = real.run("checkpoint", "--tenant", "acme").stdout
    return {"vkey": vkey, "files": files, "note": note, "root": parse_checkpoint(note.split("\n\n")[0] + "\n").root}


def _write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def _unsigned(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "checkpoint"}


def test_receipt_verifies_only_with_a_trusted_key(cli: Verify, made: dict[str, Any], tmp_path: Path) -> None:
    receipt = str(made["files"]["receipt"])
    assert "key not trusted" in _error(cli.run("verify", receipt, ok=False))
    checked = cli.json("verify", receipt, "--vkey", made["vkey"])
    assert checked["ok"] and checked["key_trusted"] and checked["seq"] == 2
    trust = tmp_path / "trusted-keys"
    trust.write_text(f"# our log\n{made['vkey']}\n")
    assert cli.json("verify", receipt, "--trust", str(trust))["key_trusted"] is True
    insecure = cli.json("verify", receipt, "--insecure-embedded-key")
    assert insecure["ok"] and insecure["key_trusted"] is False


def test_attacker_signed_receipt_named_like_the_log(cli: Verify, made: dict[str, Any], tmp_path: Path) -> None:
    """Old `verify` accepted it (exit 0) whenever no --vkey was given."""
    doc = json.loads(made["files"]["receipt"].read_text())
    attacker = Ed25519PrivateKey.generate()
    old = parse_checkpoint(doc["checkpoint"].split("\n\n")[0] + "\n")
    doc["checkpoint"] = sign_checkpoint(Checkpoint(doc["log"], old.size, old.root), attacker)
    doc["vkey"] = verifier_key(doc["log"], attacker.public_key())
    forged = _write(tmp_path / "forged.json", doc)
    assert "key not trusted" in _error(cli.run("verify", forged, ok=False))
    assert "signature" in _error(cli.run("verify", forged, "--vkey", made["vkey"], ok=False))
    assert cli.json("verify", forged, "--insecure-embedded-key")["key_trusted"] is False


@pytest.mark.parametrize("kind", ["inclusion", "consistency", "range"])
def test_proof_verifies_only_against_a_trusted_root(cli: Verify, made: dict[str, Any], kind: str,
                                                    tmp_path: Path) -> None:
    signed = str(made["files"][kind])
    assert "no trusted root" in _error(cli.run("verify", signed, ok=False))
    assert cli.json("verify", signed, "--vkey", made["vkey"])["trusted_root"] == "checkpoint"
    unsigned = _write(tmp_path / "unsigned.json", _unsigned(json.loads(made["files"][kind].read_text())))
    assert "no trusted root" in _error(cli.run("verify", unsigned, "--vkey", made["vkey"], ok=False))
    assert cli.json("verify", unsigned, "--root", made["root"].hex())["trusted_root"] == "root"
    assert "root" in _error(cli.run("verify", unsigned, "--root", "ab" * 32, ok=False))


def test_hand_made_proofs_need_a_trusted_root(cli: Verify, made: dict[str, Any], tmp_path: Path) -> None:
    """Old `verify` said ok to any self-consistent proof: one leaf is its own root."""
    leaf = "ab" * 32
    fake = _write(tmp_path / "fake.json", InclusionProof("caseledger.local/acme", 0, 1, leaf, leaf, ()).to_json())
    assert "no trusted root" in _error(cli.run("verify", fake, ok=False))
    assert "no trusted root" in _error(cli.run("verify", fake, "--vkey", made["vkey"], ok=False))
    same = _write(tmp_path / "same.json", ConsistencyProof("caseledger.local/acme", 3, 3, leaf, leaf, ()).to_json())
    assert "no trusted root" in _error(cli.run("verify", same, ok=False))
    assert cli.run("verify", fake, "--root", made["root"].hex(), ok=False).returncode == 1


@pytest.mark.parametrize("args", [
    ("--vkey", "not-a-key"), ("--vkey", ""), ("--root", "xyz"), ("--root", "ab" * 31), ("--trust", "/nonexistent/keys"),
])
def test_bad_options_are_usage_errors(cli: Verify, made: dict[str, Any], args: tuple[str, ...]) -> None:
    result = cli.run("verify", str(made["files"]["receipt"]), *args, ok=False)
    assert result.returncode == 2
    assert args[0] in _error(result)


def test_malformed_trust_file_is_a_usage_error(cli: Verify, made: dict[str, Any], tmp_path: Path) -> None:
    trust = tmp_path / "keys"
    trust.write_text(f"{made['vkey']}\nnonsense\n")
    result = cli.run("verify", str(made["files"]["receipt"]), "--trust", str(trust), ok=False)
    assert result.returncode == 2 and "line 2" in _error(result)


def test_hostile_documents_give_one_line_errors(cli: Verify, made: dict[str, Any], tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = cli.run("verify", str(deep), ok=False)
    assert result.returncode == 1 and "nests too deeply" in _error(result)
    doc = json.loads(made["files"]["receipt"].read_text())
    doc["header"]["meta"] = json.loads('{"a":' * 500 + "1" + "}" * 500)
    result = cli.run("verify", _write(tmp_path / "deep-meta.json", doc), "--vkey", made["vkey"], ok=False)
    assert result.returncode == 1 and "deeper" in _error(result)
    for text in ("nope", "[]", '{"type": "caseledger.bundle", "v": 1}', '{"type": "caseledger.receipt", "v": 2}'):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        assert cli.run("verify", str(bad), ok=False).returncode == 1
        _error(cli.run("verify", str(bad), ok=False))
