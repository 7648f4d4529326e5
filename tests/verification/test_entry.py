"""Entry headers (DESIGN §2): RFC 8785 bytes, entry hashes, header parsing and the streaming log check.

Expected values come from `rfc8785` and `hashlib` directly, and the log builder below applies the
chain rules itself, so a mistake would have to be made twice, once here and once in
`verification.entry`, to go unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from unittest import mock

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from verification.chain import LogVerifier
from verification.entry import (
    CHANNELS,
    HEADER_FIELDS,
    KINDS,
    TIME_FORMAT,
    ZERO_HASH,
    canonical_json,
    entry_hash,
    parse_header,
    plain_json,
)
from verification.errors import ChainError, FormatError

T = TypeVar("T")

ORIGIN = "caseledger.local/acme-bank"
OTHER_ORIGIN = "caseledger.local/other-bank"
MAX_SAFE = 2**53 - 1


# --- independent reference: JCS from rfc8785, hashes from hashlib ----------------------------------


def jcs(value: Any) -> bytes:
    return rfc8785.dumps(value)


def leaf(data: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash, which DESIGN §2 makes the entry hash."""
    return hashlib.sha256(b"\x00" + data).digest()


def mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf hashes, exactly as the RFC writes it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


# --- strategies for JSON values ------------------------------------------------------------------

#: characters JSON serialisers get wrong: escapes, controls, DEL, line separators, BOM, astral plane
SPECIAL = '"\\/\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\x80\xe9\u2028\u2029\ufeff\uffff\U0001f600\U0010ffff'
chars = st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(SPECIAL))
strings = st.text(chars, max_size=12)
ascii_keys = st.text(st.characters(max_codepoint=0x7F), max_size=6)
safe_ints = st.one_of(st.integers(-MAX_SAFE, MAX_SAFE), st.sampled_from([MAX_SAFE, -MAX_SAFE, 0, -1, 2**31]))
plain_scalars = st.one_of(st.none(), st.booleans(), safe_ints, strings)


def json_values(keys: st.SearchStrategy[str], scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=16,
    )


#: what headers hold: no floats, ASCII keys; `canonical_json` serialises these itself
plain_values = json_values(ascii_keys, plain_scalars)
#: anything JSON: keys beyond ASCII and the astral plane (UTF-16 key order), and floats
any_values = json_values(
    st.one_of(ascii_keys, strings), plain_scalars | st.floats(allow_nan=False, allow_infinity=False)
)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)).map(
    lambda t: t.strftime(TIME_FORMAT)
)
nonempty = st.text(chars, min_size=1, max_size=12)

headers = st.fixed_dictionaries({
    "v": st.just(1),
    "log": nonempty,
    "seq": st.integers(0, MAX_SAFE),
    "id": st.uuids().map(str),
    "time": times,
    "kind": nonempty,
    "actor": nonempty,
    "case": st.none() | strings,
    "case_prev": st.none() | hex64,
    "channel": st.none() | st.sampled_from(sorted(CHANNELS)),
    "subject": st.none() | strings,
    "key": st.none() | strings,
    "ct": st.none() | hex64,
    "commit": st.none() | hex64,
    "meta": st.dictionaries(st.one_of(ascii_keys, strings), any_values, max_size=4),
    "prev": hex64,
})


# --- canonical_json ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_fast_path_is_rfc8785(value: Any) -> None:
    """Plain values are serialised without rfc8785, and the bytes are still exactly JCS."""
    expected = jcs(value)
    with mock.patch.object(rfc8785, "dumps", side_effect=AssertionError("slow path taken")):
        assert canonical_json(value) == expected


@given(plain_values)
def test_plain_json_is_rfc8785_for_plain_values(value: Any) -> None:
    assert plain_json(value) == jcs(value)
    assert plain_json({"outer": [value, 1.5]}) is None  # a float anywhere: not plain
    assert plain_json({"n": 2**53}) is None  # beyond the safe integers: not plain


