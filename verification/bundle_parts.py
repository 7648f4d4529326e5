"""The parts of a bundle (`verification.bundle`): its manifest, its entries and its proofs."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from verification.bundle_fields import (
    _HEX64,
    _JSON_POINTER,
    _MAX_JSON_INT,
    _check_scope,
    _hashes,
    _integer,
    _members,
    _object,
    _rfc3339,
    _text,
)
from verification.checkpoint import _b64decode
from verification.entry import ACTOR_RE, MAX_JSON_DEPTH, canonical_json, json_depth
from verification.errors import FormatError

__all__ = ["BundleEntry", "BundleInclusion", "BundleManifest", "BundleProof", "BundleRange"]

_CONTAINERS = frozenset({dict, list, tuple})
_MANIFEST_MEMBERS = frozenset({"log", "scope", "generated_at", "generator", "exported_by", "include_content",
                               "redactions"})
_ENTRY_REQUIRED = frozenset({"seq", "entry_hash", "header"})
_ENTRY_MEMBERS = _ENTRY_REQUIRED | {"content", "salt", "redacted"}


@dataclass(frozen=True)
class BundleManifest:
    """Which log the bundle is of, what it holds (`scope`), and who made it when.

    Construction checks every field (`FormatError` naming the member): `log` a non-empty origin,
    `scope` as `SCOPE_MEMBERS` says, `generated_at` RFC 3339 with an offset, `generator` non-empty,
    `exported_by` a pseudonymous actor (``user:…`` / ``service:…``), `include_content` a bool,
    `redactions` RFC 6901 JSON pointers.
    """

    log: str
    scope: dict[str, Any]
    generated_at: str
    generator: str
    exported_by: str
    include_content: bool
    redactions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _text(self.log, "manifest.log")
        _check_scope(self.scope)
        _rfc3339(self.generated_at, "manifest.generated_at")
        _text(self.generator, "manifest.generator")
        if not isinstance(self.exported_by, str) or not ACTOR_RE.match(self.exported_by):
            raise FormatError("'manifest.exported_by' must be an actor (user:… or service:…)",
                              member="manifest.exported_by")
        if type(self.include_content) is not bool:
            raise FormatError("'manifest.include_content' must be true or false", member="manifest.include_content")
        if not isinstance(self.redactions, tuple):
            raise FormatError("'manifest.redactions' must be a list of JSON pointers", member="manifest.redactions")
        for i, pointer in enumerate(self.redactions):
            if not isinstance(pointer, str) or not _JSON_POINTER.match(pointer):
                raise FormatError(f"'manifest.redactions[{i}]' must be a JSON pointer (RFC 6901)",
                                  member=f"manifest.redactions[{i}]")

    def to_json(self) -> dict[str, Any]:
        return {"log": self.log, "scope": dict(self.scope), "generated_at": self.generated_at,
                "generator": self.generator, "exported_by": self.exported_by,
                "include_content": self.include_content, "redactions": list(self.redactions)}

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        manifest = _object(obj, "manifest")
        _members(manifest, "manifest", _MANIFEST_MEMBERS, _MANIFEST_MEMBERS)
        redactions = manifest["redactions"]
        if not isinstance(redactions, list):
            raise FormatError("'manifest.redactions' must be a list of JSON pointers", member="manifest.redactions")
        return cls(manifest["log"], manifest["scope"], manifest["generated_at"], manifest["generator"],
                   manifest["exported_by"], manifest["include_content"], tuple(redactions))


def _too_deep(value: Any) -> bool:
    """Whether a JSON object or array nests `MAX_JSON_DEPTH` levels or more (a flat one is told at a glance)."""
    for item in value.values() if isinstance(value, dict) else value:
        if type(item) in _CONTAINERS:
            return json_depth(value, limit=MAX_JSON_DEPTH) >= MAX_JSON_DEPTH
    return False


def _committed_bytes(content: Any) -> bytes:
    """The bytes a content commitment covers (DESIGN §9): the bytes themselves, or JCS of a JSON value."""
    if isinstance(content, bytes):
        return content
    try:
        return canonical_json(content)  # which refuses values nested deeper than MAX_JSON_DEPTH
    except FormatError as exc:
        raise FormatError(f"'content': {exc.message}", member="content") from None


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """Entry `seq` of the log: its `header` (a JSON object), claimed `entry_hash` and, if exported, content.

    `content` is a JSON value, or `bytes` (``{"base64": …}`` in JSON), or None: then `redacted`
    says why it was withheld, or, None too, the content is not in the bundle. `salt` (64 lowercase
    hex digits) is there exactly when `content` is. Construction checks every field (`FormatError`
    naming the member within the entry) and that the content has an RFC 8785 form.
    """

    seq: int
    entry_hash: str
    header: dict[str, Any]
    content: Any = None
    salt: str | None = None
    redacted: str | None = None
    #: the bytes the header's ``commit`` covers, when there is content
    committed: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seq = self.seq
        if type(seq) is not int or not 0 <= seq <= _MAX_JSON_INT:
            raise FormatError(f"'seq' must be an integer in [0, {_MAX_JSON_INT}]", member="seq")
        entry_hash = self.entry_hash
        if type(entry_hash) is not str or not _HEX64.match(entry_hash):
            raise FormatError("'entry_hash' must be 64 lowercase hex digits", member="entry_hash")
        header = self.header
        if type(header) is not dict:
            raise FormatError("'header' must be a JSON object", member="header")
        # meta is where a header nests; anything else not a header's is the `headers` check's to name,
        # and verify_bundle encodes it without unbounded recursion
        meta = header.get("meta")
        if type(meta) in _CONTAINERS and _too_deep(meta):
            raise FormatError(f"'header' nests deeper than {MAX_JSON_DEPTH} levels", member="header")
        committed = None
        if self.content is not None:
            if self.redacted is not None:
                raise FormatError("'redacted' is only for an entry whose content is null", member="redacted")
            if type(self.salt) is not str or not _HEX64.match(self.salt):
                raise FormatError("'salt' must be 64 lowercase hex digits (32 bytes) beside content", member="salt")
            committed = _committed_bytes(self.content)
        else:
            if self.salt is not None:
                raise FormatError("'salt' is only for an entry that carries content", member="salt")
            if self.redacted is not None:
                _text(self.redacted, "redacted")
        object.__setattr__(self, "committed", committed)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "entry_hash": self.entry_hash, "header": self.header}
        if self.content is not None:
            content = self.content
            out["content"] = {"base64": base64.b64encode(content).decode()} if isinstance(content, bytes) else content
            out["salt"] = self.salt
        elif self.redacted is not None:
            out["content"] = None
            out["redacted"] = self.redacted
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        if type(obj) is not dict and not isinstance(obj, Mapping):
            raise FormatError("an entry must be a JSON object")
        if not _ENTRY_REQUIRED <= obj.keys() <= _ENTRY_MEMBERS:
            _members(obj, "", _ENTRY_REQUIRED, _ENTRY_MEMBERS)
        content = obj.get("content")
        if content is None:
            if "content" in obj and "redacted" not in obj:
                raise FormatError("'content' is null without 'redacted' saying why", member="redacted")
        elif type(content) is dict and len(content) == 1 and "base64" in content:
            encoded = content["base64"]
            if not isinstance(encoded, str):
                raise FormatError("'content.base64' must be a string", member="content.base64")
            try:
                content = _b64decode(encoded, "'content.base64'")
            except FormatError as exc:
                raise FormatError(exc.message, member="content.base64") from None
        return cls(obj["seq"], obj["entry_hash"], obj["header"], content, obj.get("salt"), obj.get("redacted"))


@dataclass(frozen=True)
class BundleRange:
    """A range proof (DESIGN §3): the entries are exactly leaves [start, end) of the checkpoint's tree.

    `left` are the peaks of the tree of `start` leaves, `right` the aligned complete subtrees
    covering [end, size) (`verification.compact.range_decomposition`); hashes as lowercase hex.
    """

    start: int
    end: int
    left: tuple[str, ...]
    right: tuple[str, ...]

    def __post_init__(self) -> None:
        _integer(self.start, "proof.range.start")
        _integer(self.end, "proof.range.end")
        if self.start >= self.end:
            raise FormatError("'proof.range.end' must be greater than 'proof.range.start'", member="proof.range.end")
        _hashes(self.left, "proof.range.left")
        _hashes(self.right, "proof.range.right")

    def to_json(self) -> dict[str, Any]:
        return {"range": {"start": self.start, "end": self.end, "left": list(self.left), "right": list(self.right)}}


@dataclass(frozen=True)
class BundleInclusion:
    """The RFC 9162 inclusion `proof` of entry `seq` in the checkpoint's tree (lowercase hex)."""

    seq: int
    proof: tuple[str, ...]

    def __post_init__(self) -> None:
        _integer(self.seq, "seq")
        _hashes(self.proof, "proof")

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "proof": list(self.proof)}


#: a bundle's proof: one range proof, or one inclusion proof per entry
BundleProof = BundleRange | tuple[BundleInclusion, ...]
