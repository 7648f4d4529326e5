"""Bundles (DESIGN §9): an export that an examiner's machine checks offline, with nothing else.

`Bundle` is the public format ``caseledger.bundle`` v 1: `to_json` is its only serialiser,
`from_json` its only parser. It holds a manifest (which log, which scope, who exported it when),
the log's verifier key, a signed checkpoint, the entries (header, entry hash and, when exported,
their content with its salt), one proof that ties the entries to the checkpoint's root and any
anchor receipts. The parser is strict: a member missing or unknown anywhere is a `FormatError`
naming it (``entries[3].salt``), and so is a value of the wrong type or shape.

What DESIGN §9 leaves open, pinned here:

- ``manifest.scope`` is an object of at most these members: ``case`` (a case id), ``subject`` (a
  subject handle), ``start`` / ``end`` (seqs, the range [start, end)) and ``from`` / ``to`` (RFC 3339
  times, the window [from, to)); ``{}`` for no restriction. Every entry must lie in the scope.
- An entry carries ``content`` and ``salt`` together, or ``"content": null`` with ``"redacted":
  "<why>"`` (no salt), or none of the three (content not exported, or the entry has none). Content
  in a bundle whose ``manifest.include_content`` is false is malformed; an entry with a commitment
  and neither content nor a redaction in a bundle that includes content is a failed ``content``
  check: DESIGN §9 says content is never silently dropped.
- ``anchors`` is always present (``[]`` when there are none), and proofs hold at most
  `MAX_PROOF_HASHES` hashes each.

`verify_bundle` runs the checks named in `BUNDLE_CHECKS` in one pass over the entries; each
failure names its check and the first bad seq. Trust works as for receipts: the checkpoint counts
only if signed by a key `Trust` holds for the manifest's log; the bundle's own ``vkey`` only with
``Trust(insecure_embedded_key=True)``, and the result then says ``key_trusted: false``.

What a case-scoped bundle proves about completeness: every entry of the case between the first and
the last in the bundle is there (the ``case_prev`` chain), and the first is the case's first. An
entry removed from the end of a case cannot be told from a case that ended there.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from verification.anchor import AnchorReceipt, check_anchor_receipt
from verification.checkpoint import Checkpoint, _b64decode, parse_verifier_key
from verification.compact import verify_range
from verification.document_receipt import _checkpoint_as_stated, file_commitment
from verification.entry import (
    ACTOR_RE,
    CASE_RE,
    MAX_JSON_DEPTH,
    ZERO_HASH,
    canonical_json,
    encode_header,
    format_time,
    json_depth,
    parse_header,
)
from verification.errors import ChainError, FormatError, ProofError, VerificationError
from verification.fields import mapping, type_and_version
from verification.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from verification.receipt import open_receipt_checkpoint
from verification.trust import Trust

__all__ = [
    "BUNDLE_CHECKS",
    "BUNDLE_TYPE",
    "BUNDLE_VERSION",
    "MAX_PROOF_HASHES",
    "SCOPE_MEMBERS",
    "Bundle",
    "BundleCheck",
    "BundleEntry",
    "BundleInclusion",
    "BundleManifest",
    "BundleRange",
    "BundleResult",
    "verify_bundle",
]

BUNDLE_TYPE = "caseledger.bundle"
BUNDLE_VERSION = 1
#: the checks of `verify_bundle`, in the order its result lists them (and raises the first failed)
BUNDLE_CHECKS = ("checkpoint_signature", "headers", "entry_hashes", "order", "scope", "proof", "hash_chain",
                 "case_chain", "content", "anchors")
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

_CONTAINERS = frozenset({dict, list, tuple})
_MANIFEST_MEMBERS = frozenset({"log", "scope", "generated_at", "generator", "exported_by", "include_content",
                               "redactions"})
_BUNDLE_MEMBERS = frozenset({"type", "v", "manifest", "vkey", "checkpoint", "entries", "proof", "anchors"})
_ENTRY_REQUIRED = frozenset({"seq", "entry_hash", "header"})
_ENTRY_MEMBERS = _ENTRY_REQUIRED | {"content", "salt", "redacted"}
_RANGE_MEMBERS = frozenset({"start", "end", "left", "right"})
_INCLUSION_MEMBERS = frozenset({"seq", "proof"})


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


# --- the format ----------------------------------------------------------------------------------


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


def _proof_from_json(obj: Any) -> BundleProof:
    proof = _object(obj, "proof")
    if len(proof) != 1 or not proof.keys() <= {"range", "inclusion"}:
        raise FormatError("'proof' must hold exactly one of 'range' and 'inclusion'", member="proof")
    if "range" in proof:
        r = _object(proof["range"], "proof.range")
        _members(r, "proof.range", _RANGE_MEMBERS, _RANGE_MEMBERS)
        return BundleRange(r["start"], r["end"], _hashes(r["left"], "proof.range.left"),
                           _hashes(r["right"], "proof.range.right"))
    items = proof["inclusion"]
    if not isinstance(items, list):
        raise FormatError("'proof.inclusion' must be a list", member="proof.inclusion")
    out = []
    for i, item in enumerate(items):
        path = f"proof.inclusion[{i}]"
        p = _object(item, path)
        _members(p, path, _INCLUSION_MEMBERS, _INCLUSION_MEMBERS)
        hashes = p["proof"]
        if not isinstance(hashes, list):
            raise FormatError(f"'{path}.proof' must be a list of hashes", member=f"{path}.proof")
        try:
            out.append(BundleInclusion(p["seq"], tuple(hashes)))
        except FormatError as exc:
            raise _nested(exc, path) from None
    return tuple(out)


def _proof_to_json(proof: BundleProof) -> dict[str, Any]:
    if isinstance(proof, BundleRange):
        return proof.to_json()
    return {"inclusion": [p.to_json() for p in proof]}


@dataclass(frozen=True)
class Bundle:
    """Entries of `manifest.log`, the signed `checkpoint` they are proven against, and how (`proof`).

    `vkey` is the log's verifier key as the exporter states it (trusted only when the verifier says
    so); `anchors` are anchor receipts of checkpoints of the same log. Construction checks every
    field (`FormatError` naming the member), including that no entry carries content when the
    manifest says content is not included.
    """

    manifest: BundleManifest
    vkey: str
    checkpoint: str
    entries: tuple[BundleEntry, ...]
    proof: BundleProof
    anchors: tuple[AnchorReceipt, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.manifest, BundleManifest):
            raise FormatError("'manifest' must be a bundle manifest", member="manifest")
        try:
            parse_verifier_key(_text(self.vkey, "vkey"))
        except FormatError as exc:
            raise FormatError(f"'vkey': {exc.message}", member="vkey") from None
        _text(self.checkpoint, "checkpoint")
        if not isinstance(self.entries, tuple):
            raise FormatError("'entries' must be a list of entries", member="entries")
        include = self.manifest.include_content
        for i, entry in enumerate(self.entries):
            if type(entry) is not BundleEntry:
                raise FormatError(f"'entries[{i}]' must be a bundle entry", member=f"entries[{i}]")
            if entry.content is not None and not include:
                raise FormatError(f"'entries[{i}].content' is there though 'manifest.include_content' is false",
                                  member=f"entries[{i}].content")
        proof = self.proof
        if not isinstance(proof, BundleRange) and not (
                isinstance(proof, tuple) and all(isinstance(p, BundleInclusion) for p in proof)):
            raise FormatError("'proof' must be a range proof or a list of inclusion proofs", member="proof")
        if not isinstance(self.anchors, tuple) or not all(isinstance(a, AnchorReceipt) for a in self.anchors):
            raise FormatError("'anchors' must be a list of anchor receipts", member="anchors")

    @property
    def log(self) -> str:
        return self.manifest.log

    def to_json(self) -> dict[str, Any]:
        """The document of DESIGN §9; `from_json` reads it back to an equal value."""
        return {"type": BUNDLE_TYPE, "v": BUNDLE_VERSION, "manifest": self.manifest.to_json(), "vkey": self.vkey,
                "checkpoint": self.checkpoint, "entries": [entry.to_json() for entry in self.entries],
                "proof": _proof_to_json(self.proof), "anchors": [anchor.to_json() for anchor in self.anchors]}

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        """Parse the document; `FormatError` naming the member for anything malformed, missing or unknown."""
        doc = mapping(obj, "a bundle")
        type_and_version(doc, BUNDLE_TYPE, BUNDLE_VERSION)
        _members(doc, "", _BUNDLE_MEMBERS, _BUNDLE_MEMBERS)
        manifest = BundleManifest.from_json(doc["manifest"])
        items = doc["entries"]
        if not isinstance(items, list):
            raise FormatError("'entries' must be a list", member="entries")
        from_json = BundleEntry.from_json
        entries = []
        for i, item in enumerate(items):
            try:
                entries.append(from_json(item))
            except FormatError as exc:
                raise _nested(exc, f"entries[{i}]") from None
        anchors_json = doc["anchors"]
        if not isinstance(anchors_json, list):
            raise FormatError("'anchors' must be a list", member="anchors")
        anchors = []
        for i, item in enumerate(anchors_json):
            try:
                anchors.append(AnchorReceipt.from_json(item))
            except FormatError as exc:
                raise _nested(exc, f"anchors[{i}]") from None
        return cls(manifest, doc["vkey"], doc["checkpoint"], tuple(entries), _proof_from_json(doc["proof"]),
                   tuple(anchors))


# --- the result ----------------------------------------------------------------------------------


def _scope_text(scope: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in scope.items())


@dataclass(frozen=True)
class BundleCheck:
    """The outcome of one of `BUNDLE_CHECKS`: what held, or the first failure, its seq and how many failed."""

    name: str
    ok: bool
    detail: str
    seq: int | None = None
    failures: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ok": self.ok, "detail": self.detail}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.failures:
            out["failures"] = self.failures
        return out


@dataclass(frozen=True)
class BundleResult:
    """What `verify_bundle` found: every check's outcome and what the entries' content amounts to.

    `valid` holds when every check passed. `tree_size` and `root` are the checkpoint's (None when
    it could not even be read); `key_trusted` says whether its key came from the verifier's
    `Trust`. Content counts: `content_verified` matched its header's ``commit``;
    `content_redacted` was withheld with a reason (seqs in `redacted`); `content_unverifiable`
    was given for an entry without a commitment (seqs in `unverifiable`); `content_absent` is not
    in the bundle. `anchors` are the offline results of the anchor receipts.
    """

    valid: bool
    log: str
    scope: dict[str, Any]
    proof: str
    tree_size: int | None
    root: str | None
    key_trusted: bool
    checks: tuple[BundleCheck, ...]
    entries: int
    content_verified: int
    content_redacted: int
    content_unverifiable: int
    content_absent: int
    redacted: tuple[int, ...] = ()
    unverifiable: tuple[int, ...] = ()
    anchors: tuple[dict[str, Any], ...] = ()

    @property
    def failed(self) -> tuple[BundleCheck, ...]:
        """The checks that did not pass, in `BUNDLE_CHECKS` order."""
        return tuple(check for check in self.checks if not check.ok)

    def counts(self) -> dict[str, int]:
        return {"entries": self.entries, "content_verified": self.content_verified,
                "content_redacted": self.content_redacted, "content_unverifiable": self.content_unverifiable,
                "content_absent": self.content_absent, "anchors": len(self.anchors)}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.valid, "valid": self.valid, "type": BUNDLE_TYPE, "log": self.log, "scope": dict(self.scope),
                "proof": self.proof, "tree_size": self.tree_size, "root": self.root, "key_trusted": self.key_trusted,
                "counts": self.counts(), "checks": [check.to_json() for check in self.checks],
                "redacted": list(self.redacted), "unverifiable": list(self.unverifiable),
                "anchors": list(self.anchors)}

    def summary(self) -> str:
        """The verification summary as lines of text, for a terminal or the PDF's summary page."""
        scope = _scope_text(self.scope) or "no restriction"
        size = "unknown" if self.tree_size is None else str(self.tree_size)
        lines = [f"{BUNDLE_TYPE} of {self.log} (scope: {scope}): {self.entries} entries, {self.proof} proof, "
                 f"tree size {size}"]
        width = max(len(name) for name in BUNDLE_CHECKS)
        for check in self.checks:
            more = f" (and {check.failures - 1} more)" if check.failures > 1 else ""
            lines.append(f"  {'ok' if check.ok else 'FAIL':<4}  {check.name:<{width}}  {check.detail}{more}")
        lines.append(f"content: {self.content_verified} verified, {self.content_redacted} redacted, "
                     f"{self.content_unverifiable} not verifiable (no commitment), {self.content_absent} not included")
        if not self.key_trusted and self.tree_size is not None:
            lines.append("warning: checked with the bundle's own key, which is not trusted")
        failed = len(self.failed)
        lines.append("result: VALID" if self.valid else
                     f"result: INVALID ({failed} check{'s' if failed != 1 else ''} failed)")
        return "\n".join(lines) + "\n"


