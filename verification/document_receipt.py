"""Document receipts (DESIGN §8): what a recipient keeps beside a file to prove it is what was entered.

`DocumentReceipt` is the public format ``caseledger.document-receipt`` v 1: `to_json` is its only
serialiser, `from_json` its only parser. It holds the document's entry id, stated name, media type
and size, the salt of its commitment and the receipt (DESIGN §7) of its ``document`` entry.

What is proven: the receipt verifies; its header is the ``document`` entry with this id, whose
``meta.size`` is the stated size and whose ``commit`` is set; and, given the file,
SHA-256(salt ‖ file) is that ``commit`` and the file has that many bytes. The name and media type
are personal data kept only in the encrypted envelope (DESIGN §8): nothing in the log binds them,
so they are parsed strictly (a hostile name is refused) and echoed, never proven.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from verification.checkpoint import Checkpoint, parse_checkpoint
from verification.entry import MAX_JSON_DEPTH, canonical_json, json_depth, parse_header
from verification.errors import FormatError, ProofError, VerificationError
from verification.fields import hash_bytes, mapping, type_and_version
from verification.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from verification.receipt import Receipt, open_receipt_checkpoint, verify_receipt, verify_receipt_anchor
from verification.trust import Trust

__all__ = [
    "CHECKS",
    "DOCUMENT_RECEIPT_TYPE",
    "DOCUMENT_RECEIPT_VERSION",
    "MAX_NAME_BYTES",
    "Chunk",
    "DocumentReceipt",
    "FileCommitment",
    "check_document_name",
    "file_commitment",
    "verify_document_receipt",
    "verify_file",
]

DOCUMENT_RECEIPT_TYPE = "caseledger.document-receipt"
DOCUMENT_RECEIPT_VERSION = 1
#: a file name's limit in UTF-8 bytes (the usual file-system limit, NAME_MAX)
MAX_NAME_BYTES = 255
#: the checks of `verify_file`, in the order its ``checks`` list reports them
CHECKS = ("commitment", "size", "entry_hash", "inclusion", "checkpoint_signature", "anchor")
#: every integer of the format stays exact in any JSON parser (I-JSON, RFC 7493 §2.2)
_MAX_JSON_INT = 2**53 - 1

#: a piece of a file as a reader hands it out
Chunk = bytes | bytearray | memoryview

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
#: RFC 6838 §4.2 restricted-name, for both type and subtype; no parameters. Letters of either case
#: (media types compare case-insensitively); the value is kept as given.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(_RESTRICTED_NAME + "/" + _RESTRICTED_NAME + r"\Z")
#: characters that make a displayed name lie about itself (CVE-2021-42574): bidi embeddings,
#: overrides and isolates, and the line and paragraph separators
_SPOOFING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


# --- the format ----------------------------------------------------------------------------------


def check_document_name(name: Any, member: str = "document.name") -> str:
    """`name` if it can be offered as a file name as is; `FormatError` naming `member` otherwise.

    1 to `MAX_NAME_BYTES` bytes of UTF-8; no control character (Unicode Cc, which includes NUL
    and DEL), no bidi override or line separator; no path separator (``/``, ``\\``), and not ``.``
    or ``..``. A server sanitises uploaders' names to this; a receipt carrying any other is refused.
    """
    if not isinstance(name, str) or not name:
        raise FormatError(f"{member!r} must be a non-empty string", member=member)
    try:
        size = len(name.encode("utf-8"))
    except UnicodeError:
        raise FormatError(f"{member!r} is not valid UTF-8", member=member) from None
    if size > MAX_NAME_BYTES:
        raise FormatError(f"{member!r} is {size} bytes of UTF-8, at most {MAX_NAME_BYTES} allowed", member=member)
    if any(unicodedata.category(c) == "Cc" or c in _SPOOFING for c in name):
        raise FormatError(f"{member!r} contains a control character", member=member)
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise FormatError(f"{member!r} must be a file name, not a path", member=member)
    return name


def _get(obj: Mapping[str, Any], name: str, path: str) -> Any:
    if name not in obj:
        raise FormatError(f"{path!r} is missing", member=path)
    return obj[name]


@dataclass(frozen=True)
class DocumentReceipt:
    """The file of `size` bytes entered as entry `document_id`, committed to with `salt`, and its `receipt`.

    Construction checks every field (`FormatError` naming the JSON member), so a value of this type
    always serialises to a well-formed document: `document_id` a UUID in its canonical lowercase
    form (as headers hold it), `name` as `check_document_name`, `media_type` an RFC 6838
    ``type/subtype`` without parameters, `size` an integer in [0, 2^53), `salt` 64 lowercase hex
    digits (32 bytes), `receipt` a `Receipt`.
    """

    document_id: str
    name: str
    media_type: str
    size: int
    salt: str
    receipt: Receipt

    def __post_init__(self) -> None:
        if not isinstance(self.document_id, str) or not _UUID.match(self.document_id):
            raise FormatError("'document.id' must be a UUID in lowercase hex", member="document.id")
        check_document_name(self.name)
        if not isinstance(self.media_type, str) or not _MEDIA_TYPE.match(self.media_type):
            raise FormatError("'document.media_type' must be a media type, type/subtype (RFC 6838)",
                              member="document.media_type")
        if type(self.size) is not int or not 0 <= self.size <= _MAX_JSON_INT:
            raise FormatError(f"'document.size' must be an integer in [0, {_MAX_JSON_INT}]", member="document.size")
        if not isinstance(self.salt, str) or not _HEX64.match(self.salt):
            raise FormatError("'salt' must be 64 lowercase hex digits (32 bytes)", member="salt")
        if not isinstance(self.receipt, Receipt):
            raise FormatError("'receipt' must be a receipt", member="receipt")

    def document(self) -> dict[str, Any]:
        """The ``document`` member: id, name, media type and size."""
        return {"id": self.document_id, "name": self.name, "media_type": self.media_type, "size": self.size}

    def to_json(self) -> dict[str, Any]:
        """The document of DESIGN §8; `from_json` reads it back to an equal value."""
        return {"type": DOCUMENT_RECEIPT_TYPE, "v": DOCUMENT_RECEIPT_VERSION, "document": self.document(),
                "salt": self.salt, "receipt": self.receipt.to_json()}

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        """Parse the document; `FormatError` naming the member for anything malformed.

        An unknown type or version is refused; unknown members are ignored, as in a receipt.
        """
        doc = mapping(obj, "a document receipt")
        type_and_version(doc, DOCUMENT_RECEIPT_TYPE, DOCUMENT_RECEIPT_VERSION)
        document = _get(doc, "document", "document")
        if not isinstance(document, Mapping):
            raise FormatError("'document' must be a JSON object", member="document")
        try:
            receipt = Receipt.from_json(_get(doc, "receipt", "receipt"))
        except FormatError as exc:
            fields = dict(exc.fields)
            fields["member"] = f"receipt.{fields['member']}" if "member" in fields else "receipt"
            raise FormatError(f"'receipt': {exc.message}", **fields) from None
        # the constructor checks every value and names the member it refuses
        return cls(document_id=_get(document, "id", "document.id"), name=_get(document, "name", "document.name"),
                   media_type=_get(document, "media_type", "document.media_type"),
                   size=_get(document, "size", "document.size"), salt=_get(doc, "salt", "salt"), receipt=receipt)


def _typed(doc: DocumentReceipt | Mapping[str, Any]) -> DocumentReceipt:
    return doc if isinstance(doc, DocumentReceipt) else DocumentReceipt.from_json(doc)


# --- compute -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCommitment:
    """What a file is, as its document receipt states it: SHA-256(salt ‖ file) and its length."""

    commit: bytes
    size: int


def file_commitment(salt: bytes, chunks: Iterable[Chunk]) -> FileCommitment:
    """SHA-256(`salt` ‖ file) and the file's length, reading `chunks` once (never the whole file at once).

    `salt` must be 32 bytes (`FormatError`); a chunk may be any bytes-like object, empty too.
    """
    if not isinstance(salt, bytes) or len(salt) != HASH_SIZE:
        raise FormatError(f"a commitment's salt is {HASH_SIZE} bytes")
    digest = hashlib.sha256(salt)
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += memoryview(chunk).nbytes
    return FileCommitment(digest.digest(), size)


def _checkpoint_as_stated(note: str) -> Checkpoint:
    """The checkpoint body of a signed note, its signatures *not* checked (that is another check).

    Splits as `verify_note` does: the text is everything up to the last blank line.
    """
    if not isinstance(note, str) or "\n\n" not in note:
        raise FormatError("the checkpoint is not a signed note")
    return parse_checkpoint(note[: note.rfind("\n\n") + 1])


# --- compare -------------------------------------------------------------------------------------


def _header_value(d: DocumentReceipt, name: str) -> Any:
    header = d.receipt.header
    return header.get(name) if isinstance(header, Mapping) else None


def _document_commit(d: DocumentReceipt) -> bytes:
    """The header is the ``document`` entry of this id with a commitment: that commitment."""
    kind = _header_value(d, "kind")
    if kind != "document":
        raise VerificationError(f"the receipt is of a {kind!r} entry, not of a document", kind=kind)
    entry_id = _header_value(d, "id")
    if entry_id != d.document_id:
        raise VerificationError(f"the receipt is of entry {entry_id!r}, not of document {d.document_id}",
                                entry_id=entry_id, document_id=d.document_id)
    commit = _header_value(d, "commit")
    if commit is None:
        raise VerificationError("the document entry has no commitment")
    return hash_bytes(commit, "the header's commit")


def _entry_size(d: DocumentReceipt) -> int:
    """The header's ``meta.size`` (DESIGN §8: all that meta holds), which must be the stated size."""
    meta = _header_value(d, "meta")
    size = meta.get("size") if isinstance(meta, Mapping) else None
    if type(size) is not int:
        raise VerificationError("the document entry's meta holds no size")
    if size != d.size:
        raise VerificationError(f"the document entry is of {size} bytes, the receipt says {d.size}",
                                expected=size, stated=d.size)
    return size


