"""Content in and out: JSON content is stored in its RFC 8785 form (DESIGN §9) by every face, and
stored content is rendered the same way by every face, in a form any JSON response can carry."""

from __future__ import annotations

import base64
import json
from typing import Any

from ledger.errors import FormatError, InvalidInput
from verification.entry import MAX_JSON_DEPTH, canonical_json

__all__ = ["encode_json_content", "render_content"]


def encode_json_content(value: Any, what: str = "content") -> bytes:
    """The stored bytes of JSON content: its RFC 8785 form. Refuses (InvalidInput) values nested
    deeper than `MAX_JSON_DEPTH` and values with no RFC 8785 form (unsafe integers, NaN, lone
    surrogates), so nothing is stored that a reader could not render back."""
    try:
        return canonical_json(value)  # refuses what nests deeper than MAX_JSON_DEPTH, naming it
    except FormatError as exc:
        raise InvalidInput(f"{what}: {exc.message}", limit=MAX_JSON_DEPTH) from None


def render_content(content: bytes) -> dict[str, Any]:
    """Stored content as one member of a JSON response: ``content`` (the JSON value) when it is JSON
    with an RFC 8785 form, which any response can carry as it is, else ``content_text`` when it is
    UTF-8, else ``content_base64``.

    Never fails: content stored before limits existed (or by another face, such as a file given to
    ``caseledger append``) that nests too deep for a response, holds an escaped lone surrogate, or
    holds a number JSON cannot carry exactly (NaN, Infinity, 1e999, integers beyond 2^53) is
    returned as the text it is, never re-encoded (NaN would silently become null), so no stored
    entry can make its case unreadable.
    """
    try:
        text = content.decode()
    except UnicodeDecodeError:
        return {"content_base64": base64.b64encode(content).decode()}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {"content_text": text}
    try:
        canonical_json(value)  # refuses what nests deeper than MAX_JSON_DEPTH and what has no I-JSON form
    except FormatError:
        return {"content_text": text}
    return {"content": value}