# --- verify --------------------------------------------------------------------------------------


class _Outcomes:
    """The first failure of each check (with how many there were), and each passed check's detail."""

    __slots__ = ("count", "details", "failed", "skipped")

    def __init__(self) -> None:
        self.failed: dict[str, VerificationError] = {}
        self.count: dict[str, int] = {}
        self.details: dict[str, str] = {}
        self.skipped: dict[str, str] = {}

    def fail(self, name: str, exc: VerificationError) -> None:
        if name not in self.failed:
            exc.fields.setdefault("check", name)
            self.failed[name] = exc
        self.count[name] = self.count.get(name, 0) + 1

    def checks(self) -> tuple[BundleCheck, ...]:
        out = []
        for name in BUNDLE_CHECKS:
            exc = self.failed.get(name)
            if exc is not None:
                seq = exc.fields.get("seq")
                out.append(BundleCheck(name, False, " ".join(exc.message.split()),
                                       seq if type(seq) is int else None, self.count[name]))
            elif name in self.skipped:
                out.append(BundleCheck(name, False, f"not checked: {self.skipped[name]}"))
            else:
                out.append(BundleCheck(name, True, self.details.get(name, "")))
        return tuple(out)


def _open_checkpoint(b: Bundle, trust: Trust, root: bytes | None, out: _Outcomes) -> tuple[Checkpoint | None, bool]:
    """The checkpoint, verified if it can be (else as stated, for the checks that follow), and whether trusted."""
    log = b.manifest.log
    try:
        if trust.insecure_embedded_key and not trust.keys_for(log) and parse_verifier_key(b.vkey).name != log:
            raise VerificationError(f"the bundle's own key is for {parse_verifier_key(b.vkey).name!r}, not {log!r}")
        checkpoint, key_trusted = open_receipt_checkpoint(b.checkpoint, log, b.vkey, trust)
        if root is not None and (not isinstance(root, bytes) or len(root) != HASH_SIZE or root != checkpoint.root):
            raise ProofError("the checkpoint's root is not the trusted root", expected=root, computed=checkpoint.root)
    except VerificationError as exc:
        out.fail("checkpoint_signature", exc)
        try:
            return _checkpoint_as_stated(b.checkpoint), False
        except FormatError:
            return None, False
    out.details["checkpoint_signature"] = (
        f"signed by a trusted key of {log}, tree size {checkpoint.size}" if key_trusted
        else f"signed by the bundle's own key (not trusted), tree size {checkpoint.size}")
    return checkpoint, key_trusted


