"""Entry headers (DESIGN §2): canonical bytes, entry hashes and the two hash chains.

An entry hash is SHA-256(0x00 ‖ JCS(header)), the RFC 9162 leaf hash of the RFC 8785 bytes, so the
chain link and the Merkle leaf are one value. `verification.chain.LogVerifier` checks a whole log.
"""

from __future__ import annotations

import json
import json.encoder
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

from verification.errors import ChainError, FormatError
from verification.merkle import leaf_hash

__all__ = [
    "ACTOR_RE",
    "CASE_PATTERN",
    "CASE_RE",
    "CHANNELS",
    "HEADER_FIELDS",
    "HEADER_VERSION",
    "KINDS",
    "MAX_JSON_DEPTH",
    "TIME_FORMAT",
    "ZERO_HASH",
    "canonical_json",
    "encode_header",
    "entry_hash",
    "format_time",
    "is_plain_json",
    "json_depth",
    "parse_header",
    "plain_json",
    "utc_now",
]

HEADER_VERSION = 1
ZERO_HASH = "0" * 64
HEADER_FIELDS = frozenset(
    {"v", "log", "seq", "id", "time", "kind", "actor", "case", "case_prev", "channel", "subject", "key",
     "ct", "commit", "meta", "prev"}
)
CHANNELS = frozenset({"phone", "email", "chat", "sms", "social", "video", "in_person", "api"})
#: what an entry records (DESIGN §2 `kind`)
KINDS = frozenset({"interaction", "document", "share", "access", "policy", "erasure", "key", "anchor",
                   "assignment", "hold", "export", "audit"})
#: an opaque case id: 1-128 of letters, digits and . _ : -
CASE_PATTERN = r"[A-Za-z0-9._:-]{1,128}"
CASE_RE = re.compile(CASE_PATTERN + r"\Z")
#: a pseudonymous actor: ``user:…`` or ``service:…``
ACTOR_RE = re.compile(r"(user|service):[A-Za-z0-9._@:-]{1,120}\Z")
#: RFC 3339 UTC with microseconds: fixed width, so string order is time order
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: how deeply a JSON value we hash or parse may nest (a flat object is depth 1); deeper input is
#: refused as malformed, so no parser or encoder here ever recurses without bound
MAX_JSON_DEPTH = 64
#: a header is one object around `meta`
_MAX_META_DEPTH = MAX_JSON_DEPTH - 1

_MAX_SAFE_INT = 2**53 - 1
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")  # ASCII digits only
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_OPTIONAL_STR = ("case", "channel", "subject", "key")
_OPTIONAL_HEX = ("case_prev", "ct", "commit")


def format_time(moment: datetime) -> str:
    """`moment` (timezone-aware) as a header `time`: RFC 3339 UTC with microseconds."""
    if moment.tzinfo is None:
        raise ValueError("a header time needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def utc_now() -> str:
    """The current time as a header `time` (the sequencer's clock; tests inject `format_time`)."""
    return format_time(datetime.now(UTC))


def json_depth(value: Any, *, limit: int | None = None) -> int:
    """How many containers (dicts, lists, tuples) nest in `value`: 0 for a scalar, 1 for a flat one.

    Iterative, one level at a time, so it measures 100000-deep values without recursion. With
    `limit` it stops once the depth exceeds it and returns ``limit + 1``, which also bounds the work
    on a value that contains itself.
    """
    depth = 0
    level = [value]
    while True:
        children: list[Any] = []
        nested = False
        for item in level:
            if isinstance(item, dict):
                nested = True
                children.extend(item.values())
            elif isinstance(item, list | tuple):
                nested = True
                children.extend(item)
        if not nested:
            return depth
        depth += 1
        if limit is not None and depth > limit:
            return depth
        level = children


def is_plain_json(value: Any) -> bool:
    """True when `json.dumps` (sorted, compact, raw UTF-8) is byte-identical to RFC 8785.

    That holds for strings, safe integers, booleans, null and containers of them with ASCII keys,
    nested at most `MAX_JSON_DEPTH` deep: JCS differs from it only for floats (ECMAScript number
    form) and for key order beyond the BMP. Deeper values are not plain (the recursion is bounded).
    """
    return _is_plain(value, MAX_JSON_DEPTH)


def _is_plain(value: Any, depth_left: int) -> bool:
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, dict):
        return depth_left > 0 and all(
            isinstance(k, str) and k.isascii() and _is_plain(v, depth_left - 1) for k, v in value.items())
    if isinstance(value, list):
        return depth_left > 0 and all(_is_plain(v, depth_left - 1) for v in value)
    return False


