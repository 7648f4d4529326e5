"""The public surface of `verification`: its exports, its one home for entry rules, bounded JSON
depth everywhere, typed documents refused by type and version, trust files, and its isolation
(neither the package nor these tests import the ledger)."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verification
from tests.verification.test_entry import base_header, jcs
from tests.verification.test_receipt import KEY, SEQ, TRUST, VKEY, make_receipt
from verification.checkpoint import verifier_key
from verification.documents import DOCUMENT_TYPES, verify_document
from verification.entry import (
    ACTOR_RE,
    CASE_PATTERN,
    CASE_RE,
    KINDS,
    MAX_JSON_DEPTH,
    TIME_FORMAT,
    canonical_json,
    format_time,
    is_plain_json,
    json_depth,
    parse_header,
    plain_json,
    utc_now,
)
from verification.errors import FormatError, VerificationError
from verification.proofs import ConsistencyProof, InclusionProof, RangeProof
from verification.receipt import Receipt, verify_receipt
from verification.trust import Trust

HERE = Path(__file__).resolve().parent
PACKAGE = Path(verification.__file__).resolve().parent
DEEP = 100_000


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


# --- isolation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(HERE.glob("*.py")), ids=lambda p: p.name)
def test_verification_tests_import_no_engine(path: Path) -> None:
    assert not _imports(path) & {"ledger", "api", "compliance", "contracts", "sqlalchemy"}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_verification_imports_only_stdlib_cryptography_rfc8785(path: Path) -> None:
    outside = {name for name in _imports(path) if name not in sys.stdlib_module_names}
    assert outside <= {"verification", "cryptography", "rfc8785", "__future__"}, outside


def test_public_api_is_exported() -> None:
    from verification import Trust as T
    from verification import verify_receipt as v

    assert T is Trust and v is verify_receipt
    for name in verification.__all__:
        assert hasattr(verification, name), name
    for name in ("verify_receipt", "verify_document", "Receipt", "InclusionProof", "ConsistencyProof", "RangeProof",
                 "Trust", "CompactRange", "Checkpoint", "errors", "verify_inclusion", "verify_consistency",
                 "verify_range", "parse_header", "LogVerifier"):
        assert name in verification.__all__, name


# --- one home per rule --------------------------------------------------------------------------


def test_entry_rules() -> None:
    assert {"interaction", "document", "share", "access", "policy", "erasure", "key", "anchor", "assignment",
            "hold", "export", "audit"} == KINDS
    assert CASE_RE.pattern == CASE_PATTERN + r"\Z"
    for good in ("C-7", "case.1:a_b", "x" * 128):
        assert CASE_RE.match(good)
    for bad in ("", "x" * 129, "a b", "C-7\n", "ä"):
        assert not CASE_RE.match(bad)
    for good in ("user:alice", "service:cli", "user:a.b@c:d-e_f"):
        assert ACTOR_RE.match(good)
    for bad in ("alice", "user:", "admin:x", "user:a b", "user:x\n", "user:" + "a" * 121):
        assert not ACTOR_RE.match(bad)


def test_header_times() -> None:
    moment = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2024-05-01T12:00:00.123456Z"
    assert format_time(moment) == moment.astimezone(UTC).strftime(TIME_FORMAT)
    with pytest.raises(ValueError):
        format_time(datetime(2024, 5, 1))  # naive: which zone?
    now = utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now)
    assert abs(datetime.strptime(now, TIME_FORMAT).replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)


# --- JSON depth ---------------------------------------------------------------------------------


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


def test_json_depth_is_iterative() -> None:
    assert json_depth(1) == 0 and json_depth({}) == 1 and json_depth([[], {"a": [1]}]) == 3
    assert json_depth(_nested(DEEP)) == DEEP
    assert json_depth(_nested(DEEP), limit=MAX_JSON_DEPTH) == MAX_JSON_DEPTH + 1
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert json_depth(cyclic, limit=10) == 11


def test_deep_values_are_not_plain_and_have_no_canonical_form() -> None:
    assert is_plain_json(_nested(MAX_JSON_DEPTH)) and plain_json(_nested(MAX_JSON_DEPTH)) is not None
    for depth in (MAX_JSON_DEPTH + 1, DEEP):
        assert not is_plain_json(_nested(depth))
        assert plain_json(_nested(depth)) is None
        with pytest.raises(FormatError):
            canonical_json(_nested(depth))
        with pytest.raises(FormatError):
            canonical_json(_nested(depth, 1.5))  # off the fast path: rfc8785 must never see it


def test_parse_header_with_deep_meta_is_a_format_error() -> None:
    """Old code raised RecursionError from the JSON decoder."""
    data = jcs(base_header(meta={}))
    for depth in (MAX_JSON_DEPTH, DEEP):
        deep = data.replace(b'"meta":{}', b'"meta":' + b'{"a":' * depth + b"1" + b"}" * depth)
        with pytest.raises(FormatError):
            parse_header(deep)
        with pytest.raises(FormatError):
            parse_header(deep, seq=7)


def test_header_meta_at_the_limit_still_parses() -> None:
    meta = _nested(MAX_JSON_DEPTH - 1, "x")
    meta = {"m": meta}
    assert json_depth(base_header(meta=meta)) == MAX_JSON_DEPTH + 1
    with pytest.raises(FormatError):
        parse_header(jcs(base_header(meta=meta)))
    fits = {"m": _nested(MAX_JSON_DEPTH - 2, "x")}
    assert parse_header(jcs(base_header(meta=fits)))["meta"] == fits


def test_receipt_with_deep_header_is_a_format_error() -> None:
    receipt = make_receipt(SEQ)
    receipt["header"]["meta"] = _nested(DEEP)
    with pytest.raises(FormatError):
        verify_receipt(receipt, TRUST)
    with pytest.raises(FormatError):
        verify_document(receipt, TRUST)
    with pytest.raises(FormatError):
        Receipt.from_json(receipt)


# --- documents ----------------------------------------------------------------------------------


def test_registry_knows_every_type() -> None:
    assert set(DOCUMENT_TYPES) == {"caseledger.receipt", InclusionProof.TYPE, ConsistencyProof.TYPE, RangeProof.TYPE,
                                   "caseledger.anchor-receipt", "caseledger.document-receipt", "caseledger.bundle",
                                   "caseledger.erasure_certificate"}
    assert all(set(versions) == {1} for versions in DOCUMENT_TYPES.values())


@pytest.mark.parametrize("doc", [
    {}, {"type": "caseledger.bundle", "v": 1}, {"type": None, "v": 1}, {"type": ["caseledger.receipt"], "v": 1},
    {"type": "caseledger.receipt", "v": 2}, {"type": "caseledger.receipt", "v": True},
    {"type": "caseledger.receipt", "v": 1.0}, {"type": "caseledger.receipt"}, {"type": InclusionProof.TYPE, "v": 0},
    {"leaf_index": 0, "tree_size": 1, "leaf_hash": "00" * 32, "root": "00" * 32, "proof": []},
    [], "caseledger.receipt", None, 1,
])
def test_unknown_type_or_version_is_refused(doc: Any) -> None:
    with pytest.raises(FormatError):
        verify_document(doc, TRUST)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([Receipt, InclusionProof, ConsistencyProof, RangeProof]), st.data())
def test_parsers_raise_only_format_errors(cls: Any, data: st.DataObject) -> None:
    """Any member replaced by any JSON value: the parser returns or raises FormatError, nothing raw."""
    base = make_receipt(SEQ) if cls is Receipt else {
        "type": cls.TYPE, "v": 1, "log": "l", "leaf_index": 0, "tree_size": 1, "leaf_hash": "00" * 32,
        "root": "00" * 32, "proof": [], "first": 1, "second": 1, "first_root": "00" * 32, "second_root": "00" * 32,
        "start": 0, "end": 1, "entry_hashes": ["00" * 32], "left": [], "right": []}
    doc = json.loads(json.dumps(base))
    name = data.draw(st.sampled_from(sorted(doc)))
    doc[name] = data.draw(JSON)
    with contextlib.suppress(FormatError):
        cls.from_json(doc)
    with contextlib.suppress(VerificationError):
        verify_document(doc, TRUST)


# --- trust --------------------------------------------------------------------------------------


def test_trust_file(tmp_path: Path) -> None:
    other = verifier_key("caseledger.local/other", KEY.public_key())
    path = tmp_path / "trusted"
    path.write_text(f"# keys of our logs\n\n  {VKEY}  \n{other}\n", encoding="utf-8")
    trust = Trust.from_file(path)
    assert [v.name for v in trust.verifiers] == ["caseledger.local/acme-bank", "caseledger.local/other"]
    assert trust == Trust.of(VKEY, other) and not trust.insecure_embedded_key
    assert verify_receipt(make_receipt(SEQ), trust)["key_trusted"] is True
    path.write_text(f"{VKEY}\nnot-a-key\n", encoding="utf-8")
    with pytest.raises(FormatError, match="line 2"):
        Trust.from_file(path)
    with pytest.raises(FormatError, match="cannot read"):
        Trust.from_file(tmp_path / "missing")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(FormatError):
        Trust.from_file(path)
