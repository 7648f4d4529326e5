"""The bundle format's constants and member readers (`verification.bundle`).

Each reader checks one value of a bundle document and raises a `FormatError` naming the member
(its path in the document, ``manifest.scope.start``) when the value is not what the format allows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from verification.entry import CASE_RE
from verification.errors import FormatError

__all__ = ["BUNDLE_TYPE", "BUNDLE_VERSION", "MAX_PROOF_HASHES", "SCOPE_MEMBERS"]

BUNDLE_TYPE = "caseledger.bundle"
BUNDLE_VERSION = 1
#: what ``manifest.scope`` may restrict
SCOPE_MEMBERS = frozenset({"case", "subject", "start", "end", "from", "to"})
#: a proof's hashes: an RFC 9162 path in a tree of fewer than 2^63 leaves has at most 63, a range
#: proof's right side at most twice that
MAX_PROOF_HASHES = 128

#: every integer of the format stays exact in any JSON parser (I-JSON, RFC 7493 §2.2)
_MAX_JSON_INT = 2**53 - 1
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_RFC3339 = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?"
                      r"(Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z")
#: RFC 6901: "" or a sequence of "/" reference tokens, "~" only as "~0" or "~1"
_JSON_POINTER = re.compile(r"(?:/(?:[^~/]|~[01])*)*\Z")


# --- reading members -----------------------------------------------------------------------------


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FormatError(f"{path!r} must be a JSON object", member=path)
    return value


def _members(obj: Mapping[str, Any], path: str, required: frozenset[str], allowed: frozenset[str]) -> None:
    """`FormatError` naming the first missing or unknown member of `obj` (at `path`, "" for the top)."""
    keys = obj.keys()
    if required <= keys <= allowed:
        return
    prefix = f"{path}." if path else ""
    missing = sorted(required - keys)
    if missing:
        raise FormatError(f"'{prefix}{missing[0]}' is missing", member=prefix + missing[0])
    unknown = sorted(str(k) for k in keys - allowed)
    raise FormatError(f"'{prefix}{unknown[0]}' is not a member of a {BUNDLE_TYPE} v {BUNDLE_VERSION}",
                      member=prefix + unknown[0])


def _integer(value: Any, path: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_JSON_INT:
        raise FormatError(f"{path!r} must be an integer in [0, {_MAX_JSON_INT}]", member=path)
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise FormatError(f"{path!r} must be a non-empty string", member=path)
    return value


def _hashes(value: Any, path: str) -> tuple[str, ...]:
    """A list of at most `MAX_PROOF_HASHES` hashes, each 64 lowercase hex digits (a tuple or list)."""
    if not isinstance(value, list | tuple):
        raise FormatError(f"{path!r} must be a list of hashes", member=path)
    if len(value) > MAX_PROOF_HASHES:
        raise FormatError(f"{path!r} holds {len(value)} hashes, at most {MAX_PROOF_HASHES} allowed", member=path)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _HEX64.match(item):
            raise FormatError(f"'{path}[{i}]' must be 64 lowercase hex digits", member=f"{path}[{i}]")
    return tuple(value)


def _rfc3339(value: Any, path: str) -> datetime:
    """An RFC 3339 date-time with an offset (``Z`` or ``±hh:mm``) that exists, as an aware datetime."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is not None:
        moment, fraction, offset = match.groups()
        if fraction:  # datetime keeps microseconds: further digits are read and dropped
            moment += "." + (fraction + "00000")[:6]
        try:
            return datetime.fromisoformat(moment + ("+00:00" if offset == "Z" else offset))
        except ValueError:
            pass
    raise FormatError(f"{path!r} must be an RFC 3339 date-time with an offset", member=path)


def _nested(exc: FormatError, path: str) -> FormatError:
    """`exc`, raised by a part's parser, restated with the part's place in the bundle (``entries[3].salt``)."""
    fields = dict(exc.fields)
    member = fields.get("member")
    if isinstance(member, str) and f"'{member}'" in exc.message:
        fields["member"] = f"{path}.{member}"
        return FormatError(exc.message.replace(f"'{member}'", f"'{path}.{member}'", 1), **fields)
    fields["member"] = f"{path}.{member}" if isinstance(member, str) else path
    return FormatError(f"{path!r}: {exc.message}", **fields)


def _check_scope(scope: Any) -> None:
    if not isinstance(scope, dict):
        raise FormatError("'manifest.scope' must be a JSON object", member="manifest.scope")
    unknown = sorted(str(k) for k in scope.keys() - SCOPE_MEMBERS)
    if unknown:
        raise FormatError(f"'manifest.scope.{unknown[0]}' is not a scope of a {BUNDLE_TYPE} (one of "
                          f"{', '.join(sorted(SCOPE_MEMBERS))})", member=f"manifest.scope.{unknown[0]}")
    if "case" in scope and not (isinstance(scope["case"], str) and CASE_RE.match(scope["case"])):
        raise FormatError("'manifest.scope.case' must be a case id", member="manifest.scope.case")
    if "subject" in scope:
        _text(scope["subject"], "manifest.scope.subject")
    for name in ("start", "end"):
        if name in scope:
            _integer(scope[name], f"manifest.scope.{name}")
    for name in ("from", "to"):
        if name in scope:
            _rfc3339(scope[name], f"manifest.scope.{name}")
