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

Where it lives: `Bundle` here, its parts in `verification.bundle_parts`, the member readers in
`verification.bundle_fields`; `verify_bundle` in `verification.bundle_verify`, what it finds
(`BundleResult`) in `verification.bundle_result`. Every name of the format is importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from verification.anchor import AnchorReceipt
from verification.bundle_fields import (
    BUNDLE_TYPE,
    BUNDLE_VERSION,
    MAX_PROOF_HASHES,
    SCOPE_MEMBERS,
    _hashes,
    _members,
    _nested,
    _object,
    _text,
)
from verification.bundle_parts import BundleEntry, BundleInclusion, BundleManifest, BundleProof, BundleRange
from verification.checkpoint import parse_verifier_key
from verification.errors import FormatError
from verification.fields import mapping, type_and_version

__all__ = [
    "BUNDLE_TYPE",
    "BUNDLE_VERSION",
    "MAX_PROOF_HASHES",
    "SCOPE_MEMBERS",
    "Bundle",
    "BundleEntry",
    "BundleInclusion",
    "BundleManifest",
    "BundleProof",
    "BundleRange",
]

_BUNDLE_MEMBERS = frozenset({"type", "v", "manifest", "vkey", "checkpoint", "entries", "proof", "anchors"})
_RANGE_MEMBERS = frozenset({"start", "end", "left", "right"})
_INCLUSION_MEMBERS = frozenset({"seq", "proof"})


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
