"""Writing an export's files in one streamed pass over its entries (DESIGN §9).

The bundle is written member by member with the format's own serialisers (`BundleManifest`,
`BundleEntry`, `BundleRange`/`BundleInclusion`, `AnchorReceipt` `to_json`), in the order
`Bundle.to_json` gives, so `Bundle.from_json` reads it back; it is never held whole in memory.
While writing, each entry is checked as a verifier would check it — its hash, the proof to the
pinned checkpoint, its content against its commitment, the case chain — with the functions of
`verification`, and the outcome is the export's verification summary. Beside the bundle go the rows
the PDF shows and, for eDiscovery tools, JSONL and CSV of the entries.

Redactions (RFC 6901 JSON pointers) are applied before anything is written: an entry whose JSON
content holds a redacted member carries no content in the bundle (``"content": null, "redacted":
…``, since part of a value cannot be checked against its commitment), and the PDF shows the content
with each such member replaced by ``[redacted]``, marked as not verifiable.
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ledger.reads import ReadEntry
from verification.anchor import AnchorReceipt
from verification.bundle import BUNDLE_TYPE, BUNDLE_VERSION, BundleEntry, BundleInclusion, BundleManifest, BundleRange
from verification.compact import verify_range
from verification.entry import canonical_json
from verification.errors import FormatError, VerificationError
from verification.merkle import leaf_hash, verify_inclusion

__all__ = ["ExportCounts", "ExportWriter", "classify_content", "redact"]

_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: the PDF shows at most this much of an entry's content
_ROW_CONTENT = 2000


def classify_content(raw: bytes) -> Any:
    """Stored content as the bundle carries it: the JSON value when the bytes are its RFC 8785 form
    (as JSON content is stored, by every face), else the bytes themselves."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    try:
        return value if canonical_json(value) == raw else raw
    except FormatError:
        return raw