@settings(max_examples=300, deadline=None)
@given(any_values)
def test_canonical_json_is_rfc8785(value: Any) -> None:
    assert canonical_json(value) == jcs(value)


@settings(max_examples=200, deadline=None)
@given(headers)
def test_headers_are_rfc8785_and_parse_back(header: dict[str, Any]) -> None:
    data = jcs(header)
    assert canonical_json(header) == data
    assert entry_hash(header) == hashlib.sha256(b"\x00" + data).digest()
    assert parse_header(data) == header
    assert parse_header(data, seq=header["seq"]) == header


def test_key_order_is_utf16_beyond_ascii() -> None:
    """U+1F600 is D83D DE00 in UTF-16 and sorts before U+FB01; code-point order says the opposite."""
    value = {"\ufb01": 1, "\U0001f600": 2, "a": 3, "\xe9": 4}
    assert canonical_json(value) == '{"a":3,"\xe9":4,"\U0001f600":2,"\ufb01":1}'.encode()


@pytest.mark.parametrize("value", [
    "\ud800",
    "a\udfffb",
    "\ud83d\ude00",  # a surrogate *pair* as two code points is not a character either
    ["ok", "\udc00"],
    {"k": "\ud800"},
    {"\ud800": 1},
    {"\xe9\udbff": 1},
    {"\U0001f600": ["\ud800"]},
], ids=repr)
def test_lone_surrogates_have_no_canonical_form(value: Any) -> None:
    # rfc8785 raises CanonicalizationError, or a bare UnicodeEncodeError while sorting keys
    with pytest.raises(ValueError):
        jcs(value)
    with pytest.raises(FormatError):
        canonical_json(value)


@settings(max_examples=100, deadline=None)
@given(plain_values, st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2), st.booleans())
def test_any_surrogate_anywhere_is_refused(value: Any, surrogate: str, as_key: bool) -> None:
    poisoned = {surrogate: value} if as_key else {"a": [value, "x" + surrogate]}
    with pytest.raises(FormatError):
        canonical_json(poisoned)


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64, [1, 2**53], {"a": {"b": -(2**60)}}, {"\xe9": 2**53}],
                         ids=repr)
def test_integers_beyond_ijson_are_refused_like_rfc8785(value: Any) -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        jcs(value)
    with pytest.raises(FormatError):
        canonical_json(value)


@pytest.mark.parametrize("value", [MAX_SAFE, -MAX_SAFE, [MAX_SAFE], {"n": -MAX_SAFE}], ids=repr)
def test_integers_at_the_ijson_limit_are_kept(value: Any) -> None:
    assert canonical_json(value) == jcs(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [float("-inf")], b"bytes", {1: "x"}, {"s": {1}},
                                   object()], ids=lambda v: type(v).__name__ if type(v) is object else repr(v))
def test_non_json_values_are_refused(value: Any) -> None:
    with pytest.raises(FormatError):
        canonical_json(value)


# --- entry_hash ----------------------------------------------------------------------------------


def test_entry_hash_known_answer() -> None:
    header = base_header()
    data = jcs(header)
    assert entry_hash(header) == hashlib.sha256(b"\x00" + data).digest()
    assert entry_hash(header) != hashlib.sha256(data).digest()  # the leaf prefix is there


# --- parse_header --------------------------------------------------------------------------------