def _scope_bounds(scope: Mapping[str, Any]) -> tuple[int, int | None, str | None, str | None]:
    """The seq range and the time window of a scope, times in the header form (fixed width: string order)."""
    start, end = scope.get("start", 0), scope.get("end")
    after = format_time(_rfc3339(scope["from"], "manifest.scope.from")) if "from" in scope else None
    before = format_time(_rfc3339(scope["to"], "manifest.scope.to")) if "to" in scope else None
    return start, end, after, before


def verify_bundle(bundle: Bundle | Mapping[str, Any], trust: Trust, *, root: bytes | None = None,
                  collect: bool = False) -> BundleResult:
    """Check a bundle offline; by default raise the first failed check, with `collect` report them all.

    The checks are named as `BUNDLE_CHECKS`:

    - ``checkpoint_signature``: the checkpoint is signed by a key `trust` holds for
      ``manifest.log`` (or, with ``insecure_embedded_key`` and none trusted, by the bundle's
      ``vkey``: then ``key_trusted`` is false), its origin is ``manifest.log``, and its root is
      `root` if one is given.
    - ``headers``: every header is a canonical version-1 header (`parse_header`) of
      ``manifest.log`` at the entry's seq. ``entry_hashes``: ``entry_hash`` is SHA-256(0x00 ‖
      JCS(header)).
    - ``order``: seqs strictly increase (an entry twice fails here). ``scope``: every entry lies in
      ``manifest.scope`` (its case, subject, seq range, time window).
    - ``proof``: a range proof's entries are exactly seqs [start, end) and, with the left peaks
      and right subtrees, fold to the checkpoint's root at its size; or every entry has exactly
      one inclusion proof, leading to that root.
    - ``hash_chain``: ``prev`` links each entry to the one before it wherever both are in the
      bundle (entry 0 to 64 zeros), and times do not go backwards.
    - ``case_chain``: in a case-scoped bundle, each entry's ``case_prev`` is the previous bundle
      entry's hash and the first is null; in a range, each case's links within it (from the
      case's first entry when the range starts at 0). Elsewhere it does not apply.
    - ``content``: given content matches the header's ``commit`` with its salt; content of an
      entry without a commitment is counted as not verifiable, a redaction as redacted; an entry
      with a commitment and nothing at all in a bundle that includes content fails.
    - ``anchors``: each anchor receipt is of this log, verifies offline under the same keys as
      the checkpoint (`verification.anchor.check_anchor_receipt`), and if its checkpoint is of the
      same size as the bundle's, has the same root.

    Every check runs whatever the others found (against the checkpoint as stated if its
    signature failed), so a collected result says independently what holds. Without `collect`
    the first failed check in that order is raised: a `VerificationError` subclass with
    ``fields["check"]`` and, for an entry, ``fields["seq"]``. A bundle that does not parse raises
    `FormatError` either way.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.from_json(bundle)
    manifest = b.manifest
    log = manifest.log
    out = _Outcomes()
    fail = out.fail
    checkpoint, key_trusted = _open_checkpoint(b, trust, root, out)

    scope = manifest.scope
    case_scope: str | None = scope.get("case")
    subject_scope: str | None = scope.get("subject")
    lowest, beyond, after, before = _scope_bounds(scope)
    bounded = "start" in scope or "end" in scope or "from" in scope or "to" in scope
    proof = b.proof
    contiguous = isinstance(proof, BundleRange)
    from_first = isinstance(proof, BundleRange) and proof.start == 0
    include = manifest.include_content

    leaves: list[bytes] = []
    add_leaf = leaves.append
    redacted: list[int] = []
    unverifiable: list[int] = []
    verified = absent = links = case_links = 0
    last_seq = -1
    last_hash: str | None = None
    last_time = ""
    case_head: str | None = None
    case_heads: dict[str, str] = {}

    for entry in b.entries:
        seq = entry.seq
        if seq <= last_seq:
            fail("order", ChainError(f"entry {seq} is in the bundle twice" if seq == last_seq
                                     else f"entry {seq} comes after entry {last_seq}", seq=seq))
        header = entry.header
        try:
            try:
                data = encode_header(header)
            except (KeyError, TypeError, RecursionError):  # not shaped like a header: the full encoder decides
                data = canonical_json(header)
        except FormatError as exc:
            fail("headers", ChainError(f"entry {seq}: header has no canonical form: {exc.message}", seq=seq))
            add_leaf(bytes.fromhex(entry.entry_hash))  # the proof can still be checked, for what it is
            last_seq, last_hash = seq, None
            continue
        h: dict[str, Any] | None
        try:
            # never checked_time=None: parse_header then lets a null time through
            h = parse_header(data, seq=seq, checked_time=last_time)
        except VerificationError as exc:
            h, data, error = _parse_again(header, data, seq, last_time, exc)
        digest = leaf_hash(data)
        hex_digest = digest.hex()
        add_leaf(digest)
        if hex_digest != entry.entry_hash:
            fail("entry_hashes", ProofError(f"entry {seq}: entry_hash is not the hash of its header", seq=seq,
                                            expected=bytes.fromhex(entry.entry_hash), computed=digest))
        if h is None:
            fail("headers", error if error.fields.get("seq") == seq else ChainError(error.message, seq=seq))
            # the links to it are still checked against what it hashes to
            raw_case = header.get("case")
            if case_scope is not None:
                case_head = hex_digest
            elif isinstance(raw_case, str):
                case_heads[raw_case] = hex_digest
            last_seq, last_hash = seq, hex_digest
            continue
        if h["log"] != log:
            fail("headers", ChainError(f"entry {seq}: header is of log {h['log']!r}, the bundle of {log!r}", seq=seq))
        if h["seq"] != seq:
            fail("headers", ChainError(f"entry {seq}: header says seq {h['seq']}", seq=seq))

        prev = h["prev"]
        if seq == last_seq + 1 and last_hash is not None:
            links += 1
            if prev != last_hash:
                fail("hash_chain", ChainError(f"entry {seq}: prev does not link to entry {last_seq}", seq=seq))
        elif seq == 0 and prev != ZERO_HASH:
            fail("hash_chain", ChainError("entry 0: prev is not 64 zeros", seq=seq))
        time = h["time"]
        if time < last_time:
            fail("hash_chain", ChainError(f"entry {seq}: time goes backwards from entry {last_seq}", seq=seq))

        case = h["case"]
        if case_scope is not None:
            if case != case_scope:
                fail("scope", ChainError(f"entry {seq}: of case {case!r}, not of {case_scope!r}", seq=seq))
            else:
                if h["case_prev"] != case_head:
                    fail("case_chain", ChainError(
                        f"entry {seq}: case_prev does not link to the case's previous entry in the bundle"
                        if case_head is not None else
                        f"entry {seq}: the case's first entry in the bundle is not its first (case_prev is set)",
                        seq=seq))
                case_links += case_head is not None
                case_head = hex_digest
        elif contiguous:
            if case is None:
                if h["case_prev"] is not None:
                    fail("case_chain", ChainError(f"entry {seq}: case_prev is set but there is no case", seq=seq))
            else:
                head = case_heads.get(case)
                if (head is not None or from_first) and h["case_prev"] != head:
                    fail("case_chain", ChainError(
                        f"entry {seq}: case_prev does not link to the case's previous entry", seq=seq))
                case_links += head is not None
                case_heads[case] = hex_digest
        if subject_scope is not None and h["subject"] != subject_scope:
            fail("scope", ChainError(f"entry {seq}: of subject {h['subject']!r}, not of {subject_scope!r}", seq=seq))
        if bounded and not (lowest <= seq and (beyond is None or seq < beyond) and (after is None or time >= after)
                            and (before is None or time < before)):
            fail("scope", ChainError(f"entry {seq}: outside the scope's seqs or times", seq=seq))

        committed = entry.committed
        if committed is None:
            if entry.redacted is not None:
                redacted.append(seq)
            elif include and h["commit"] is not None:
                fail("content", VerificationError(
                    f"entry {seq}: content silently dropped (a commitment, but neither content nor a redaction)",
                    seq=seq))
            else:
                absent += 1
        else:
            commit = h["commit"]
            if commit is None:
                unverifiable.append(seq)
            elif file_commitment(bytes.fromhex(entry.salt or ""), (committed,)).commit != bytes.fromhex(commit):
                fail("content", ProofError(f"entry {seq}: content does not match the header's commit with its salt",
                                           seq=seq, expected=bytes.fromhex(commit)))
            else:
                verified += 1
        last_seq, last_hash, last_time = seq, hex_digest, time

    n = len(b.entries)
    out.details["headers"] = f"{n} canonical headers of {log}"
    out.details["entry_hashes"] = f"{n} entry hashes are their headers' hashes"
    out.details["order"] = "seqs strictly increase"
    out.details["scope"] = f"every entry is within {_scope_text(scope)}" if scope else "no restriction"
    out.details["hash_chain"] = (f"{links} prev links between consecutive entries hold"
                                 + (", entry 0 starts the chain" if n and b.entries[0].seq == 0 else ""))
    if case_scope is not None:
        out.details["case_chain"] = (
            f"case {case_scope}: {case_links} case_prev links hold, from the case's first entry" if n
            else f"case {case_scope}: no entries")
    elif contiguous:
        out.details["case_chain"] = f"{case_links} case_prev links within the range hold"
    else:
        out.details["case_chain"] = "not applicable: neither case-scoped nor a range"
    out.details["content"] = (f"{verified} verified, {len(redacted)} redacted, {len(unverifiable)} not verifiable "
                              f"(no commitment), {absent} not included")

    if checkpoint is None:
        out.skipped["proof"] = "the checkpoint cannot be read"
    elif isinstance(proof, BundleRange):
        _check_range(b, proof, checkpoint, leaves, out)
    else:
        _check_inclusions(b, proof, checkpoint, leaves, out)
    if "proof" not in out.failed and "proof" not in out.skipped and "checkpoint_signature" in out.failed:
        out.details["proof"] += " (the checkpoint as stated: its signature did not verify)"
    anchors = _check_anchors(b, trust, checkpoint, out)

    result = BundleResult(
        valid=not out.failed and not out.skipped, log=log, scope=dict(scope),
        proof="range" if contiguous else "inclusion",
        tree_size=None if checkpoint is None else checkpoint.size,
        root=None if checkpoint is None else checkpoint.root.hex(), key_trusted=key_trusted, checks=out.checks(),
        entries=n, content_verified=verified, content_redacted=len(redacted),
        content_unverifiable=len(unverifiable), content_absent=absent, redacted=tuple(redacted),
        unverifiable=tuple(unverifiable), anchors=anchors)
    if not collect and out.failed:
        raise next(out.failed[name] for name in BUNDLE_CHECKS if name in out.failed)
    return result


def _parse_again(header: dict[str, Any], data: bytes, seq: int, checked_time: str, error: VerificationError
                 ) -> tuple[dict[str, Any] | None, bytes, VerificationError]:
    """After `parse_header` refused the fast encoding of a header: the full RFC 8785 encoder has the last word.

    The sequencer's encoder writes a float as Python does, where JCS may write an integer (``1.0``
    is ``1``). Returns the parsed header (None if it still is not one), the bytes the entry hash is
    of, and the error to report.
    """
    try:
        full = canonical_json(header)
    except FormatError:
        return None, data, error
    if full == data:
        return None, data, error
    try:
        return parse_header(full, seq=seq, checked_time=checked_time), full, error
    except VerificationError as exc:
        return None, full, exc


def _check_range(b: Bundle, r: BundleRange, checkpoint: Checkpoint, leaves: list[bytes], out: _Outcomes) -> None:
    """The entries are exactly [start, end), and they fold with the proof to the checkpoint's root."""
    expected = r.start
    for entry in b.entries:
        if expected == r.end:
            out.fail("proof", ProofError(f"entry {entry.seq}: beyond the range proof's entries [{r.start}, {r.end})",
                                         seq=entry.seq))
            return
        if entry.seq != expected:
            out.fail("proof", ProofError(f"entry {expected}: missing: the range proof is for entries [{r.start}, "
                                         f"{r.end}) and the bundle holds entry {entry.seq} in its place",
                                         seq=expected))
            return
        expected += 1
    if expected != r.end:
        out.fail("proof", ProofError(f"entry {expected}: missing: the range proof is for entries [{r.start}, "
                                     f"{r.end}) and the bundle ends before it", seq=expected))
        return
    try:
        verify_range(r.start, r.end, checkpoint.size, leaves, [bytes.fromhex(h) for h in r.left],
                     [bytes.fromhex(h) for h in r.right], checkpoint.root)
    except ProofError as exc:
        out.fail("proof", exc)
        return
    out.details["proof"] = f"entries [{r.start}, {r.end}) are in the tree of size {checkpoint.size}"