def _is_time(value: Any) -> bool:
    """RFC 3339 UTC with microseconds as the sequencer writes it, and a date and time that exist."""
    return isinstance(value, str) and _TIME.match(value) is not None and _time_exists(value)


def _time_exists(value: str) -> bool:
    """Whether a value of the `_TIME` form names a date and time that exist."""
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def _parse_int(text: str) -> int | float:
    """JSON numbers are IEEE doubles (RFC 8785 §3.2.2.3): JCS writes a float of 2^53 or more as bare
    digits, so read those back as the float they stand for, not as an integer JCS refuses."""
    value = int(text)
    return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else float(text)


_DECODER = json.JSONDecoder(parse_int=_parse_int)
_PLAIN_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The same encoder made once: `JSONEncoder.encode` builds CPython's C encoder anew on every call,
# which is a fifth of the cost of encoding a header. No circular-reference markers: plain values
# are trees (`is_plain_json` walks them first).
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # None where there is no C speedup
_C_PLAIN: Any = (None if _C_MAKE_ENCODER is None else _C_MAKE_ENCODER(
    None, _PLAIN_ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True))


def _encode_plain(value: Any) -> bytes:
    try:
        if _C_PLAIN is not None:
            return "".join(_C_PLAIN(value, 0)).encode()
        return _PLAIN_ENCODER.encode(value).encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: not representable in I-JSON
        raise FormatError("value contains a lone surrogate and has no canonical form") from exc


def plain_json(value: Any) -> bytes | None:
    """RFC 8785 bytes of `value` if it is plain (see `is_plain_json`), else None: one pass over it."""
    return _encode_plain(value) if is_plain_json(value) else None


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of `value`; a fast path for the plain values headers hold.

    Raises `FormatError` for anything without a canonical form, including values nested deeper
    than `MAX_JSON_DEPTH`.
    """
    if is_plain_json(value):
        return _encode_plain(value)
    if json_depth(value, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise FormatError(f"value nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise FormatError(f"value has no RFC 8785 canonical form: {exc}") from exc


def encode_header(header: Mapping[str, Any]) -> bytes:
    """JCS bytes of a header built by the sequencer: only `meta` can hold values off the fast path."""
    if header["seq"] <= _MAX_SAFE_INT and _is_plain(header["meta"], _MAX_META_DEPTH):
        return _encode_plain(header)
    return canonical_json(dict(header))


def entry_hash(header: Mapping[str, Any]) -> bytes:
    """SHA-256(0x00 ‖ JCS(header)) — the entry's chain link and Merkle leaf."""
    return leaf_hash(canonical_json(dict(header)))


# --- the canonical fast path of parse_header ------------------------------------------------------
#
# A version-1 header in RFC 8785 form is one fixed shape: the sixteen keys in sorted order, no
# whitespace, strings escaped only as JCS escapes them. One regular expression that matches exactly
# those texts (and captures the values) therefore proves both well-formedness and canonical form,
# without decoding to a dict and encoding it again. Only `meta` is free-form: it is captured whole
# and checked as before, by decoding and re-encoding it alone. Whatever the pattern does not match
# goes to the full parser, which stays the authority: it names the error, and the fast path only
# ever returns what the full parser would return.

