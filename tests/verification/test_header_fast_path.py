"""`parse_header`'s canonical fast path against the full parser it stands in for.

The fast path (one regular expression over the exact RFC 8785 shape of a version-1 header) may only
ever answer what the full parser answers, and defers to it whenever it cannot prove the bytes valid.
These tests feed both the same bytes — valid headers with hostile strings, every one-byte edit of
them, re-serialisations that are valid JSON but not canonical, headers with wrong types — and require
identical results: the same header, value types and key order included, or the same error with the
same message and seq. They also require the fast path to take every valid header with plain `meta`,
so that the speed it exists for cannot silently go.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.verification.test_entry import (
    MAX_SAFE,
    REJECTED,
    ascii_keys,
    base_header,
    chars,
    headers,
    hex64,
    jcs,
    plain_values,
)
from verification.entry import _parse_canonical, _parse_header_slowly, parse_header
from verification.errors import ChainError, FormatError

Parser = Callable[..., dict[str, Any]]

#: headers whose `meta` is plain JSON: exactly the ones the fast path must take
plain_headers = st.builds(lambda header, meta: {**header, "meta": meta},
                          headers, st.dictionaries(ascii_keys, plain_values, max_size=4))

#: strings that JSON encoders get wrong, lone surrogates included
hostile_strings = st.text(st.one_of(chars, st.characters(categories=["Cs"])), max_size=8)
#: values of every JSON type, and some that only look like one
hostile_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([MAX_SAFE, MAX_SAFE + 1, 2**53, -1]),
    st.floats(allow_nan=False), hostile_strings, hex64, st.lists(st.integers(), max_size=2),
    st.dictionaries(hostile_strings, st.integers() | hostile_strings, max_size=2),
)


def typed(value: Any) -> Any:
    """`value` with every scalar tagged by its type, and dicts as item lists (1 == 1.0 == True)."""
    if isinstance(value, dict):
        return [(key, typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [typed(item) for item in value]
    return type(value).__name__, repr(value)


def outcome(parse: Parser, data: bytes, **hints: Any) -> tuple[Any, ...]:
    try:
        return "ok", typed(parse(data, **hints))
    except ChainError as error:
        return "error", error.message, error.seq, error.fields
    except FormatError as error:  # meta nested deeper than MAX_JSON_DEPTH: both must give up alike
        return "too deep", error.message, error.fields


def assert_same(data: bytes, *, seq: int | None = None, checked_time: str | None = None) -> dict[str, Any] | None:
    """parse_header == the full parser on `data`; returns what the fast path alone made of it."""
    full = outcome(_parse_header_slowly, data, seq=seq, checked_time=checked_time)
    assert outcome(parse_header, data, seq=seq, checked_time=checked_time) == full
    fast = _parse_canonical(data, checked_time)
    if fast is not None:
        assert full == ("ok", typed(fast)), "the fast path accepted what the full parser does not"
    return fast


def plain_json(value: Any, *, ensure_ascii: bool = False, sort_keys: bool = True,
               separators: tuple[str, str] = (",", ":")) -> bytes:
    """JSON text of `value`, lone surrogates written as the (invalid) UTF-8 of their code points."""
    return json.dumps(value, ensure_ascii=ensure_ascii, sort_keys=sort_keys,
                      separators=separators).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(plain_headers)
def test_valid_headers_take_the_fast_path(header: dict[str, Any]) -> None:
    data = jcs(header)
    assert _parse_canonical(data, None) == header
    assert _parse_canonical(data, header["time"]) == header
    assert assert_same(data, seq=header["seq"]) is not None


@settings(max_examples=300, deadline=None)
@given(headers, st.sampled_from(["jcs", "ascii", "unsorted", "spaced"]), st.sampled_from([None, 7]), st.booleans())
def test_fast_and_full_agree_on_headers(header: dict[str, Any], form: str, seq: int | None, trusted: bool) -> None:
    """Any meta (floats, keys beyond ASCII), serialised canonically or in near-miss forms."""
    if form == "jcs":
        data = jcs(header)
    elif form == "ascii":
        data = plain_json(header, ensure_ascii=True)
    elif form == "unsorted":
        data = plain_json(dict(reversed(list(header.items()))), sort_keys=False)
    else:
        data = plain_json(header, separators=(", ", ": "))
    assert_same(data, seq=seq, checked_time=header["time"] if trusted else None)


@settings(max_examples=300, deadline=None)
@given(headers, st.dictionaries(st.sampled_from(sorted(base_header())), hostile_values, min_size=1, max_size=3),
       st.lists(st.sampled_from(sorted(base_header())), max_size=2), st.booleans())
def test_fast_and_full_agree_on_wrong_values(header: dict[str, Any], changes: dict[str, Any], dropped: list[str],
                                             sort_keys: bool) -> None:
    """Wrong types, lone surrogates, big integers, missing fields."""
    header = {**header, **changes}
    for name in dropped:
        header.pop(name, None)
    assert_same(plain_json(header, sort_keys=sort_keys), seq=7)
    assert_same(plain_json(header, sort_keys=sort_keys))


def one_byte_edits(data: bytes, byte: int) -> list[bytes]:
    """Every deletion, every insertion of `byte`, and every replacement by it or by a bit flip."""
    edits = []
    for i in range(len(data) + 1):
        edits.append(data[:i] + bytes([byte]) + data[i:])
        if i < len(data):
            edits.append(data[:i] + data[i + 1:])
            edits.append(data[:i] + bytes([byte]) + data[i + 1:])
            edits.append(data[:i] + bytes([data[i] ^ (1 << byte % 8)]) + data[i + 1:])
    return edits


@settings(max_examples=25, deadline=None)
@given(plain_headers, st.integers(0, 255))
def test_every_one_byte_edit_of_a_valid_header(header: dict[str, Any], byte: int) -> None:
    for data in one_byte_edits(jcs(header), byte):
        assert_same(data, seq=7)


NASTY = base_header(
    actor='user:"q"\\b\n\t\x00\x1f\x7f', case="\u2028\u2029\ufeff", subject="\U0001f600\xe9/", key="",
    case_prev=None, channel=None, commit="0a" * 32,
    meta={"a": [1, -MAX_SAFE, True, None, {"b": "\x08\x0c\r\x0b"}], "c": {}, "d": "\\u0041"},
)


@pytest.mark.parametrize("byte", [*range(0x80), 0x80, 0xA0, 0xBF, 0xC0, 0xC2, 0xE2, 0xED, 0xEF, 0xF0, 0xF4, 0xFF])
def test_every_one_byte_edit_of_a_nasty_header(byte: int) -> None:
    data = jcs(NASTY)
    assert assert_same(data) is not None
    for edit in one_byte_edits(data, byte):
        assert_same(edit, seq=7)


@pytest.mark.parametrize(("data", "hinted"), [(d, hinted) for _, d, _ in REJECTED for hinted in (True, False)])
def test_fast_and_full_agree_on_the_rejected_headers(data: bytes, hinted: bool) -> None:
    assert assert_same(data, seq=7 if hinted else None) is None


CANONICAL = jcs(base_header()).decode()


@pytest.mark.parametrize(("old", "new"), [
    ('"seq":7', f'"seq":{MAX_SAFE}'),
    ('"seq":7', f'"seq":{MAX_SAFE + 1}'),
    ('"seq":7', '"seq":10000000000000000'),
    ('"seq":7', '"seq":07'),
    ('"seq":7', '"seq":-0'),
    ('"seq":7', '"seq":7e0'),
    ('"v":1', '"v":1,"v":1'),
    ('"v":1', '"v":true'),
    ('"actor":', '"actor":"x","actor":'),
    ('"meta":{', '"meta":{"a":1,"a":1,'),
    ('"meta":{', '"meta":{"z":1,'),
    ('"meta":{', '"meta":{"":{},'),
    ('"meta":{', '"meta":{"\\u0000":"\\u001f",'),
    ('"meta":{', '"meta":{"x":"\\u001F",'),
    ('"meta":{', '"meta":{"x":"\\/",'),
    ('"meta":{', '"meta":{"x":"\\ud83d\\ude00",'),
    ('"meta":{', '"meta":{"x":"\\ud800",'),
    ('"meta":{', '"meta":{"x":"},\\"prev\\":\\"",'),
    ('"meta":{', '"meta":{"x":{},"prev":"' + "ab" * 32 + '","y":1,'),
    ('"meta":{', '"meta":{"x":' + "[" * 5000 + "]" * 5000 + ","),
    ('"kind":"interaction"', '"kind":"\\u0069nteraction"'),
    ('"kind":"interaction"', '"kind":"\\n"'),
    ('"kind":"interaction"', '"kind":"\\u000a"'),
    ('"kind":"interaction"', '"kind":"\\u0001"'),
    ('"kind":"interaction"', '"kind":"\\u2028"'),
    ('"kind":"interaction"', '"kind":"\u2028"'),
    ('"kind":"interaction"', '"kind":"\\""'),
    ('"kind":"interaction"', '"kind":"\\\\"'),
    ('"kind":"interaction"', '"kind":"\\\\\\"'),
    ('"kind":"interaction"', '"kind":""'),
    ('"case":"case-42"', '"case":""'),
    ('"case":"case-42"', '"case":null'),
    ('"channel":"email"', '"channel":null'),
    ('"channel":"email"', '"channel":"e\\u006dail"'),
    ('"commit":null', '"commit":"' + "0" * 64 + '"'),
    ('"time":"2024-05-01T12:00:00.123456Z"', '"time":"2024-02-29T23:59:59.999999Z"'),
    ('"time":"2024-05-01T12:00:00.123456Z"', '"time":"2023-02-29T23:59:59.999999Z"'),
])
def test_fast_and_full_agree_on_edge_cases(old: str, new: str) -> None:
    assert old in CANONICAL
    data = CANONICAL.replace(old, new, 1).encode()
    assert_same(data, seq=7)
    assert_same(data)


def test_a_trusted_time_is_not_checked_again() -> None:
    """`checked_time` vouches for a time; both paths take it on trust, even one that does not exist."""
    data = jcs(base_header(time="2023-02-29T00:00:00.000000Z"))
    assert assert_same(data) is None
    assert assert_same(data, checked_time="2023-02-29T00:00:00.000000Z") is not None


def test_each_parse_returns_its_own_meta() -> None:
    """The fast path remembers meta texts it proved canonical; callers still get a dict of their own."""
    data = jcs(base_header())
    first = parse_header(data)
    first["meta"]["lang"] = "changed"
    first["meta"]["new"] = 1
    assert parse_header(data) == base_header()