def _pointer_parts(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


def redact(value: Any, pointers: Iterable[str]) -> tuple[Any, list[str]]:
    """`value` with each member a pointer names replaced by "[redacted]"; and the pointers that hit."""
    hit: list[str] = []
    out = value
    for pointer in pointers:
        parts = _pointer_parts(pointer)
        if not parts:
            return "[redacted]", [pointer]
        node = out
        for part in parts[:-1]:
            node = _child(node, part)
            if node is None:
                break
        last = parts[-1]
        found = isinstance(node, dict) and last in node
        if not found and not (isinstance(node, list) and last.isdigit() and int(last) < len(node)):
            continue
        if out is value:
            out = copy.deepcopy(value)
            node = out
            for part in parts[:-1]:
                node = _child(node, part)
        if isinstance(node, dict):
            node[last] = "[redacted]"
        elif isinstance(node, list):
            node[int(last)] = "[redacted]"
        hit.append(pointer)
    return out, hit


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return None


@dataclass
class ExportCounts:
    entries: int = 0
    with_content: int = 0
    verified_content: int = 0
    no_commitment: int = 0
    redacted: int = 0
    erased: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(what)


class ExportWriter:
    """One export's files: `begin`, `add` each entry in seq order, `finish` with the proof."""

    def __init__(self, bundle: IO[str], rows: IO[str], manifest: BundleManifest, vkey: str, checkpoint: str, *,
                 size: int, root: bytes, jsonl: IO[str] | None = None, csv_out: IO[str] | None = None) -> None:
        self._bundle, self._rows, self._jsonl = bundle, rows, jsonl
        self._csv = csv.writer(csv_out) if csv_out is not None else None
        self.manifest = manifest
        self._size, self._root = size, root
        self.counts = ExportCounts()
        self._seqs: list[int] = []
        self._leaves: list[bytes] = []
        self._case_heads: dict[str, str] = {}
        self._sha = hashlib.sha256()
        self._bundle_size = 0
        self._write(f'{{"type":{_DUMP(BUNDLE_TYPE)},"v":{BUNDLE_VERSION},"manifest":{_DUMP(manifest.to_json())},'
                    f'"vkey":{_DUMP(vkey)},"checkpoint":{_DUMP(checkpoint)},"entries":[')
        if self._csv is not None:
            self._csv.writerow(["seq", "time", "kind", "channel", "actor", "case", "subject", "entry_hash",
                                "content"])

    def _write(self, text: str) -> None:
        data = text.encode()
        self._sha.update(data)
        self._bundle_size += len(data)
        self._bundle.write(text)

    def add(self, entry: ReadEntry) -> None:
        header = entry.header
        if entry.seq >= self._size:
            raise ValueError("an exported entry lies beyond the pinned checkpoint")
        counts = self.counts
        # the stored bytes are the header's RFC 8785 form, as hashed when it was appended
        leaf = leaf_hash(entry.header_bytes if entry.header_bytes is not None else canonical_json(header))
        if leaf.hex() != entry.entry_hash:
            counts.fail(f"entry {entry.seq}: its hash is not the hash of its header")
        case = header.get("case")
        if "case" in self.manifest.scope and case == self.manifest.scope["case"]:
            if header.get("case_prev") != self._case_heads.get(case):
                counts.fail(f"entry {entry.seq}: the case chain is broken before it")
            self._case_heads[case] = entry.entry_hash
        content: Any = None
        salt = redacted = shown = None
        no_commitment = False
        if self.manifest.include_content:
            if entry.erased:
                redacted = "erased: its keys were destroyed"
                counts.erased += 1
            elif entry.content is not None and entry.salt is not None:
                counts.with_content += 1
                content = classify_content(entry.content)
                committed = entry.content
                commit = header.get("commit")
                if commit is None:
                    no_commitment = True
                    counts.no_commitment += 1
                elif hashlib.sha256(entry.salt + committed).hexdigest() == commit:
                    counts.verified_content += 1
                else:
                    counts.fail(f"entry {entry.seq}: its content does not match its commitment")
                salt = entry.salt.hex()
                shown = _shown(content)
                if self.manifest.redactions:  # JSON stored in another form is redacted all the same
                    masked, hit = redact(_as_json(content), self.manifest.redactions)
                    if hit:
                        redacted = "redacted: " + ", ".join(hit)
                        shown = _shown(masked)
                        content = salt = None
                        counts.redacted += 1
        item = BundleEntry(entry.seq, entry.entry_hash, header, content, salt, redacted)
        self._write(("," if counts.entries else "") + _DUMP(item.to_json()))
        counts.entries += 1
        self._seqs.append(entry.seq)
        self._leaves.append(leaf)
        self._rows.write(_DUMP([header["time"], entry.seq, header["kind"], header.get("channel"),
                                header.get("actor"), case, entry.entry_hash, shown, redacted, no_commitment]) + "\n")
        if self._jsonl is not None:
            line = {"seq": entry.seq, "entry_hash": entry.entry_hash, "header": header}
            if content is not None or redacted is not None:
                line |= {"content": item.to_json().get("content"), "redacted": redacted}
            self._jsonl.write(_DUMP(line) + "\n")
        if self._csv is not None:
            self._csv.writerow([entry.seq, header["time"], header["kind"], header.get("channel") or "",
                                header.get("actor") or "", case or "", header.get("subject") or "", entry.entry_hash,
                                "" if shown is None else shown])

    def finish_range(self, start: int, end: int, left: list[bytes], right: list[bytes],
                     anchors: Iterable[AnchorReceipt]) -> None:
        if self._seqs != list(range(start, end)):
            self.counts.fail("the entries are not exactly the range the proof covers")
        else:
            try:
                verify_range(start, end, self._size, self._leaves, left, right, self._root)
            except VerificationError as exc:
                self.counts.fail(f"range proof: {exc}")
        self._finish(BundleRange(start, end, tuple(h.hex() for h in left), tuple(h.hex() for h in right)).to_json(),
                     anchors)

    def finish_inclusions(self, proofs: Iterator[tuple[int, list[bytes]]], anchors: Iterable[AnchorReceipt]) -> None:
        """`proofs` yields (seq, proof) for each entry added, in order."""
        self._write('],"proof":{"inclusion":[')
        for i, (seq, proof) in enumerate(proofs):
            try:
                verify_inclusion(seq, self._size, self._leaves[i], proof, self._root)
            except VerificationError as exc:
                self.counts.fail(f"entry {seq}: inclusion proof: {exc}")
            self._write(("," if i else "") + _DUMP(BundleInclusion(seq, tuple(h.hex() for h in proof)).to_json()))
        self._write("]}")
        self._anchors(anchors)

    def _finish(self, proof: dict[str, Any], anchors: Iterable[AnchorReceipt]) -> None:
        self._write(f'],"proof":{_DUMP(proof)}')
        self._anchors(anchors)

    def _anchors(self, anchors: Iterable[AnchorReceipt]) -> None:
        self._write(',"anchors":[' + ",".join(_DUMP(a.to_json()) for a in anchors) + "]}")

    @property
    def seqs(self) -> list[int]:
        return self._seqs

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @property
    def size(self) -> int:
        return self._bundle_size


def _as_json(content: Any) -> Any:
    if not isinstance(content, bytes):
        return content
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _shown(content: Any) -> str:
    """Content as the PDF prints it (escaped there): text, JSON, or a note for binary content."""
    if isinstance(content, bytes):
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = f"[{len(content)} bytes, base64] " + base64.b64encode(content[:300]).decode()
    elif isinstance(content, str):
        text = content
    else:
        text = json.dumps(content, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _ROW_CONTENT else text[:_ROW_CONTENT] + " […]"
