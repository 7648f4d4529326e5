"""Document receipts (DESIGN §8): a file checked against the receipt of its `document` entry, offline.

A small log holding real document entries (``commit`` = SHA-256(salt ‖ bytes), ``meta`` =
{"size": n}) is built by hand as in `tests.verification.test_receipt`, its checkpoint signed with
an Ed25519 key, and the document receipts assembled as JSON. Every way of breaking the file or the
receipt must fail with the error class and the named check that say what broke.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import tracemalloc
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import verification
from tests.verification.reference import Tree
from tests.verification.test_entry import FIXED, ORIGIN, Spec, build_log, leaf
from tests.verification.test_receipt import KEY, OTHER_KEY, TRUST, Log, _set, make_receipt
from tests.verification.test_receipt import _delete as _pop
from verification.anchor import AnchorReceipt, RoundLeaf, build_round
from verification.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from verification.document_receipt import (
    CHECKS,
    DOCUMENT_RECEIPT_TYPE,
    DocumentReceipt,
    check_document_name,
    file_commitment,
    verify_document_receipt,
    verify_file,
)
from verification.documents import verify_document
from verification.errors import ChainError, FormatError, ProofError, SignatureError, VerificationError
from verification.receipt import verify_receipt
from verification.trust import Trust

Doc = dict[str, Any]
Mutation = Callable[[Doc], None]

FILE = bytes(hashlib.sha256(i.to_bytes(4, "big")).digest()[i % 32] for i in range(5000))
OTHER_FILE = b"another statement, for another customer\n" * 7
EMPTY = b""
BIG_SIZE = 8 * 1024 * 1024
BIG_BLOCK = hashlib.sha256(b"big").digest() * 2048  # 64 KiB


def big_chunks() -> Iterator[bytes]:
    for _ in range(BIG_SIZE // len(BIG_BLOCK)):
        yield BIG_BLOCK


def salt_of(seq: int) -> bytes:
    return hashlib.sha256(f"salt {seq}".encode()).digest()


def commit_of(seq: int, data: bytes) -> str:
    return hashlib.sha256(salt_of(seq) + data).hexdigest()


# the log: three entries of `FIXED`, then documents and the entries a careless server might write
DOC, OTHER_DOC, EMPTY_DOC, NOT_A_DOC, NO_SIZE, NO_COMMIT, BIG_DOC = 3, 4, 5, 6, 7, 8, 9
SIZE = 11  # not a power of two
ANCHORED_AT = 13


def _specs() -> list[Spec]:
    def document(seq: int, data: bytes, **meta: Any) -> Spec:
        return Spec(case="c-9", channel="api", kind="document", meta=meta, overrides={"commit": commit_of(seq, data)})

    big = hashlib.sha256(salt_of(BIG_DOC))
    for chunk in big_chunks():
        big.update(chunk)
    return [
        *FIXED[:3],
        document(DOC, FILE, size=len(FILE)),
        document(OTHER_DOC, OTHER_FILE, size=len(OTHER_FILE)),
        document(EMPTY_DOC, EMPTY, size=0),
        Spec(case="c-9", channel="chat", kind="interaction", meta={"size": len(FILE)},
             overrides={"commit": commit_of(NOT_A_DOC, FILE)}),
        document(NO_SIZE, FILE),
        Spec(kind="document", meta={"size": len(FILE)}),
        Spec(kind="document", meta={"size": BIG_SIZE}, overrides={"commit": big.hexdigest()}),
        Spec(case="c-1", channel="email"),
        Spec(case="c-1", channel="email"),
        Spec(case="c-2", channel="phone"),
    ]


@cache
def the_log() -> Log:
    headers = build_log(_specs())
    return Log(headers, Tree([leaf(data) for data in headers]))


def header(seq: int) -> Doc:
    result: Doc = json.loads(the_log().headers[seq])
    return result


def make_doc(seq: int = DOC, *, tree_size: int = SIZE, key: Ed25519PrivateKey = KEY, **document: Any) -> Doc:
    """The document receipt a server hands out for the document entry at `seq` (receipt at `tree_size`);
    `document` overrides members of its ``document``."""
    entry = header(seq)
    stated = {"id": entry["id"], "name": "statement.pdf", "media_type": "application/pdf",
              "size": entry["meta"].get("size", 0)} | document
    return {"type": DOCUMENT_RECEIPT_TYPE, "v": 1, "document": stated, "salt": salt_of(seq).hex(),
            "receipt": make_receipt(seq, log=the_log(), size=tree_size, key=key)}


def anchored_doc(seq: int = DOC) -> Doc:
    """A document receipt whose receipt carries the anchor of a later checkpoint of the log."""
    log = the_log()
    root = log.tree.root(ANCHORED_AT)
    tree = build_round([RoundLeaf(ORIGIN, ANCHORED_AT, root),
                        RoundLeaf("caseledger.local/zeta", 4, hashlib.sha256(b"zeta").digest())])
    index = tree.index_of(ORIGIN)
    anchor = AnchorReceipt(ORIGIN, sign_checkpoint(Checkpoint(ORIGIN, ANCHORED_AT, root), KEY), 3, tree.size,
                           tree.root.hex(), index, tuple(p.hex() for p in tree.proof(index)), 31337,
                           "0x5FbDB2315678afecb367f032d93F642f64180aa3", "0x" + "ab" * 32, 42, "0x" + "cd" * 32)
    doc = make_doc(seq)
    doc["receipt"]["anchor"] = {"receipt": anchor.to_json(),
                                "consistency": [p.hex() for p in log.tree.consistency(SIZE, ANCHORED_AT)]}
    return doc


def test_the_log_holds_what_the_design_says() -> None:
    """Guards the builder: document entries carry ``commit`` = SHA-256(salt ‖ bytes) and meta {"size": n}."""
    entry = header(DOC)
    assert entry["kind"] == "document" and entry["meta"] == {"size": len(FILE)}
    assert entry["commit"] == hashlib.sha256(salt_of(DOC) + FILE).hexdigest()
    assert header(EMPTY_DOC)["commit"] == hashlib.sha256(salt_of(EMPTY_DOC)).hexdigest()
    assert len(the_log().headers) >= ANCHORED_AT


# --- valid ---------------------------------------------------------------------------------------


def all_ok(anchor: str = "not anchored") -> list[Doc]:
    return [{"name": name, "ok": True, "detail": detail} for name, detail in [
        ("commitment", "SHA-256(salt || file) is the entry's commit"), ("size", f"{len(FILE)} bytes"),
        ("entry_hash", leaf(the_log().headers[DOC]).hex()), ("inclusion", f"entry {DOC} is in the tree of size {SIZE}"),
        ("checkpoint_signature", f"signed by a trusted key of {ORIGIN}"), ("anchor", anchor)]]


def test_a_document_receipt_verifies_without_its_file() -> None:
    doc = make_doc()
    receipt = verify_receipt(doc["receipt"], TRUST)
    result = verify_document_receipt(doc, TRUST)
    assert result == {**receipt, "type": DOCUMENT_RECEIPT_TYPE, "document": doc["document"], "file_checked": False}
    assert verify_document(doc, TRUST) == result
    assert verify_document(json.loads(json.dumps(doc)), TRUST) == result
    assert verify_document_receipt(DocumentReceipt.from_json(doc), TRUST) == result
    assert verification.verify_document_receipt is verify_document_receipt


def test_a_file_verifies_against_its_receipt() -> None:
    doc = make_doc()
    result = verify_file(doc, TRUST, [FILE])
    assert result == {**verify_document_receipt(doc, TRUST), "valid": True, "file_checked": True, "checks": all_ok()}
    assert [check["name"] for check in result["checks"]] == list(CHECKS)
    assert verify_file(doc, TRUST, [FILE], collect=True) == result
    assert verification.verify_file is verify_file


@pytest.mark.parametrize("chunks", [[], [b""], [b"", b""]], ids=["no chunk", "one empty chunk", "two empty chunks"])
def test_the_empty_file_verifies(chunks: list[bytes]) -> None:
    doc = make_doc(EMPTY_DOC)
    assert doc["document"]["size"] == 0
    result = verify_file(doc, TRUST, chunks)
    assert result["valid"] is True and result["checks"][1] == {"name": "size", "ok": True, "detail": "0 bytes"}
    with pytest.raises(ProofError):
        verify_file(doc, TRUST, [b"\x00"])


def test_receipt_under_its_own_key_says_so() -> None:
    result = verify_file(make_doc(), Trust(insecure_embedded_key=True), [FILE])
    assert result["valid"] is True and result["key_trusted"] is False
    assert result["checks"][4] == {"name": "checkpoint_signature", "ok": True,
                                   "detail": "signed by the receipt's own key, which is not trusted"}


def test_trusted_root() -> None:
    root = the_log().tree.root(SIZE)
    assert verify_file(make_doc(), TRUST, [FILE], root=root)["valid"] is True
    with pytest.raises(ProofError) as raised:
        verify_file(make_doc(), TRUST, [FILE], root=bytes(32))
    assert raised.value.fields["check"] == "checkpoint_signature"


def test_an_anchored_document_receipt_verifies_offline() -> None:
    doc = anchored_doc()
    result = verify_file(doc, TRUST, [FILE])
    assert result["valid"] is True and result["anchor"]["round"]["id"] == 3
    assert result["checks"][5] == {
        "name": "anchor", "ok": True,
        "detail": "anchored in round 3 on chain 31337 (checked offline: whether the round is on chain is not checked)"}
    assert verify_document(doc, TRUST)["anchor"] == result["anchor"]
    assert verify_document(doc, TRUST)["checks"] == ["offline"]
    doc["receipt"]["anchor"]["consistency"][0] = "00" * 32
    with pytest.raises(ProofError) as raised:
        verify_file(doc, TRUST, [FILE])
    assert raised.value.fields["check"] == "anchor"
    collected = verify_file(doc, TRUST, [FILE], collect=True)
    assert [c["name"] for c in collected["checks"] if not c["ok"]] == ["anchor"]
    with pytest.raises(ProofError):
        verify_document(doc, TRUST)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(FILE)), max_size=12), st.booleans())
def test_chunk_boundaries_do_not_matter(cuts: list[int], collect: bool) -> None:
    bounds = [0, *sorted(cuts), len(FILE)]
    chunks = [FILE[a:b] for a, b in itertools.pairwise(bounds)]
    assert b"".join(chunks) == FILE
    assert verify_file(make_doc(), TRUST, chunks, collect=collect) == verify_file(make_doc(), TRUST, [FILE])
    changed = [bytearray(c) for c in chunks]
    for c in changed:
        if c:
            c[0] ^= 1
            break
    result = verify_file(make_doc(), TRUST, changed, collect=True)
    assert [c["name"] for c in result["checks"] if not c["ok"]] == ["commitment"]


def test_a_large_file_is_streamed() -> None:
    """8 MiB in 64 KiB chunks, never more than a few chunks in memory."""
    doc = make_doc(BIG_DOC, name="scan.tiff", media_type="image/tiff")
    tracemalloc.start()
    try:
        result = verify_file(doc, TRUST, big_chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["valid"] is True and result["document"]["size"] == BIG_SIZE
    assert peak < 1024 * 1024, peak


def test_file_commitment_is_salted_sha256() -> None:
    salt = salt_of(0)
    assert file_commitment(salt, [FILE]).commit == hashlib.sha256(salt + FILE).digest()
    parts: list[bytes | bytearray | memoryview] = [memoryview(FILE[:10]), bytearray(FILE[10:4000]), FILE[4000:]]
    assert file_commitment(salt, parts) == file_commitment(salt, [FILE])
    assert file_commitment(salt, []).size == 0
    for bad in (salt[:31], salt.hex(), salt + b"\x00"):
        with pytest.raises(FormatError):
            file_commitment(bad, [FILE])  # type: ignore[arg-type]


def test_the_file_is_not_read_when_the_receipt_fails() -> None:
    def untouchable() -> Iterator[bytes]:
        raise AssertionError("the file was read")
        yield b""

    with pytest.raises(SignatureError):
        verify_file(make_doc(key=OTHER_KEY), TRUST, untouchable())
    with pytest.raises(VerificationError):
        verify_file(make_doc(NOT_A_DOC), TRUST, untouchable())


# --- the file changed ----------------------------------------------------------------------------


def _flip(position: int) -> bytes:
    changed = bytearray(FILE)
    changed[position] ^= 0x01
    return bytes(changed)


FILES: list[tuple[str, bytes, list[str]]] = [
    ("first byte changed", _flip(0), ["commitment"]),
    ("middle byte changed", _flip(len(FILE) // 2), ["commitment"]),
    ("last byte changed", _flip(len(FILE) - 1), ["commitment"]),
    ("truncated by one byte", FILE[:-1], ["commitment", "size"]),
    ("truncated to nothing", b"", ["commitment", "size"]),
    ("extended by one byte", FILE + b"\x00", ["commitment", "size"]),
    ("extended by a copy", FILE + FILE, ["commitment", "size"]),
    ("another document's file", OTHER_FILE, ["commitment", "size"]),
    ("the salt prepended", salt_of(DOC) + FILE, ["commitment", "size"]),
]


@pytest.mark.parametrize(("data", "failing"), [(data, failing) for _, data, failing in FILES],
                         ids=[desc for desc, _, _ in FILES])
def test_a_changed_file_is_rejected(data: bytes, failing: list[str]) -> None:
    with pytest.raises(ProofError) as raised:
        verify_file(make_doc(), TRUST, [data])
    assert raised.value.fields["check"] == "commitment"
    assert raised.value.expected == bytes.fromhex(header(DOC)["commit"])
    assert raised.value.computed == hashlib.sha256(salt_of(DOC) + data).digest()
    result = verify_file(make_doc(), TRUST, [data], collect=True)
    assert result["valid"] is False and result["ok"] is False
    assert [c["name"] for c in result["checks"] if not c["ok"]] == failing
    assert verify_document_receipt(make_doc(), TRUST)["ok"] is True  # the receipt alone is fine


def test_size_is_checked_apart_from_the_commitment() -> None:
    """Were the commitment to match (a second preimage), a wrong length would still be refused."""
    doc = make_doc()
    result = verify_file(doc, TRUST, [FILE[:-1]], collect=True)
    assert result["checks"][1] == {"name": "size", "ok": False,
                                   "detail": f"the file is {len(FILE) - 1} bytes, the document {len(FILE)}"}


# --- the receipt changed -------------------------------------------------------------------------


def _flip_hex(text: str, position: int = 0) -> str:
    return text[:position] + format(int(text[position], 16) ^ 1, "x") + text[position + 1:]


def _edit(path: str, edit: Callable[[Any], Any]) -> Mutation:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        target = doc
        for name in parents:
            target = target[name]
        target[last] = edit(target[last])
    return apply


def _rehash(doc: Doc) -> None:
    doc["receipt"]["entry_hash"] = hashlib.sha256(b"\x00" + verification.canonical_json(
        doc["receipt"]["header"])).hexdigest()


def _header_edit(name: str, value: Any, rehash: bool = False) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["receipt"]["header"][name] = value
        if rehash:
            _rehash(doc)
    return apply


def _receipt_of(seq: int) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["receipt"] = make_receipt(seq, log=the_log(), size=SIZE)
    return apply


def _note_root(doc: Doc) -> None:
    lines = doc["receipt"]["checkpoint"].split("\n")
    lines[2] = lines[2][:5] + ("A" if lines[2][5] != "A" else "B") + lines[2][6:]
    doc["receipt"]["checkpoint"] = "\n".join(lines)


def _resign(key: Ed25519PrivateKey, vkey_too: bool) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["receipt"]["checkpoint"] = sign_checkpoint(Checkpoint(ORIGIN, SIZE, the_log().tree.root(SIZE)), key)
        if vkey_too:
            doc["receipt"]["vkey"] = verifier_key(ORIGIN, key.public_key())
    return apply


def _proof(edit: Callable[[list[str]], object]) -> Mutation:
    def apply(doc: Doc) -> None:
        edit(doc["receipt"]["inclusion"]["proof"])
    return apply


def _whole(seq: int, **document: Any) -> Mutation:
    def apply(doc: Doc) -> None:
        doc.clear()
        doc.update(make_doc(seq, **document))
    return apply


# (description, mutation, error class, the check raised, the checks failing when collected, whether the
# receipt without the file still verifies)
MUTATIONS: list[tuple[str, Mutation, type[VerificationError], str, list[str], bool]] = [
    ("salt edited", _edit("salt", _flip_hex), ProofError, "commitment", ["commitment"], True),
    ("salt of another document", _set("salt", salt_of(OTHER_DOC).hex()), ProofError, "commitment", ["commitment"],
     True),
    ("receipt of another document", _receipt_of(OTHER_DOC), VerificationError, "commitment",
     ["commitment", "size"], False),
    ("another document's id", _set("document.id", header(OTHER_DOC)["id"]), VerificationError, "commitment",
     ["commitment"], False),
    ("another document's receipt whole", _whole(OTHER_DOC), ProofError, "commitment", ["commitment", "size"], True),
    ("receipt of a non-document entry", _receipt_of(NOT_A_DOC), VerificationError, "commitment", ["commitment"],
     False),
    ("a non-document entry's receipt whole", _whole(NOT_A_DOC), VerificationError, "commitment", ["commitment"],
     False),
    ("document entry without meta.size", _whole(NO_SIZE, size=len(FILE)), VerificationError, "size", ["size"],
     False),
    ("document entry without commit", _whole(NO_COMMIT), VerificationError, "commitment", ["commitment"], False),
    ("wrong size stated", _set("document.size", len(FILE) + 1), VerificationError, "size", ["size"], False),
    ("size stated zero", _set("document.size", 0), VerificationError, "size", ["size"], False),
    ("header commit edited", _header_edit("commit", commit_of(DOC, OTHER_FILE)), ProofError, "entry_hash",
     ["commitment", "entry_hash", "inclusion"], False),
    ("header commit edited, rehashed", _header_edit("commit", commit_of(DOC, OTHER_FILE), rehash=True), ProofError,
     "inclusion", ["commitment", "inclusion"], False),
    ("header meta.size edited, rehashed", _header_edit("meta", {"size": len(FILE) + 1}, rehash=True), ProofError,
     "inclusion", ["size", "inclusion"], False),
    ("header id edited, rehashed", _header_edit("id", header(OTHER_DOC)["id"], rehash=True), ProofError,
     "inclusion", ["commitment", "inclusion"], False),
    ("header kind edited, rehashed", _header_edit("kind", "interaction", rehash=True), ProofError, "inclusion",
     ["commitment", "inclusion"], False),
    ("header not a header", _header_edit("extra", 1), ChainError, "entry_hash", ["entry_hash", "inclusion"], False),
    ("entry_hash edited", _edit("receipt.entry_hash", _flip_hex), ProofError, "entry_hash", ["entry_hash"], False),
    ("proof element flipped", _proof(lambda p: p.__setitem__(0, _flip_hex(p[0], 63))), ProofError, "inclusion",
     ["inclusion"], False),
    ("proof element dropped", _proof(lambda p: p.pop()), ProofError, "inclusion", ["inclusion"], False),
    ("proof element added", _proof(lambda p: p.append("00" * 32)), ProofError, "inclusion", ["inclusion"], False),
    ("proof reversed", _proof(lambda p: p.reverse()), ProofError, "inclusion", ["inclusion"], False),
    ("tree size edited", _set("receipt.inclusion.tree_size", SIZE + 1), VerificationError, "inclusion",
     ["inclusion"], False),
    ("seq edited", _set("receipt.seq", DOC + 1), VerificationError, "entry_hash", ["entry_hash", "inclusion"], False),
    ("checkpoint root edited", _note_root, SignatureError, "checkpoint_signature",
     ["inclusion", "checkpoint_signature"], False),
    ("checkpoint signed by another key", _resign(OTHER_KEY, vkey_too=False), SignatureError, "checkpoint_signature",
     ["checkpoint_signature"], False),
    ("checkpoint and vkey of another key", _resign(OTHER_KEY, vkey_too=True), SignatureError,
     "checkpoint_signature", ["checkpoint_signature"], False),
    ("checkpoint of another size", _set("receipt.checkpoint", sign_checkpoint(
        Checkpoint(ORIGIN, SIZE + 1, the_log().tree.root(SIZE + 1)), KEY)), VerificationError, "inclusion",
     ["inclusion"], False),
]


@pytest.mark.parametrize(("mutate", "error", "check", "failing", "receipt_ok"),
                         [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_every_mutation_is_rejected_with_its_reason(mutate: Mutation, error: type[VerificationError], check: str,
                                                    failing: list[str], receipt_ok: bool) -> None:
    doc = make_doc()
    mutate(doc)
    with pytest.raises(error) as raised:
        verify_file(doc, TRUST, [FILE])
    assert raised.value.fields["check"] == check
    result = verify_file(doc, TRUST, [FILE], collect=True)
    assert result["valid"] is False and result["file_checked"] is True
    assert [c["name"] for c in result["checks"]] == list(CHECKS)
    assert [c["name"] for c in result["checks"] if not c["ok"]] == [name for name in CHECKS if name in failing]
    assert all(c["detail"] and "\n" not in c["detail"] for c in result["checks"])
    if receipt_ok:
        assert verify_document_receipt(doc, TRUST)["ok"] is True
    else:
        with pytest.raises(VerificationError):
            verify_document_receipt(doc, TRUST)
        with pytest.raises(VerificationError):
            verify_document(doc, TRUST)


def test_failures_are_reported_independently() -> None:
    doc = make_doc()
    _resign(OTHER_KEY, vkey_too=False)(doc)
    result = verify_file(doc, TRUST, [FILE[:-1]], collect=True)
    details = {c["name"]: (c["ok"], c["detail"]) for c in result["checks"]}
    assert details["checkpoint_signature"] == (False, "signed note has no signature by a known key")
    assert details["inclusion"] == (True, f"entry {DOC} is in the tree of size {SIZE}")  # against the stated root
    assert details["commitment"][0] is False and details["size"][0] is False
    assert details["entry_hash"][0] is True and details["anchor"] == (True, "not anchored")
    assert result["log"] == ORIGIN and result["seq"] == DOC and result["document"] == doc["document"]


def test_nothing_verifies_without_a_trusted_key() -> None:
    with pytest.raises(VerificationError, match="key not trusted") as raised:
        verify_file(make_doc(), Trust(), [FILE])
    assert raised.value.fields["check"] == "checkpoint_signature"
    result = verify_file(make_doc(), Trust(), [FILE], collect=True)
    assert [c["name"] for c in result["checks"] if not c["ok"]] == ["checkpoint_signature"]


def test_an_unparseable_checkpoint_fails_inclusion_too() -> None:
    doc = make_doc()
    doc["receipt"]["checkpoint"] = "not a note"
    result = verify_file(doc, TRUST, [FILE], collect=True)
    assert [c["name"] for c in result["checks"] if not c["ok"]] == ["inclusion", "checkpoint_signature"]
    anchored = anchored_doc()
    anchored["receipt"]["checkpoint"] = "not a note"
    result = verify_file(anchored, TRUST, [FILE], collect=True)
    assert [c["name"] for c in result["checks"] if not c["ok"]] == ["inclusion", "checkpoint_signature", "anchor"]


# --- the format ----------------------------------------------------------------------------------


def test_round_trip_is_the_wire_form() -> None:
    doc = make_doc()
    typed = DocumentReceipt.from_json(doc)
    assert typed.to_json() == doc
    assert list(typed.to_json()) == ["type", "v", "document", "salt", "receipt"]
    assert list(typed.to_json()["document"]) == ["id", "name", "media_type", "size"]
    assert DocumentReceipt.from_json(json.loads(json.dumps(doc))) == typed
    anchored = anchored_doc()
    assert DocumentReceipt.from_json(anchored).to_json() == anchored


def test_unknown_members_are_ignored() -> None:
    doc = make_doc() | {"later": [1, 2]}
    doc["document"]["title"] = "a later member"
    assert DocumentReceipt.from_json(doc).to_json() == make_doc()
    assert verify_file(doc, TRUST, [FILE])["valid"] is True


GOOD_NAMES = ["a", "a" * 255, "\xe9" * 127 + "a", "Kontoauszug M\xe4rz 2024 (final).pdf", ".hidden", "...",
              "\U0001f468\u200d\U0001f469\u200d\U0001f467.jpg", "C:statement.pdf", " spaced "]
BAD_NAMES = ["", "a" * 256, "\xe9" * 128, "\U0001f600" * 64, "../etc/passwd", "a/b", "/abs", "a\\b", "C:\\x.pdf",
             ".", "..", "a\x00b", "\x00", "a\nb", "a\rb", "a\tb", "\x1b[31mred", "a\x7f", "a\x85b", "a\x9f",
             "invoice\u202efdp.exe", "a\u2066b", "a\u2028b", "lone \ud800", 7, None, ["a"], b"a"]


@pytest.mark.parametrize("name", GOOD_NAMES, ids=ascii)
def test_good_names(name: str) -> None:
    assert check_document_name(name) == name
    doc = make_doc(name=name)
    assert DocumentReceipt.from_json(doc).name == name
    assert verify_file(doc, TRUST, [FILE])["document"]["name"] == name


@pytest.mark.parametrize("name", BAD_NAMES, ids=ascii)
def test_hostile_names_are_refused(name: Any) -> None:
    doc = make_doc(name=name)
    with pytest.raises(FormatError) as raised:
        DocumentReceipt.from_json(doc)
    assert raised.value.fields["member"] == "document.name"
    with pytest.raises(FormatError):
        verify_file(doc, TRUST, [FILE], collect=True)
    with pytest.raises(FormatError):
        verify_document(doc, TRUST)


FORMAT_ERRORS: list[tuple[str, Mutation, str | None]] = [
    *[(f"media type {value!r}", _set("document.media_type", value), "document.media_type") for value in [
        "", "application", "application/", "/pdf", "application/pdf; charset=utf-8", "text/plain ", " text/plain",
        "appli cation/pdf", "application/pdf/x", "-x/y", "x/-y", "t\xe9xt/plain", "a/" + "b" * 128, 7, None]],
    *[(f"size {value!r}", _set("document.size", value), "document.size") for value in [
        -1, True, False, 1.0, 2**53, "5000", None]],
    *[(f"salt {value!r}", _set("salt", value), "salt") for value in [
        "", "AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, "ab" * 31 + "a", 7, None, ["ab" * 32]]],
    *[(f"id {value!r}", _set("document.id", value), "document.id") for value in [
        "", "x", header(DOC)["id"].upper(), header(DOC)["id"].replace("-", ""), "{" + header(DOC)["id"] + "}",
        "urn:uuid:" + header(DOC)["id"], 7, None]],
    ("document not an object", _set("document", []), "document"),
    ("document missing", _pop("document"), "document"),
    ("salt missing", _pop("salt"), "salt"),
    ("receipt missing", _pop("receipt"), "receipt"),
    ("receipt not an object", _set("receipt", "r"), "receipt"),
    ("receipt of another type", _set("receipt.type", "caseledger.anchor-receipt"), "receipt"),
    ("receipt with a bad proof", _set("receipt.inclusion.proof", ["x"]), "receipt"),
    ("receipt with a bad anchor", _set("receipt.anchor", {"receipt": {}}), "receipt"),
    *[(f"document.{name} missing", _pop(f"document.{name}"), f"document.{name}")
      for name in ("id", "name", "media_type", "size")],
    ("type unknown", _set("type", "caseledger.document"), None),
    ("type missing", _pop("type"), None),
    ("version 2", _set("v", 2), None),
    ("version true", _set("v", True), None),
    ("version 1.0", _set("v", 1.0), None),
]


@pytest.mark.parametrize(("mutate", "member"), [m[1:] for m in FORMAT_ERRORS], ids=[m[0] for m in FORMAT_ERRORS])
def test_malformed_documents_are_refused(mutate: Mutation, member: str | None) -> None:
    doc = make_doc()
    mutate(doc)
    with pytest.raises(FormatError) as raised:
        DocumentReceipt.from_json(doc)
    if member is not None:
        assert str(raised.value.fields.get("member")).startswith(member)
    with pytest.raises(FormatError):
        verify_file(doc, TRUST, [FILE], collect=True)


@pytest.mark.parametrize("media_type", ["application/pdf", "Application/PDF", "image/svg+xml", "text/x-c++src",
                                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                                        "a/b", "x" * 127 + "/" + "y" * 127])
def test_good_media_types(media_type: str) -> None:
    assert DocumentReceipt.from_json(make_doc(media_type=media_type)).media_type == media_type


@pytest.mark.parametrize("size", [0, 1, 2**53 - 1])
def test_sizes_at_the_limits_parse(size: int) -> None:
    assert DocumentReceipt.from_json(make_doc(size=size)).size == size


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3), max_leaves=10)
PATHS = ["type", "v", "document", "salt", "receipt", "document.id", "document.name", "document.media_type",
         "document.size", "receipt.header", "receipt.inclusion", "receipt.checkpoint", "receipt.seq"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), JSON)
def test_parsing_raises_only_format_errors(path: str, value: Any) -> None:
    """Any member replaced by any JSON value: parsed, or refused with FormatError; never a raw exception."""
    doc = copy.deepcopy(make_doc())
    _set(path, value)(doc)
    with contextlib.suppress(FormatError):
        DocumentReceipt.from_json(doc)
    with contextlib.suppress(VerificationError):
        verify_file(doc, TRUST, [FILE], collect=True)
    with contextlib.suppress(VerificationError):
        verify_file(doc, TRUST, [FILE])


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=80), st.integers(0, 2**53 - 1))
def test_round_trip_of_any_valid_name(name: str, size: int) -> None:
    doc = make_doc(name=name, size=size)
    try:
        check_document_name(name)
    except FormatError:
        with pytest.raises(FormatError):
            DocumentReceipt.from_json(doc)
        return
    assert DocumentReceipt.from_json(doc).to_json() == doc


def test_constructor_checks_too() -> None:
    typed = DocumentReceipt.from_json(make_doc())
    with pytest.raises(FormatError):
        DocumentReceipt(typed.document_id, "../x", typed.media_type, typed.size, typed.salt, typed.receipt)
    with pytest.raises(FormatError):
        DocumentReceipt(typed.document_id, typed.name, typed.media_type, typed.size, typed.salt,
                        typed.receipt.to_json())  # type: ignore[arg-type]