#: the body of a JSON string as JCS writes it (RFC 8785 §3.2.2.2): raw characters except `"`, `\`
#: and U+0000-U+001F; those as the two-character escapes where JSON has one, else \u00xx lower case
_JCS_STRING = r'[^"\\\x00-\x1f]*(?:\\(?:["\\bfnrt]|u00(?:0[0-7bef]|1[0-9a-f]))[^"\\\x00-\x1f]*)*'
_STR = f'"({_JCS_STRING})"'
_NON_EMPTY_STR = f'"((?!"){_JCS_STRING})"'
_OPTIONAL_STR_RE = f'(?:null|{_STR})'
_HEX64_RE = '[0-9a-f]{64}'
_OPTIONAL_HEX_RE = f'(?:null|"({_HEX64_RE})")'
_CANONICAL_V1 = re.compile(
    r'\{"actor":' + _NON_EMPTY_STR
    + ',"case":' + _OPTIONAL_STR_RE
    + ',"case_prev":' + _OPTIONAL_HEX_RE
    + ',"channel":(?:null|"(' + "|".join(sorted(CHANNELS)) + ')")'
    + ',"commit":' + _OPTIONAL_HEX_RE
    + ',"ct":' + _OPTIONAL_HEX_RE
    + ',"id":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"'
    + ',"key":' + _OPTIONAL_STR_RE
    + ',"kind":' + _NON_EMPTY_STR
    + ',"log":' + _NON_EMPTY_STR
    + r',"meta":(\{.*?\})'
    + ',"prev":"(' + _HEX64_RE + ')"'
    + ',"seq":(0|[1-9][0-9]{0,15})'
    + ',"subject":' + _OPTIONAL_STR_RE
    + r',"time":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z)"'
    + r',"v":1\}'
)


def _unescape(body: str | None) -> str | None:
    """The value of a JSON string whose body matched `_JCS_STRING` (None stays None)."""
    if body is None or "\\" not in body:
        return body
    value: str = _DECODER.decode(f'"{body}"')
    return value


#: flat `meta` texts already proven canonical, and their values: a log repeats a handful of them
_KNOWN_META: dict[str, dict[str, Any]] = {}
_KNOWN_META_MAX = 256


def _canonical_meta(text: str) -> dict[str, Any] | None:
    """The object `text` holds if it is a plain JSON object in canonical form, else None.

    Returns a fresh dict each time, so a caller may change what it is given.
    """
    known = _KNOWN_META.get(text)
    if known is not None:
        return known.copy()
    try:
        meta = _DECODER.decode(text)
        if type(meta) is not dict or not _is_plain(meta, _MAX_META_DEPTH) or _PLAIN_ENCODER.encode(meta) != text:
            return None
    except (ValueError, RecursionError):
        return None
    if not any(isinstance(value, dict | list) for value in meta.values()):  # a shallow copy is a copy
        if len(_KNOWN_META) >= _KNOWN_META_MAX:
            _KNOWN_META.clear()
        _KNOWN_META[text] = meta.copy()
    return meta


def _parse_canonical(data: bytes, checked_time: str | None) -> dict[str, Any] | None:
    """The header `data` holds if it is a valid version-1 header in canonical form, else None.

    None means only "not proven here": the full parser then decides, and explains.
    """
    try:
        text = data.decode()  # strict: encoded surrogates and invalid UTF-8 go to the full parser
    except UnicodeDecodeError:
        return None
    match = _CANONICAL_V1.fullmatch(text)
    if match is None:
        return None
    (actor, case, case_prev, channel, commit, ct, id_, key, kind, log, meta_text, prev, seq_text, subject,
     time) = match.groups()
    seq = int(seq_text)
    if seq > _MAX_SAFE_INT:
        return None
    if time != checked_time and not _time_exists(time):
        return None
    meta = _canonical_meta(meta_text)
    if meta is None:
        return None
    if "\\" in text:
        actor, case, key, kind, log, subject = map(_unescape, (actor, case, key, kind, log, subject))
    return {"actor": actor, "case": case, "case_prev": case_prev, "channel": channel, "commit": commit, "ct": ct,
            "id": id_, "key": key, "kind": kind, "log": log, "meta": meta, "prev": prev, "seq": seq,
            "subject": subject, "time": time, "v": HEADER_VERSION}