def _check_commitment(commit: bytes, file: FileCommitment) -> str:
    if file.commit != commit:
        raise ProofError("SHA-256(salt || file) is not the document entry's commitment",
                         expected=commit, computed=file.commit)
    return "SHA-256(salt || file) is the entry's commit"


def _check_size(size: int, file: FileCommitment) -> str:
    if file.size != size:
        raise VerificationError(f"the file is {file.size} bytes, the document {size}", expected=size,
                                computed=file.size)
    return f"{file.size} bytes"


# --- verify --------------------------------------------------------------------------------------


def verify_document_receipt(doc: DocumentReceipt | Mapping[str, Any], trust: Trust, *,
                            root: bytes | None = None) -> dict[str, Any]:
    """Check a document receipt without its file; raise a `VerificationError` subclass on the first failure.

    The embedded receipt must verify (`verify_receipt` with `trust` and `root`, its anchor too when
    it carries one), and its header must be the ``document`` entry with this id, a ``commit``, and
    ``meta.size`` equal to the stated size. Returns the receipt's result with the document receipt's
    ``type``, its ``document`` member (name and media type as stated: nothing binds them) and
    ``file_checked: false``.
    """
    d = _typed(doc)
    result = verify_receipt(d.receipt, trust, root=root)
    _document_commit(d)
    _entry_size(d)
    return {**result, "type": DOCUMENT_RECEIPT_TYPE, "document": d.document(), "file_checked": False}


