"""JSONL import: the same checks and the same stored form of content as over HTTP."""

from __future__ import annotations

import json

import pytest

from api.cli.ledger import jsonl_entries
from ledger.errors import InvalidInput
from verification.entry import MAX_JSON_DEPTH


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