def _check_inclusions(b: Bundle, proofs: tuple[BundleInclusion, ...], checkpoint: Checkpoint, leaves: list[bytes],
                      out: _Outcomes) -> None:
    by_seq: dict[int, BundleInclusion] = {}
    for p in proofs:
        if p.seq in by_seq:
            out.fail("proof", ProofError(f"entry {p.seq}: two inclusion proofs", seq=p.seq))
        by_seq[p.seq] = p
    size, root = checkpoint.size, checkpoint.root
    for entry, leaf in zip(b.entries, leaves, strict=True):
        seq = entry.seq
        found = by_seq.pop(seq, None)
        if found is None:
            out.fail("proof", ProofError(f"entry {seq}: no inclusion proof", seq=seq))
            continue
        try:
            verify_inclusion(seq, size, leaf, [bytes.fromhex(h) for h in found.proof], root)
        except ProofError as exc:
            exc.fields["seq"] = seq
            exc.message = f"entry {seq}: {exc.message}"
            out.fail("proof", exc)
    for seq in sorted(by_seq):
        out.fail("proof", ProofError(f"entry {seq}: an inclusion proof for an entry not in the bundle", seq=seq))
    out.details["proof"] = f"{len(b.entries)} inclusion proofs lead to the root of the tree of size {size}"


