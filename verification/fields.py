"""Readers for the members of our public JSON documents: each check raises `FormatError` naming the member.

Shared by the document types (`verification.receipt`, `verification.proofs`) so that every parser
refuses the same things the same way: a bool is not an integer, a hash is 64 lowercase hex digits,
a list is a JSON array, and no raw `KeyError`/`TypeError`/`ValueError` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from verification.errors import FormatError

__all__ = ["hash_bytes", "hex_hash", "hex_hashes", "integer", "mapping", "optional_text", "text", "type_and_version"]

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FormatError(f"{what} must be a JSON object")
    return value


def _member(obj: Mapping[str, Any], name: str) -> Any:
    if name not in obj:
        raise FormatError(f"{name!r} is missing")
    return obj[name]


def type_and_version(obj: Mapping[str, Any], doc_type: str, version: int) -> None:
    """Refuse a document that is not `doc_type` version `version` (checked before anything else)."""
    if obj.get("type") != doc_type:
        raise FormatError(f"not a {doc_type} document (type {obj.get('type')!r})")
    v = obj.get("v")
    if type(v) is not int or v != version:
        raise FormatError(f"unsupported version {v!r} of {doc_type}")


def integer(obj: Mapping[str, Any], name: str) -> int:
    """A non-negative JSON integer (not a bool, not a float)."""
    value = _member(obj, name)
    if type(value) is not int or value < 0:
        raise FormatError(f"{name!r} must be a non-negative integer")
    return value


def text(obj: Mapping[str, Any], name: str) -> str:
    value = _member(obj, name)
    if not isinstance(value, str) or not value:
        raise FormatError(f"{name!r} must be a non-empty string")
    return value


def optional_text(obj: Mapping[str, Any], name: str) -> str | None:
    """An optional string member: absent is None; present it must be a non-empty string."""
    return text(obj, name) if name in obj else None


def hex_hash(obj: Mapping[str, Any], name: str) -> str:
    """A SHA-256 as 64 lowercase hex digits, returned as the text."""
    value = _member(obj, name)
    if not isinstance(value, str) or not _HEX64.match(value):
        raise FormatError(f"{name!r} must be 64 lowercase hex digits")
    return value


def hex_hashes(obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """A JSON array of 64-lowercase-hex-digit hashes."""
    value = _member(obj, name)
    if not isinstance(value, list):
        raise FormatError(f"{name!r} must be a list of hashes")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _HEX64.match(item):
            raise FormatError(f"{name}[{i}] must be 64 lowercase hex digits")
    return tuple(value)


def hash_bytes(value: str, what: str) -> bytes:
    """The 32 bytes of a hex hash held by a document type (checked again: types can be built directly)."""
    if not isinstance(value, str) or not _HEX64.match(value):
        raise FormatError(f"{what} must be 64 lowercase hex digits")
    return bytes.fromhex(value)
