"""`caseledger verify RECEIPT --file PATH` as a recipient runs it: a document against its receipt, offline.

The document receipts are built by `tests.verification.test_document_receipt` (a hand-made log
with real document entries and an Ed25519-signed checkpoint) and written to files; the command
runs as a separate process with no database, as a recipient would run it. Exit 0 when the file is
the one entered; 1 with one line naming the failed check; 2 for bad usage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_cli import CLI, ROOT, _error
from tests.verification.test_document_receipt import (
    DOC,
    EMPTY_DOC,
    FILE,
    OTHER_DOC,
    OTHER_FILE,
    anchored_doc,
    commit_of,
    make_doc,
    the_log,
)
from tests.verification.test_receipt import KEY, OTHER_KEY, VKEY, make_receipt
from verification.checkpoint import Checkpoint, sign_checkpoint
from verification.document_receipt import CHECKS

Doc = dict[str, Any]


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """The command with no database and no CASELEDGER_ settings: `verify` needs neither."""
    return CLI({"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
                "CASELEDGER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, tmp_path)


def write(where: Path, name: str, content: Doc | bytes) -> str:
    path = where / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def test_the_file_of_a_document_receipt_verifies(cli: CLI, tmp_path: Path) -> None:
    receipt = write(tmp_path, "receipt.json", make_doc())
    statement = write(tmp_path, "statement.pdf", FILE)
    result = cli.json("verify", receipt, "--file", statement, "--vkey", VKEY)
    assert result["ok"] is True and result["valid"] is True and result["file_checked"] is True
    assert result["document"] == make_doc()["document"] and result["key_trusted"] is True
    assert [(c["name"], c["ok"]) for c in result["checks"]] == [(name, True) for name in CHECKS]
    empty = cli.json("verify", write(tmp_path, "empty.json", make_doc(EMPTY_DOC)), "--file",
                     write(tmp_path, "empty.pdf", b""), "--vkey", VKEY)
    assert empty["valid"] is True and empty["document"]["size"] == 0


def test_without_file_only_the_receipt_is_checked(cli: CLI, tmp_path: Path) -> None:
    result = cli.json("verify", write(tmp_path, "receipt.json", make_doc()), "--vkey", VKEY)
    assert result["ok"] is True and result["file_checked"] is False and result["checks"] == ["offline"]
    assert result["type"] == "caseledger.document-receipt" and result["seq"] == DOC


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        for name in parents:
            doc = doc[name]
        doc[last] = value
    return apply


def _resign(doc: Doc) -> None:
    size = doc["receipt"]["inclusion"]["tree_size"]
    doc["receipt"]["checkpoint"] = sign_checkpoint(Checkpoint(doc["receipt"]["log"], size,
                                                              the_log().tree.root(size)), OTHER_KEY)


def _flip_proof(doc: Doc) -> None:
    proof = doc["receipt"]["inclusion"]["proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]


def _break_anchor(doc: Doc) -> None:
    doc["receipt"]["anchor"]["consistency"][0] = "00" * 32


CHANGED = bytes([FILE[0] ^ 1]) + FILE[1:]

# (description, the document receipt, the file, the check named on stderr)
TAMPERED: list[tuple[str, Callable[[], Doc], bytes, str]] = [
    ("file changed by one byte", make_doc, CHANGED, "commitment"),
    ("file truncated", make_doc, FILE[:-1], "commitment"),
    ("file extended", make_doc, FILE + b"\n", "commitment"),
    ("receipt of another document", lambda: make_doc(OTHER_DOC), FILE, "commitment"),
    ("salt edited", lambda: make_doc() | {"salt": "00" * 32}, FILE, "commitment"),
    ("wrong size", lambda: _apply(make_doc(), _set("document.size", len(FILE) - 1)), FILE, "size"),
    ("header edited", lambda: _apply(make_doc(), _set("receipt.header.commit", commit_of(DOC, OTHER_FILE))), FILE,
     "entry_hash"),
    ("proof edited", lambda: _apply(make_doc(), _flip_proof), FILE, "inclusion"),
    ("checkpoint signed by another key", lambda: _apply(make_doc(), _resign), FILE, "checkpoint_signature"),
    ("anchor broken", lambda: _apply(anchored_doc(), _break_anchor), FILE, "anchor"),
]


def _apply(doc: Doc, edit: Callable[[Doc], None]) -> Doc:
    edit(doc)
    return doc


@pytest.mark.parametrize(("build", "data", "check"), [t[1:] for t in TAMPERED], ids=[t[0] for t in TAMPERED])
def test_tampering_fails_naming_the_check(cli: CLI, tmp_path: Path, build: Callable[[], Doc], data: bytes,
                                         check: str) -> None:
    result = cli.run("verify", write(tmp_path, "receipt.json", build()), "--file", write(tmp_path, "f.pdf", data),
                     "--vkey", VKEY, ok=False)
    assert result.returncode == 1 and result.stdout == ""
    assert _error(result).startswith(f"caseledger: {check}: "), result.stderr


def test_untrusted_key_and_hostile_name_fail_in_one_line(cli: CLI, tmp_path: Path) -> None:
    statement = write(tmp_path, "statement.pdf", FILE)
    untrusted = cli.run("verify", write(tmp_path, "r.json", make_doc()), "--file", statement, ok=False)
    assert untrusted.returncode == 1
    assert _error(untrusted).startswith("caseledger: checkpoint_signature: key not trusted")
    hostile = cli.run("verify", write(tmp_path, "h.json", make_doc(name="../../etc/passwd")), "--file", statement,
                      "--vkey", VKEY, ok=False)
    assert hostile.returncode == 1 and "document.name" in _error(hostile)


def test_file_is_for_document_receipts_only(cli: CLI, tmp_path: Path) -> None:
    statement = write(tmp_path, "statement.pdf", FILE)
    plain = write(tmp_path, "plain.json", make_receipt(DOC, log=the_log(), size=11, key=KEY))
    usage = cli.run("verify", plain, "--file", statement, "--vkey", VKEY, ok=False)
    assert usage.returncode == 2 and "only a document receipt" in _error(usage)
    missing = cli.run("verify", write(tmp_path, "r.json", make_doc()), "--file", str(tmp_path / "nowhere.pdf"),
                      "--vkey", VKEY, ok=False)
    assert missing.returncode == 2 and "cannot read" in _error(missing)


def test_rpc_finds_the_anchor_inside_a_document_receipt(cli: CLI, tmp_path: Path) -> None:
    unanchored = cli.run("verify", write(tmp_path, "r.json", make_doc()), "--vkey", VKEY, "--rpc",
                         "http://127.0.0.1:9", ok=False)
    assert unanchored.returncode == 2 and "carries no anchor" in _error(unanchored)
    anchored = cli.run("verify", write(tmp_path, "a.json", anchored_doc()), "--vkey", VKEY, "--rpc",
                       "http://127.0.0.1:9", ok=False)
    assert anchored.returncode == 1 and "carries no anchor" not in _error(anchored)
