"""The appender's check refuses hostile entries with `InvalidInput`, never a raw exception, and
writes nothing: fields of the wrong type (as a JSONL line can hold them), lone surrogates, subject
references out of bounds and meta nested beyond `MAX_JSON_DEPTH` (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.appender import NewEntry
from ledger.errors import InvalidInput
from ledger.service import Ledger
from ledger.subjects import MAX_REF_LENGTH
from verification.entry import MAX_JSON_DEPTH

#: what a JSONL line can put where the engine expects a string (or an object, for meta)
WRONG_TYPES: list[Any] = [
    pytest.param({"kind": ["x"]}, "unknown kind", id="kind-as-a-list"),
    pytest.param({"kind": 5}, "unknown kind", id="kind-as-a-number"),
    pytest.param({"kind": {"a": 1}}, "unknown kind", id="kind-as-an-object"),
    pytest.param({"channel": ["a"]}, "unknown channel", id="channel-as-a-list"),
    pytest.param({"channel": {"a": 1}}, "unknown channel", id="channel-as-an-object"),
    pytest.param({"subject_ref": 5}, "subject reference", id="subject-ref-as-a-number"),
    pytest.param({"subject_ref": ["a"]}, "subject reference", id="subject-ref-as-a-list"),
    pytest.param({"subject_ref": "\udc00"}, "subject reference", id="subject-ref-lone-surrogate"),
    pytest.param({"subject_ref": ""}, "subject reference", id="subject-ref-empty"),
    pytest.param({"subject_ref": "r" * (MAX_REF_LENGTH + 44)}, f"1-{MAX_REF_LENGTH} characters",
                 id="subject-ref-of-300-characters"),
    pytest.param({"case": 5}, "case id", id="case-as-a-number"),
    pytest.param({"actor": ["user:a"]}, "actor", id="actor-as-a-list"),
    pytest.param({"meta": [1]}, "meta must be an object", id="meta-as-a-list"),
    pytest.param({"meta": {"a": "\ud800"}}, "lone surrogate", id="meta-lone-surrogate"),
]


def _nested_meta(depth: int) -> dict[str, Any]:
    """A meta object `depth` levels deep (a flat object is one)."""
    meta: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        meta = {"n": meta}
    return meta


@pytest.mark.parametrize(("fields", "says"), WRONG_TYPES)
def test_wrong_types_and_lone_surrogates_are_invalid_input_not_type_errors(
        ledger: Ledger, fields: dict[str, Any], says: str) -> None:
    ledger.tenants.create("t")
    entry = NewEntry(**({"kind": "interaction", "actor": "user:a"} | fields))
    with pytest.raises(InvalidInput, match=says):
        ledger.appender.check(entry)
    with pytest.raises(InvalidInput, match=f"entry 1: .*{says}"):
        ledger.appender.append_batch("t", [NewEntry(kind="interaction"), entry])
    assert ledger.tenants.info("t").size == 0


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_meta_nested_beyond_the_limit_is_refused_by_the_engine_naming_it(ledger: Ledger, depth: int) -> None:
    """The header is one object around meta, so meta may nest MAX_JSON_DEPTH - 1 levels."""
    ledger.tenants.create("t")
    with pytest.raises(InvalidInput, match=f"meta nests deeper than {MAX_JSON_DEPTH - 1} levels") as refused:
        ledger.appender.append("t", NewEntry(kind="interaction", meta=_nested_meta(depth)))
    assert str(MAX_JSON_DEPTH) in refused.value.message
    assert refused.value.fields["limit"] == MAX_JSON_DEPTH - 1
    assert ledger.tenants.info("t").size == 0
    appended = ledger.appender.append("t", NewEntry(kind="interaction", meta=_nested_meta(MAX_JSON_DEPTH - 1)))
    assert ledger.reads.entry("t", appended.seq).header["meta"] == _nested_meta(MAX_JSON_DEPTH - 1)
    assert ledger.logcheck.verify("t")["size"] == 1