def parse_header(data: bytes, *, seq: int | None = None, checked_time: str | None = None) -> dict[str, Any]:
    """Parse header bytes and check they are a well-formed, canonical version-1 header.

    Raises `ChainError` (carrying `seq`, when known) for anything malformed: a header whose bytes
    are not their own canonical form would hash differently in other implementations.
    `checked_time` is a time value already known to be valid (a batch shares one).
    """
    header = _parse_canonical(data, checked_time)
    if header is not None:
        return header
    return _parse_header_slowly(data, seq=seq, checked_time=checked_time)


def _parse_header_slowly(data: bytes, *, seq: int | None = None, checked_time: str | None = None) -> dict[str, Any]:
    """`parse_header` by decoding, checking each field and encoding again: the authority for errors."""
    try:
        # read as json.loads reads bytes (BOM, UTF-16/32); anything but bare UTF-8 then fails the
        # canonical check below, naming the entry
        header = _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    except RecursionError:
        raise FormatError(f"entry {seq}: header nests deeper than {MAX_JSON_DEPTH} levels", seq=seq) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChainError(f"entry {seq}: header is not valid JSON", seq=seq) from exc
    if not isinstance(header, dict):
        raise ChainError(f"entry {seq}: header is not a JSON object", seq=seq)
    if seq is None and type(header.get("seq")) is int:  # the caller's position wins over the claim
        seq = header["seq"]
    where = f"entry {seq}"
    if set(header) != HEADER_FIELDS:
        missing = sorted(HEADER_FIELDS - set(header))
        extra = sorted(set(header) - HEADER_FIELDS)
        raise ChainError(f"{where}: header fields wrong (missing {missing}, unknown {extra})", seq=seq)
    if type(header["v"]) is not int or header["v"] != HEADER_VERSION:
        raise ChainError(f"{where}: unsupported header version {header['v']!r}", seq=seq)
    if not isinstance(header["seq"], int) or isinstance(header["seq"], bool) or header["seq"] < 0:
        raise ChainError(f"{where}: seq is not a non-negative integer", seq=seq)
    for name in ("log", "kind", "actor"):
        if not isinstance(header[name], str) or not header[name]:
            raise ChainError(f"{where}: {name} must be a non-empty string", seq=seq)
    if not isinstance(header["id"], str) or not _UUID.match(header["id"]):
        raise ChainError(f"{where}: id is not a lowercase UUID", seq=seq)
    time = header["time"]
    if time is None:  # never let it pass as equal to checked_time=None, "no time checked yet"
        raise FormatError(f"{where}: time is null, not RFC 3339 UTC with microseconds", seq=seq, member="time")
    if time != checked_time and not _is_time(time):
        raise ChainError(f"{where}: time is not RFC 3339 UTC with microseconds", seq=seq)
    for name in _OPTIONAL_STR:
        if header[name] is not None and not isinstance(header[name], str):
            raise ChainError(f"{where}: {name} must be a string or null", seq=seq)
    for name in (*_OPTIONAL_HEX, "prev"):
        value = header[name]
        if (value is not None or name == "prev") and not (isinstance(value, str) and _HEX64.match(value)):
            raise ChainError(f"{where}: {name} is not a lowercase hex SHA-256", seq=seq)
    if header["channel"] is not None and header["channel"] not in CHANNELS:
        raise ChainError(f"{where}: unknown channel {header['channel']!r}", seq=seq)
    if not isinstance(header["meta"], dict):
        raise ChainError(f"{where}: meta must be an object", seq=seq)
    if json_depth(header, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise FormatError(f"{where}: header nests deeper than {MAX_JSON_DEPTH} levels", seq=seq)
    try:
        # every other field was type-checked above, so the meta object decides the encoder
        plain = header["seq"] <= _MAX_SAFE_INT and is_plain_json(header["meta"])
        canonical = _encode_plain(header) if plain else canonical_json(header)
    except FormatError as exc:
        raise ChainError(f"{where}: {exc}", seq=seq) from exc
    if canonical != data:
        raise ChainError(f"{where}: header bytes are not RFC 8785 canonical", seq=seq)
    return header
