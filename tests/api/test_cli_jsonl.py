"""JSONL import: the same checks and the same stored form of content as over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from api.cli.ledger import jsonl_entries
from ledger.errors import InvalidInput
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.subjects import MAX_REF_LENGTH
from tests.conftest import env_for
from verification.entry import MAX_JSON_DEPTH

ROOT = Path(__file__).resolve().parents[2]


def test_jsonl_json_content_is_stored_in_rfc8785_form() -> None:
    [(_, entry)] = list(jsonl_entries(json.dumps({"kind": "interaction", "content": {"b": 1, "a": 2}}).encode()))
    assert entry.content == b'{"a":2,"b":1}'
    [(_, text)] = list(jsonl_entries(json.dumps({"kind": "interaction", "content": "as is {b}"}).encode()))
    assert text.content == b"as is {b}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 5000, 100_000])
def test_jsonl_deep_content_is_refused_naming_the_line_and_limit(depth: int) -> None:
    line = b'{"kind":"interaction","content":' + b'{"n":' * depth + b"1" + b"}" * depth + b"}"
    with pytest.raises(InvalidInput, match="line 2") as caught:
        list(jsonl_entries(b'{"kind":"interaction"}\n' + line))
    assert str(MAX_JSON_DEPTH) in caught.value.message or "nested too deep" in caught.value.message


# --- the import command on a real ledger (SQLite and PostgreSQL) ----------------------------------

GOOD_LINE = json.dumps({"kind": "interaction", "case": "IMP-1", "content": "kept"})


class Import(NamedTuple):
    returncode: int
    stderr: str
    seqs: list[int]
    size: int | None


@pytest.fixture
def import_jsonl(settings: Settings) -> Callable[[str], Import]:
    """`caseledger append --tenant t --jsonl -` as a user runs it, on a fresh ledger with tenant t."""
    Ledger.initialise(settings)
    opened = Ledger.open(settings)
    try:
        opened.tenants.create("t")
    finally:
        opened.close()
    env = env_for(settings) | {"PYTHONPATH": str(ROOT)}

    def run(stdin: str) -> Import:
        done = subprocess.run([sys.executable, "-m", "api.cli", "append", "--tenant", "t", "--jsonl", "-"],
                              env=env, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120)
        after = Ledger.open(settings)
        try:
            size = after.tenants.info("t").size
        finally:
            after.close()
        return Import(done.returncode, done.stderr, [json.loads(line)["seq"] for line in done.stdout.splitlines()],
                      size)

    return run


def _refused_at_line_2(result: Import) -> str:
    """The one-line error of a refused second line, after the first line was committed."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("caseledger: line 2: "), line
    assert result.seqs == [0] and result.size == 1, "the good line before the bad one must be kept"
    return line


@pytest.mark.parametrize(("line", "says"), [
    pytest.param('{"kind":"interaction","content":"\\ud800"}', "lone surrogate", id="lone-surrogate-text"),
    pytest.param('{"kind":["x"]}', "unknown kind", id="kind-as-a-list"),
    pytest.param('{"kind":"interaction","channel":["a"]}', "unknown channel", id="channel-as-a-list"),
    pytest.param('{"kind":"interaction","subject_ref":5}', "subject reference", id="subject-ref-as-a-number"),
    pytest.param('{"kind":"interaction","meta":{"a":"\\ud800"}}', "lone surrogate", id="meta-lone-surrogate"),
])  # every other wrong type: tests/ledger/test_appender_check.py, where the appender refuses it
def test_jsonl_wrong_type_or_lone_surrogate_is_a_one_line_error_naming_the_line(
        import_jsonl: Callable[[str], Import], line: str, says: str) -> None:
    assert says in _refused_at_line_2(import_jsonl(GOOD_LINE + "\n" + line + "\n" + GOOD_LINE))


def test_jsonl_subject_ref_of_300_characters_is_refused_naming_the_line_keeping_the_lines_before(
        import_jsonl: Callable[[str], Import]) -> None:
    bad = json.dumps({"kind": "interaction", "subject_ref": "r" * 300})
    message = _refused_at_line_2(import_jsonl(GOOD_LINE + "\n" + bad + "\n" + GOOD_LINE))
    assert f"1-{MAX_REF_LENGTH} characters" in message


def test_jsonl_meta_nested_beyond_the_limit_is_refused_naming_the_line_and_limit(
        import_jsonl: Callable[[str], Import]) -> None:
    meta: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_JSON_DEPTH - 1):  # meta at MAX_JSON_DEPTH levels: with the header around it, one too many
        meta = {"n": meta}
    bad = json.dumps({"kind": "interaction", "meta": meta})
    message = _refused_at_line_2(import_jsonl(GOOD_LINE + "\n" + bad + "\n" + GOOD_LINE))
    assert "meta nests deeper" in message and str(MAX_JSON_DEPTH) in message