def base_header(**changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {
        "v": 1, "log": ORIGIN, "seq": 7, "id": "5f0c7a52-0b7e-4c1e-9a43-1c2d3e4f5a6b",
        "time": "2024-05-01T12:00:00.123456Z", "kind": "interaction", "actor": "user:agent-17",
        "case": "case-42", "case_prev": "ab" * 32, "channel": "email", "subject": "s_9f8e",
        "key": "dk_0011223344556677aabb", "ct": "cd" * 32, "commit": None,
        "meta": {"direction": "inbound", "lang": "de-CH", "tag": "gr\xfcezi \U0001f44b"}, "prev": "ef" * 32,
    }
    header.update(changes)
    return header


def without(name: str) -> bytes:
    header = base_header()
    del header[name]
    return jcs(header)


CANONICAL = jcs(base_header()).decode()


def edited(old: str, new: str) -> bytes:
    assert old in CANONICAL, old
    return CANONICAL.replace(old, new, 1).encode()


def test_parse_header_accepts_a_valid_header() -> None:
    data = jcs(base_header())
    assert parse_header(data) == base_header()
    assert parse_header(data, seq=7) == base_header()


@pytest.mark.parametrize("number", [2.0**53, 1e16, -1e20, 1e21, 1.5, -0.0, 5e-324], ids=repr)
def test_parse_header_reads_numbers_as_doubles(number: float) -> None:
    """JCS writes 1e16 as 10000000000000000; reading that back must give the double, not refuse it."""
    header = base_header(meta={"n": number})
    data = canonical_json(header)
    assert data == jcs(header)
    assert parse_header(data) == header


# (description, header bytes, the .seq expected when the caller passes no position)
REJECTED: list[tuple[str, bytes, int | None]] = [
    ("invalid JSON: truncated", CANONICAL[:-1].encode(), None),
    ("invalid JSON: empty", b"", None),
    ("invalid JSON: not UTF-8", b"\xff" + CANONICAL.encode(), None),
    ("invalid JSON: trailing garbage", CANONICAL.encode() + b"x", None),
    ("not an object: array", b"[]", None),
    ("not an object: null", b"null", None),
    *[(f"missing field {name}", without(name), None if name == "seq" else 7) for name in sorted(HEADER_FIELDS)],
    ("extra field", jcs(base_header(extra=1)), 7),
    ("extra field differing in case", jcs(base_header(V=1)), 7),
    ("version 2", jcs(base_header(v=2)), 7),
    ("version 0", jcs(base_header(v=0)), 7),
    ("version true", jcs(base_header(v=True)), 7),
    ("version as string", jcs(base_header(v="1")), 7),
    ("version null", jcs(base_header(v=None)), 7),
    ("version 1.0", edited('"v":1', '"v":1.0'), 7),
    ("seq negative", jcs(base_header(seq=-1)), -1),
    ("seq as string", jcs(base_header(seq="7")), None),
    ("seq true", jcs(base_header(seq=True)), None),
    ("seq 7.0", edited('"seq":7', '"seq":7.0'), None),
    ("seq beyond 2^53", edited('"seq":7', f'"seq":{2**53}'), None),
    ("log empty", jcs(base_header(log="")), 7),
    ("kind not a string", jcs(base_header(kind=1)), 7),
    ("actor null", jcs(base_header(actor=None)), 7),
    ("uuid upper case", jcs(base_header(id="5F0C7A52-0B7E-4C1E-9A43-1C2D3E4F5A6B")), 7),
    ("uuid without dashes", jcs(base_header(id="5f0c7a520b7e4c1e9a431c2d3e4f5a6b")), 7),
    ("uuid in braces", jcs(base_header(id="{5f0c7a52-0b7e-4c1e-9a43-1c2d3e4f5a6b}")), 7),
    ("uuid as URN", jcs(base_header(id="urn:uuid:5f0c7a52-0b7e-4c1e-9a43-1c2d3e4f5a6b")), 7),
    ("uuid with a non-hex digit", jcs(base_header(id="5f0c7a52-0b7e-4c1e-9a43-1c2d3e4f5a6g")), 7),
    ("uuid too short", jcs(base_header(id="5f0c7a52-0b7e-4c1e-9a43-1c2d3e4f5a6")), 7),
    ("uuid as number", jcs(base_header(id=7)), 7),
    ("time without microseconds", jcs(base_header(time="2024-05-01T12:00:00Z")), 7),
    ("time with milliseconds", jcs(base_header(time="2024-05-01T12:00:00.123Z")), 7),
    ("time with offset", jcs(base_header(time="2024-05-01T12:00:00.123456+00:00")), 7),
    ("time lower-case z", jcs(base_header(time="2024-05-01T12:00:00.123456z")), 7),
    ("time lower-case t", jcs(base_header(time="2024-05-01t12:00:00.123456Z")), 7),
    ("time space separator", jcs(base_header(time="2024-05-01 12:00:00.123456Z")), 7),
    ("time trailing newline", jcs(base_header(time="2024-05-01T12:00:00.123456Z\n")), 7),
    ("time month 13", jcs(base_header(time="2024-13-01T12:00:00.123456Z")), 7),
    ("time February 30", jcs(base_header(time="2024-02-30T12:00:00.123456Z")), 7),
    ("time hour 24", jcs(base_header(time="2024-05-01T24:00:00.123456Z")), 7),
    ("time year 0", jcs(base_header(time="0000-05-01T12:00:00.123456Z")), 7),
    ("time Arabic-Indic digits", jcs(base_header(time="\u0662\u0660\u0662\u0664-05-01T12:00:00.123456Z")), 7),
    ("time fullwidth digits", jcs(base_header(time="\uff12\uff10\uff12\uff14-05-01T12:00:00.123456Z")), 7),
    ("time as number", jcs(base_header(time=1714564800)), 7),
    ("prev upper-case hex", jcs(base_header(prev="EF" * 32)), 7),
    ("case_prev upper-case hex", jcs(base_header(case_prev="AB" * 32)), 7),
    ("ct upper-case hex", jcs(base_header(ct="CD" * 32)), 7),
    ("commit upper-case hex", jcs(base_header(commit="0A" * 32)), 7),
    ("prev null", jcs(base_header(prev=None)), 7),
    ("prev 63 digits", jcs(base_header(prev="e" * 63)), 7),
    ("prev 65 digits", jcs(base_header(prev="e" * 65)), 7),
    ("prev not hex", jcs(base_header(prev="g" * 64)), 7),
    ("ct empty", jcs(base_header(ct="")), 7),
    ("ct Arabic-Indic digits", jcs(base_header(ct="\u0661" * 64)), 7),
    ("case not a string", jcs(base_header(case=42)), 7),
    ("subject not a string", jcs(base_header(subject=[])), 7),
    ("key not a string", jcs(base_header(key={})), 7),
    ("unknown channel", jcs(base_header(channel="fax")), 7),
    ("channel upper case", jcs(base_header(channel="Email")), 7),
    ("channel empty", jcs(base_header(channel="")), 7),
    ("meta is a list", jcs(base_header(meta=[])), 7),
    ("meta is a string", jcs(base_header(meta="{}")), 7),
    ("meta is null", jcs(base_header(meta=None)), 7),
    ("non-canonical: spaces", json.dumps(base_header(), sort_keys=True, ensure_ascii=False).encode(), 7),
    ("non-canonical: indented", json.dumps(base_header(), sort_keys=True, indent=1, ensure_ascii=False).encode(), 7),
    ("non-canonical: key order", json.dumps(base_header(), separators=(",", ":"), ensure_ascii=False).encode(), 7),
    ("non-canonical: reversed key order",
     json.dumps(dict(reversed(list(base_header().items()))), separators=(",", ":"), ensure_ascii=False).encode(), 7),
    ("non-canonical: ASCII escapes", json.dumps(base_header(), sort_keys=True, separators=(",", ":")).encode(), 7),
    ("non-canonical: escaped solidus", edited("caseledger.local/", "caseledger.local\\/"), 7),
    ("non-canonical: trailing newline", CANONICAL.encode() + b"\n", 7),
    ("non-canonical: leading space", b" " + CANONICAL.encode(), 7),
    ("non-canonical: byte order mark", b"\xef\xbb\xbf" + CANONICAL.encode(), 7),
    ("non-canonical: UTF-16", CANONICAL.encode("utf-16-le"), 7),
    ("non-canonical: duplicate key", edited('"v":1', '"v":1,"v":1'), 7),
    ("non-canonical: float in meta", edited('"direction":"inbound"', '"direction":1.0'), 7),
    ("non-canonical: upper-case unicode escape", edited('"lang":"de-CH"', '"lang":"\\u001F"'), 7),
    ("no canonical form: NaN in meta", edited('"direction":"inbound"', '"direction":NaN'), 7),
    ("non-canonical: integer that is no double", edited('"direction":"inbound"', f'"direction":{2**53 + 1}'), 7),
    ("no canonical form: number beyond doubles", edited('"direction":"inbound"', '"direction":1' + "0" * 400), 7),
    ("no canonical form: lone surrogate in meta", edited('"direction":"inbound"', '"direction":"\\ud800"'), 7),
]


@pytest.mark.parametrize(("data", "unhinted_seq"), [pytest.param(d, s, id=name) for name, d, s in REJECTED])
def test_parse_header_rejects(data: bytes, unhinted_seq: int | None) -> None:
    with pytest.raises(ChainError) as caught:
        parse_header(data, seq=7)
    assert caught.value.seq == 7, "the caller's position is what the error names"
    with pytest.raises(ChainError) as caught:
        parse_header(data)
    assert caught.value.seq == unhinted_seq


def test_rejected_cases_differ_from_the_valid_one() -> None:
    """Guard against a table entry that silently stopped being a mutation."""
    valid = CANONICAL.encode()
    assert all(data != valid for _, data, _ in REJECTED)
    assert len({data for _, data, _ in REJECTED}) == len(REJECTED)


def test_receipt_with_a_null_header_time_is_a_format_error_not_a_type_error() -> None:
    """``"time": null`` once passed `parse_header` whenever no time was checked yet (``checked_time``
    None, as for a receipt or a log's first entry), and then met a string comparison as a TypeError.
    It is refused as malformed, naming ``time``, whatever the caller checked before."""
    from tests.verification.reference import Tree
    from tests.verification.test_receipt import TRUST, Log, make_receipt  # it imports this module
    from verification.receipt import verify_receipt

    data = jcs(base_header(time=None))
    for checked_time in (None, base_header()["time"]):
        with pytest.raises(FormatError) as caught:
            parse_header(data, seq=7, checked_time=checked_time)
        assert caught.value.fields == {"seq": 7, "member": "time"}

    headers = build_log([Spec(overrides={"time": None}), Spec()])
    with pytest.raises(FormatError) as caught:
        LogVerifier(ORIGIN).add(headers[0])
    assert caught.value.fields == {"seq": 0, "member": "time"}
    # a receipt signed by the log's own key: the header is all that is wrong with it
    receipt = make_receipt(0, Log(headers, Tree([leaf(d) for d in headers])), size=2)
    with pytest.raises(FormatError) as caught:
        verify_receipt(receipt, TRUST)
    assert caught.value.fields == {"seq": 0, "member": "time"}


# --- building logs by hand -----------------------------------------------------------------------

BASE_TIME = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def fmt_time(t: datetime) -> str:
    return t.strftime(TIME_FORMAT)


@dataclass(frozen=True)
class Spec:
    """One entry of a log to build; `overrides` are applied after the chain rules (a forgery)."""

    case: str | None = None
    channel: str | None = None
    kind: str = "interaction"
    step_us: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


def build_log(specs: Sequence[Spec], origin: str = ORIGIN) -> list[bytes]:
    """Header bytes of a log, following DESIGN §2 to the letter; later entries link to forged ones."""
    out: list[bytes] = []
    prev = "0" * 64
    case_heads: dict[str, str] = {}
    t = BASE_TIME
    for seq, spec in enumerate(specs):
        t += timedelta(microseconds=spec.step_us)
        header: dict[str, Any] = {
            "v": 1, "log": origin, "seq": seq,
            "id": str(uuid.UUID(bytes=hashlib.sha256(f"{origin} {seq}".encode()).digest()[:16], version=4)),
            "time": fmt_time(t), "kind": spec.kind, "actor": f"user:agent-{seq % 3}",
            "case": spec.case, "case_prev": case_heads.get(spec.case) if spec.case is not None else None,
            "channel": spec.channel, "subject": None if spec.case is None else f"s_{spec.case}",
            "key": None, "ct": None, "commit": None, "meta": spec.meta, "prev": prev,
        }
        header.update(spec.overrides)
        data = jcs(header)
        prev = leaf(data).hex()
        if header["case"] is not None:
            case_heads[header["case"]] = prev
        out.append(data)
    return out


def run(log: Sequence[bytes], origin: str = ORIGIN, stored: Sequence[bytes | None] | None = None
        ) -> tuple[LogVerifier, ChainError | None]:
    verifier = LogVerifier(origin)
    try:
        for i, data in enumerate(log):
            verifier.add(data, stored[i] if stored is not None else None)
    except ChainError as exc:
        assert verifier.size == exc.seq, "a refused entry must not advance the verifier"
        return verifier, exc
    return verifier, None


specs = st.builds(
    Spec,
    case=st.none() | st.sampled_from(["c-1", "c-2", "c-3", "case/\xfc-4"]),
    channel=st.none() | st.sampled_from(sorted(CHANNELS)),
    kind=st.sampled_from(sorted(KINDS)),
    step_us=st.sampled_from([0, 0, 1, 999, 10**6, 86_400 * 10**6]),
    meta=st.dictionaries(ascii_keys, st.none() | safe_ints | strings, max_size=2),
)
logs = st.lists(specs, min_size=1, max_size=20)

FIXED = [
    Spec(case="c-1", channel="phone", step_us=5, meta={"direction": "inbound"}),
    Spec(case="c-2", channel="email", step_us=0),
    Spec(case="c-1", channel="chat", step_us=1),
    Spec(kind="access", step_us=0),
    Spec(case="c-1", channel="in_person", kind="document", step_us=10**6, meta={"pages": 3}),
    Spec(case="c-2", channel="sms", step_us=7),
    Spec(kind="policy", step_us=0, meta={"note": "gr\xfcezi \U0001f44b"}),
    Spec(case="c-3", channel="video", step_us=2),
    Spec(case="c-2", channel="social", step_us=3),
]


# --- a valid log ---------------------------------------------------------------------------------


def test_empty_log() -> None:
    verifier = LogVerifier(ORIGIN)
    assert verifier.size == 0
    assert verifier.root == hashlib.sha256(b"").digest()
    assert verifier.last_hash == ZERO_HASH


def test_fixed_log_links_as_designed() -> None:
    """The hand-built log really has the links the DESIGN describes (guards the builder itself)."""
    log = [json.loads(data) for data in build_log(FIXED)]
    hashes = [leaf(data).hex() for data in build_log(FIXED)]
    assert log[0]["prev"] == "0" * 64 and log[0]["case_prev"] is None
    assert log[2]["prev"] == hashes[1] and log[2]["case_prev"] == hashes[0]
    assert log[3]["case_prev"] is None
    assert log[4]["case_prev"] == hashes[2]
    assert log[8]["case_prev"] == hashes[5]


@settings(max_examples=150, deadline=None)
@given(logs)
def test_valid_log_verifies(log_specs: list[Spec]) -> None:
    log = build_log(log_specs)
    leaves = [leaf(data) for data in log]
    verifier = LogVerifier(ORIGIN)
    for seq, data in enumerate(log):
        completed = verifier.add(data, leaves[seq] if seq % 2 else None)
        assert verifier.size == seq + 1
        assert verifier.root == mth(leaves[: seq + 1])
        assert verifier.last_hash == leaves[seq].hex()
        # the leaf, then one parent per trailing one bit of seq (tlog storage order)
        assert completed[0] == leaves[seq]
        assert len(completed) == 1 + ((seq + 1) & -(seq + 1)).bit_length() - 1
        assert completed[-1] == mth(leaves[seq + 1 - (1 << (len(completed) - 1)) : seq + 1])


# --- mutations -----------------------------------------------------------------------------------

Choose = Callable[[Sequence[T]], T]


def _field_alternatives(header: dict[str, Any], k: int) -> dict[str, list[Any]]:
    later = fmt_time(datetime.strptime(header["time"], TIME_FORMAT).replace(tzinfo=UTC)
                     + timedelta(seconds=1))
    options: dict[str, list[Any]] = {
        "v": [2, 0], "log": [OTHER_ORIGIN], "seq": [k + 1, k - 1, -1, 10**6],
        "id": [str(uuid.UUID(int=k + 1)), "not-a-uuid"], "time": [later, "yesterday"],
        "kind": ["document", "erasure"], "actor": ["user:mallory"], "case": [None, "c-9"],
        "case_prev": [None, "ab" * 32], "channel": [None, "email", "fax"], "subject": [None, "s_x"],
        "key": [None, "dk_00"], "ct": [None, "cd" * 32], "commit": [None, "ef" * 32],
        "meta": [{}, {"x": 1}], "prev": ["0" * 64, "11" * 32],
    }
    assert set(options) == HEADER_FIELDS
    return {name: [v for v in values if v != header[name] or type(v) is not type(header[name])]
            for name, values in options.items()}


@dataclass
class Mutated:
    log: list[bytes]
    origin: str = ORIGIN
    stored: list[bytes | None] | None = None
    #: first seq that must be refused; None: undetectable by the chain alone (the root changes)
    seq: int | None = None


MUTATIONS = ("field", "drop", "swap", "duplicate", "verifier_origin", "entry_origin", "time_backwards",
             "case_prev", "prev", "seq", "stored_hash", "non_canonical")


def mutate(name: str, log_specs: list[Spec], k: int, choose: Choose[Any]) -> Mutated | None:
    """Apply mutation `name` at entry `k`; None where it does not apply to this log and position."""
    n = len(log_specs)
    log = build_log(log_specs)
    hashes: list[bytes | None] = [leaf(data) for data in log]

    def forged(**overrides: Any) -> list[bytes]:
        specs2 = list(log_specs)
        specs2[k] = replace(specs2[k], overrides=overrides)
        return build_log(specs2)

    header = json.loads(log[k])
    if name == "field":  # one field of entry k changed, nothing relinked; stored hashes catch it at k
        alternatives = _field_alternatives(header, k)
        name_ = choose(sorted(alternatives))
        header[name_] = choose(alternatives[name_])
        log[k] = jcs(header)
        return Mutated(log, stored=hashes, seq=k)
    if name == "drop":
        del log[k]
        return Mutated(log, seq=k if k < n - 1 else None)
    if name == "swap":
        if k == n - 1:
            return None
        log[k], log[k + 1] = log[k + 1], log[k]
        return Mutated(log, seq=k)
    if name == "duplicate":
        log.insert(k + 1, log[k])
        return Mutated(log, seq=k + 1)
    if name == "verifier_origin":
        return Mutated(log, origin=OTHER_ORIGIN, seq=0)
    if name == "entry_origin":
        return Mutated(forged(log=OTHER_ORIGIN), seq=k)
    if name == "time_backwards":
        if k == 0:
            return None
        before = datetime.strptime(json.loads(log[k - 1])["time"], TIME_FORMAT).replace(tzinfo=UTC)
        return Mutated(forged(time=fmt_time(before - timedelta(microseconds=choose([1, 10**6])))), seq=k)
    if name == "case_prev":
        candidates = [None, "ab" * 32, "0" * 64, *([leaf(log[k - 1]).hex()] if k else [])]
        wrong = [v for v in candidates if v != header["case_prev"]]
        return Mutated(forged(case_prev=choose(wrong)), seq=k)
    if name == "prev":
        wrong = [v for v in ("ab" * 32, "0" * 64, leaf(log[k]).hex()) if v != header["prev"]]
        return Mutated(forged(prev=choose(wrong)), seq=k)
    if name == "seq":
        return Mutated(forged(seq=choose([k + 1, k + 2] + ([k - 1] if k else []))), seq=k)
    if name == "stored_hash":
        digest = hashes[k]
        assert digest is not None
        hashes[k] = choose([bytes([digest[0] ^ 1]) + digest[1:], leaf(b"other"), hashlib.sha256(log[k]).digest()])
        return Mutated(log, stored=hashes, seq=k)
    if name == "non_canonical":
        separators = choose([(", ", ": "), (",", ": ")])
        log[k] = json.dumps(header, separators=separators, sort_keys=True, ensure_ascii=False).encode()
        return Mutated(log, seq=k)
    raise AssertionError(name)


def check(mutated: Mutated, original: list[bytes]) -> None:
    verifier, error = run(mutated.log, mutated.origin, mutated.stored)
    if mutated.seq is None:
        # a change at the very end of the log: the chain cannot see it, but the root is no longer the same
        assert error is None
        assert verifier.root != mth([leaf(data) for data in original])
        return
    assert error is not None, "mutation was not detected"
    assert error.seq == mutated.seq, error.message


@pytest.mark.parametrize("name", MUTATIONS)
def test_every_mutation_at_every_position(name: str) -> None:
    original = build_log(FIXED)
    checked = 0
    for k in range(len(FIXED)):
        for pick in range(3):
            def choose(options: Sequence[Any], pick: int = pick) -> Any:
                return options[pick % len(options)]
            mutated = mutate(name, FIXED, k, choose)
            if mutated is not None:
                check(mutated, original)
                checked += 1
    assert checked


def test_every_field_of_every_entry() -> None:
    original = build_log(FIXED)
    hashes: list[bytes | None] = [leaf(data) for data in original]
    for k, data in enumerate(original):
        header = json.loads(data)
        for name, values in _field_alternatives(header, k).items():
            for value in values:
                log = list(original)
                log[k] = jcs({**header, name: value})
                _, error = run(log, stored=hashes)
                assert error is not None and error.seq == k, (k, name, value)
                # without stored hashes the next entry's prev link catches it
                verifier, error = run(log)
                if error is None:
                    assert k == len(log) - 1 and verifier.root != mth([leaf(d) for d in original])
                else:
                    assert error.seq in (k, k + 1), (k, name, value)


def test_stored_hash_mismatch_names_both_hashes() -> None:
    log = build_log(FIXED)
    stored: list[bytes | None] = [leaf(data) for data in log]
    stored[4] = b"\x00" * 32
    _, error = run(log, stored=stored)
    assert error is not None and error.seq == 4
    assert error.fields["expected"] == "00" * 32
    assert error.fields["computed"] == leaf(log[4]).hex()


def test_dropping_the_last_entry_is_a_shorter_log() -> None:
    """Truncation keeps a valid chain: only a checkpoint of the longer tree can reveal it."""
    log = build_log(FIXED)
    verifier, error = run(log[:-1])
    assert error is None
    assert verifier.size == len(log) - 1
    assert verifier.root == mth([leaf(data) for data in log[:-1]])


@settings(max_examples=250, deadline=None)
@given(logs, st.sampled_from(MUTATIONS), st.data())
def test_random_mutation_is_caught_at_its_seq(log_specs: list[Spec], name: str, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(log_specs) - 1), label="k")
    mutated = mutate(name, log_specs, k, lambda options: data.draw(st.sampled_from(options)))
    if mutated is not None:
        check(mutated, build_log(log_specs))