class _Checks:
    """The outcome of each named check: the first failure raised, or (collecting) every one recorded."""

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.outcomes: dict[str, tuple[bool, str]] = {}

    def run(self, name: str, check: Callable[[], str]) -> bool:
        try:
            detail = check()
        except VerificationError as exc:
            exc.fields.setdefault("check", name)
            if not self.collect:
                raise
            self.outcomes[name] = (False, " ".join(exc.message.split()))
            return False
        self.outcomes[name] = (True, detail)
        return True

    def skip(self, name: str, reason: str) -> None:
        self.outcomes[name] = (False, f"not checked: {reason}")

    @property
    def valid(self) -> bool:
        return all(ok for ok, _ in self.outcomes.values())

    def listed(self) -> list[dict[str, Any]]:
        return [{"name": name, "ok": self.outcomes[name][0], "detail": self.outcomes[name][1]} for name in CHECKS]


def verify_file(doc: DocumentReceipt | Mapping[str, Any], trust: Trust, chunks: Iterable[Chunk], *,
                root: bytes | None = None, collect: bool = False) -> dict[str, Any]:
    """Check a file against its document receipt, reading `chunks` once; the receipt as `verify_document_receipt`.

    The checks are named as `CHECKS`. ``entry_hash``: the header is a well-formed entry of the
    receipt's log and position, and hashes to ``entry_hash``. ``checkpoint_signature``: the
    checkpoint is signed by a key `trust` holds for the log (or the receipt's own, with
    ``insecure_embedded_key``: then ``key_trusted`` is false) and, if given, has `root`.
    ``inclusion``: the proof leads from the header's hash to the checkpoint's root at its size.
    ``anchor``: the anchor, if any, checked offline ("not anchored" without one). ``commitment``:
    the header is the ``document`` entry of this id and SHA-256(salt ‖ file) is its ``commit``.
    ``size``: the file's length and the header's ``meta.size`` are the stated size.

    They run in that order (the receipt, then the file, which is read only when it must be), and
    by default the first failure is raised, its check's name in ``fields["check"]``: a
    `ProofError` (expected and computed commitment) for the commitment, a `VerificationError` for
    the size, the receipt's own errors for the rest. With `collect`, every check that can run
    does (inclusion against the checkpoint as stated even when its signature fails, so the
    reasons are independent), and the result has ``valid: false`` and each check's reason.

    A document that does not parse raises `FormatError` either way: there is nothing to check.
    Returns `verify_document_receipt`'s result with ``valid``, ``file_checked: true`` and
    ``checks``, a list of ``{"name", "ok", "detail"}`` in the order of `CHECKS`.
    """
    d = _typed(doc)
    r = d.receipt
    checks = _Checks(collect)
    state: dict[str, Any] = {}

    def entry_hash() -> str:
        if not isinstance(r.header, dict) or json_depth(r.header, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise FormatError(f"'header' must be a JSON object nested at most {MAX_JSON_DEPTH} levels")
        data = canonical_json(r.header)
        state["digest"] = digest = leaf_hash(data)
        header = parse_header(data, seq=r.seq)
        if header["log"] != r.log or header["seq"] != r.seq:
            raise VerificationError("the header belongs to another log or position than the receipt says")
        claimed = hash_bytes(r.entry_hash, "entry_hash")
        if digest != claimed:
            raise ProofError("entry_hash is not the hash of the header", expected=claimed, computed=digest)
        return digest.hex()

    def checkpoint_signature() -> str:
        checkpoint, key_trusted = open_receipt_checkpoint(r.checkpoint, r.log, r.vkey, trust)
        state["checkpoint"] = checkpoint
        if root is not None and (not isinstance(root, bytes) or len(root) != HASH_SIZE or root != checkpoint.root):
            raise ProofError("the checkpoint's root is not the trusted root", expected=root, computed=checkpoint.root)
        return (f"signed by a trusted key of {r.log}" if key_trusted
                else "signed by the receipt's own key, which is not trusted")

    def inclusion() -> str:
        checkpoint = state.get("checkpoint") or _checkpoint_as_stated(r.checkpoint)
        if r.tree_size != checkpoint.size:
            raise VerificationError("the inclusion proof is not for the checkpoint's tree size")
        proof = [hash_bytes(p, f"proof[{i}]") for i, p in enumerate(r.proof)]
        verify_inclusion(r.seq, checkpoint.size, state["digest"], proof, checkpoint.root)
        return f"entry {r.seq} is in the tree of size {checkpoint.size}"

    def anchor() -> str:
        if r.anchor is None:
            return "not anchored"
        checkpoint = state.get("checkpoint") or _checkpoint_as_stated(r.checkpoint)
        result = verify_receipt_anchor(r, r.anchor, checkpoint, trust)
        return (f"anchored in round {result['round']['id']} on chain {result['chain']['chain_id']} "
                "(checked offline: whether the round is on chain is not checked)")

    def file() -> FileCommitment:
        if "file" not in state:
            state["file"] = file_commitment(bytes.fromhex(d.salt), chunks)
        result: FileCommitment = state["file"]
        return result

    checks.run("entry_hash", entry_hash)
    checks.run("checkpoint_signature", checkpoint_signature)
    if "digest" in state:
        checks.run("inclusion", inclusion)
    else:
        checks.skip("inclusion", "the header has no canonical form")
    checks.run("anchor", anchor)
    # the header first: the file is read only once there is something to compare it with
    checks.run("commitment", lambda: _check_commitment(_document_commit(d), file()))
    checks.run("size", lambda: _check_size(_entry_size(d), file()))
    if not checks.valid:  # only when collecting: else the first failure was raised
        return {"ok": False, "valid": False, "type": DOCUMENT_RECEIPT_TYPE, "log": r.log, "seq": r.seq,
                "document": d.document(), "file_checked": True, "checks": checks.listed()}
    # every check passed: the verdict and result are those of the receipt without the file
    result = verify_document_receipt(d, trust, root=root)
    return {**result, "valid": True, "file_checked": True, "checks": checks.listed()}