def _check_anchors(b: Bundle, trust: Trust, checkpoint: Checkpoint | None,
                   out: _Outcomes) -> tuple[dict[str, Any], ...]:
    log = b.manifest.log
    results = []
    for i, a in enumerate(b.anchors):
        try:
            if a.log != log:
                raise VerificationError(f"anchors[{i}]: the anchor is of log {a.log!r}, the bundle of {log!r}")
            anchored, key_trusted = open_receipt_checkpoint(a.checkpoint, log, b.vkey, trust)
            result = check_anchor_receipt(a, anchored, key_trusted=key_trusted)
            if checkpoint is not None and anchored.size == checkpoint.size and anchored.root != checkpoint.root:
                raise ProofError(f"anchors[{i}]: the anchored checkpoint has the bundle's tree size and another root",
                                 expected=checkpoint.root, computed=anchored.root)
        except VerificationError as exc:
            if not exc.message.startswith(f"anchors[{i}]"):
                exc.message = f"anchors[{i}]: {exc.message}"
            out.fail("anchors", exc)
            continue
        results.append(result)
    out.details["anchors"] = (
        "no anchors" if not b.anchors else
        f"{len(results)} anchor receipt{'s' if len(results) != 1 else ''} verified offline (rounds "
        f"{', '.join(str(r['round']['id']) for r in results)}; whether they are on chain is not checked)")
    return tuple(results)
