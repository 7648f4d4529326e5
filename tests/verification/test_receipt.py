"""Receipts and proof documents (DESIGN §7), checked offline and built without a database.

A small log is built by hand, its proofs made by the naive RFC 9162 tree in
`tests.verification.reference`, its checkpoint signed with a fresh Ed25519 key, and the documents
assembled through the public types. Every way of breaking one must fail with the error class that
says what broke, and nothing verifies without a trusted key or root.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.verification.reference import Tree
from tests.verification.test_entry import FIXED, ORIGIN, OTHER_ORIGIN, Spec, build_log, leaf, mth
from verification.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from verification.documents import verify_document
from verification.errors import ChainError, FormatError, ProofError, SignatureError, VerificationError
from verification.proofs import ConsistencyProof, InclusionProof, RangeProof
from verification.receipt import Receipt, verify_receipt
from verification.trust import Trust

Doc = dict[str, Any]
SIZE = 13  # not a power of two: proofs have right-border elements
KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class Log:
    headers: list[bytes]
    tree: Tree

    @property
    def hashes(self) -> list[bytes]:
        return [leaf(data) for data in self.headers]


def make_log(size: int, origin: str = ORIGIN) -> Log:
    headers = build_log([FIXED[i] if i < len(FIXED) else Spec(case=f"c-{i % 4}", channel="chat")
                         for i in range(size)], origin)
    return Log(headers, Tree([leaf(data) for data in headers]))


@cache
def the_log() -> Log:
    return make_log(SIZE)


def make_receipt(seq: int, log: Log | None = None, size: int = SIZE, key: Ed25519PrivateKey = KEY,
                 origin: str = ORIGIN) -> Doc:
    """What `Ledger.receipt` returns (ledger/service.py), built from the pieces."""
    log = log or the_log()
    root = log.tree.root(size)
    assert root == mth(log.hashes[:size])
    note = sign_checkpoint(Checkpoint(origin, size, root), key)
    return {
        "v": 1, "type": "caseledger.receipt", "log": origin, "seq": seq,
        "entry_hash": leaf(log.headers[seq]).hex(), "header": json.loads(log.headers[seq]),
        "inclusion": {"tree_size": size, "proof": [p.hex() for p in log.tree.inclusion(seq, size)]},
        "checkpoint": note, "vkey": verifier_key(origin, key.public_key()),
    }


VKEY = verifier_key(ORIGIN, KEY.public_key())
TRUST = Trust.of(VKEY)
#: the receipt's own key, as `--insecure-embedded-key` asks
INSECURE = Trust(insecure_embedded_key=True)
NOTHING = Trust()


# --- valid receipts ------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", range(SIZE))
def test_every_receipt_verifies(seq: int) -> None:
    receipt = make_receipt(seq)
    result = verify_receipt(receipt, TRUST)
    assert result == {
        "ok": True, "type": "caseledger.receipt", "log": ORIGIN, "seq": seq,
        "entry_hash": leaf(the_log().headers[seq]).hex(), "tree_size": SIZE,
        "root": mth(the_log().hashes).hex(), "key_trusted": True,
    }
    assert verify_receipt(Receipt.from_json(receipt), TRUST) == result
    assert verify_receipt(receipt, INSECURE) == {**result, "key_trusted": False}
    assert verify_document(receipt, TRUST) == result
    # what a client gets after the document went through JSON on the wire
    assert verify_document(json.loads(json.dumps(receipt)), TRUST)["key_trusted"] is True


def test_receipt_json_round_trip_is_the_wire_form() -> None:
    receipt = make_receipt(3)
    typed = Receipt.from_json(receipt)
    assert typed.to_json() == receipt
    assert list(typed.to_json()) == ["v", "type", "log", "seq", "entry_hash", "header", "inclusion", "checkpoint",
                                     "vkey"]
    assert typed.proof == tuple(receipt["inclusion"]["proof"]) and typed.tree_size == SIZE


def test_receipt_ignores_unknown_members() -> None:
    """A later receipt may carry an ``anchor`` (DESIGN §6); a version-1 verifier checks the rest."""
    receipt = make_receipt(3) | {"later": {"chain": 1, "tx": "0x00"}}
    assert Receipt.from_json(receipt).to_json() == make_receipt(3)
    assert verify_document(receipt, TRUST)["ok"] is True


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 9])
def test_receipts_of_every_tree_size(size: int) -> None:
    log = make_log(size)
    for seq in range(size):
        assert verify_receipt(make_receipt(seq, log, size), TRUST)["tree_size"] == size


def test_receipt_for_an_older_checkpoint() -> None:
    """An entry's receipt may be against any tree that contains it, not only the newest."""
    for size in (4, 9, SIZE):
        assert verify_receipt(make_receipt(3, size=size), TRUST)["tree_size"] == size


def test_receipt_without_a_trusted_key_is_refused() -> None:
    """Old code verified a receipt under its own key and returned ok; now that needs the explicit opt-out."""
    for trust in (NOTHING, Trust.of(verifier_key(OTHER_ORIGIN, KEY.public_key()))):
        with pytest.raises(VerificationError, match="key not trusted") as caught:
            verify_receipt(make_receipt(2), trust)
        assert type(caught.value) is VerificationError
        with pytest.raises(VerificationError, match="key not trusted"):
            verify_document(make_receipt(2), trust)


def test_receipt_with_a_trusted_root() -> None:
    receipt = make_receipt(2)
    assert verify_receipt(receipt, TRUST, root=mth(the_log().hashes))["ok"] is True
    with pytest.raises(ProofError):
        verify_receipt(receipt, TRUST, root=mth(the_log().hashes[:4]))


def test_one_of_several_trusted_keys_suffices() -> None:
    """While a log's key rotates, a verifier trusts the old and the new one."""
    trust = Trust.of(verifier_key(ORIGIN, OTHER_KEY.public_key()), VKEY)
    assert verify_receipt(make_receipt(2), trust)["key_trusted"] is True


# --- broken receipts -----------------------------------------------------------------------------

Mutation = Callable[[Doc], None]
Broken = tuple[str, Mutation, type[Exception]]


def _set(path: str, value: Any) -> Mutation:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        target = doc
        for name in parents:
            target = target[name]
        target[last] = value
    return apply


def _delete(path: str) -> Mutation:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        target = doc
        for name in parents:
            target = target[name]
        del target[last]
    return apply


def _flip_hex(text: str, position: int = 0) -> str:
    digit = int(text[position], 16) ^ 1
    return text[:position] + format(digit, "x") + text[position + 1 :]


def _rehash(doc: Doc) -> None:
    """Recompute entry_hash after a header edit: the forgery then has to get past the proof."""
    doc["entry_hash"] = hashlib.sha256(b"\x00" + _jcs(doc["header"])).hexdigest()


def _jcs(value: Any) -> bytes:
    return rfc8785.dumps(value)


def _header_edit(name: str, value: Any, rehash: bool) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["header"][name] = value
        if rehash:
            _rehash(doc)
    return apply


def _proof_edit(edit: Callable[[list[Any]], object]) -> Mutation:
    def apply(doc: Doc) -> None:
        edit(doc["inclusion"]["proof"])
    return apply


def _note_edit(old: str, new: str) -> Mutation:
    def apply(doc: Doc) -> None:
        assert old in doc["checkpoint"], old
        doc["checkpoint"] = doc["checkpoint"].replace(old, new, 1)
    return apply


def _resign(key: Ed25519PrivateKey, vkey_too: bool, size: int = SIZE, origin: str = ORIGIN) -> Mutation:
    def apply(doc: Doc) -> None:
        note = sign_checkpoint(Checkpoint(origin, size, mth(the_log().hashes[:SIZE])), key)
        doc["checkpoint"] = note
        if vkey_too:
            doc["vkey"] = verifier_key(origin, key.public_key())
    return apply


def _body_of(doc: Doc) -> list[str]:
    return str(doc["checkpoint"]).split("\n")


def _edit_size_line(doc: Doc) -> None:
    lines = _body_of(doc)
    lines[1] = str(int(lines[1]) + 1)
    doc["checkpoint"] = "\n".join(lines)


def _edit_root_line(doc: Doc) -> None:
    lines = _body_of(doc)
    lines[2] = base64.b64encode(hashlib.sha256(b"another root").digest()).decode()
    doc["checkpoint"] = "\n".join(lines)


def _edit_signature(doc: Doc) -> None:
    lines = _body_of(doc)
    name, blob = lines[-2].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    lines[-2] = f"{name} {base64.b64encode(bytes(raw)).decode()}"
    doc["checkpoint"] = "\n".join(lines)


SEQ = 5
# (name, mutation, the exact error class that must come out)
BROKEN: list[Broken] = [
    # header
    *[(f"header.{name} changed", _header_edit(name, value, rehash=False), ProofError)
      for name, value in [("kind", "document"), ("actor", "user:mallory"), ("time", "2024-05-01T12:00:00.000000Z"),
                          ("meta", {"direction": "outbound"}), ("prev", "ab" * 32), ("case", "c-9"),
                          ("channel", "video"), ("id", "00000000-0000-4000-8000-000000000000")]],
    *[(f"header.{name} changed, entry_hash recomputed", _header_edit(name, value, rehash=True), ProofError)
      for name, value in [("kind", "document"), ("meta", {"x": 1}), ("subject", "s_other"), ("prev", "0" * 64)]],
    ("header.seq changed", _header_edit("seq", SEQ + 1, rehash=True), VerificationError),
    ("header.log changed", _header_edit("log", OTHER_ORIGIN, rehash=True), VerificationError),
    ("header.v changed", _header_edit("v", 2, rehash=True), ChainError),
    ("header.id not a uuid", _header_edit("id", "x", rehash=True), ChainError),
    ("header.prev upper-case hex", lambda d: _header_edit("prev", d["header"]["prev"].upper(), True)(d), ChainError),
    ("header field missing", _delete("header.meta"), ChainError),
    ("header extra field", _header_edit("extra", 1, rehash=True), ChainError),
    ("header.meta has a NaN", _header_edit("meta", {"x": float("nan")}, rehash=False), FormatError),
    ("header.meta has a lone surrogate", _header_edit("meta", {"x": "\ud800"}, rehash=False), FormatError),
    ("header not an object", _set("header", "{}"), FormatError),
    # entry hash
    ("entry_hash changed", lambda d: _set("entry_hash", _flip_hex(d["entry_hash"], 63))(d), ProofError),
    ("entry_hash of another entry", _set("entry_hash", leaf(b"other").hex()), ProofError),
    ("entry_hash upper-case hex", lambda d: _set("entry_hash", d["entry_hash"].upper())(d), FormatError),
    ("entry_hash not hex", _set("entry_hash", "zz" * 32), FormatError),
    ("entry_hash too short", lambda d: _set("entry_hash", d["entry_hash"][:-2])(d), FormatError),
    ("entry_hash as base64", _set("entry_hash", "q" * 43 + "="), FormatError),
    ("entry_hash with whitespace", lambda d: _set("entry_hash", d["entry_hash"][:62] + " 0")(d), FormatError),
    ("entry_hash missing", _delete("entry_hash"), FormatError),
    # inclusion proof
    ("proof hash flipped", _proof_edit(lambda p: p.__setitem__(0, _flip_hex(p[0]))), ProofError),
    ("proof last hash flipped", _proof_edit(lambda p: p.__setitem__(-1, _flip_hex(p[-1], 40))), ProofError),
    ("proof hash dropped", _proof_edit(lambda p: p.pop()), ProofError),
    ("proof first hash dropped", _proof_edit(lambda p: p.pop(0)), ProofError),
    ("proof hash added", _proof_edit(lambda p: p.append(p[0])), ProofError),
    ("proof hashes swapped", _proof_edit(lambda p: p.reverse()), ProofError),
    ("proof empty", _proof_edit(lambda p: p.clear()), ProofError),
    ("proof hash upper-case", _proof_edit(lambda p: p.__setitem__(0, p[0].upper())), FormatError),
    ("proof hash not hex", _proof_edit(lambda p: p.__setitem__(0, "g" * 64)), FormatError),
    ("proof hash too long", _proof_edit(lambda p: p.__setitem__(0, p[0] + "00")), FormatError),
    ("proof hash not a string", _proof_edit(lambda p: p.__setitem__(0, 7)), FormatError),
    ("proof not a list", _set("inclusion.proof", "ab" * 32), FormatError),
    ("proof missing", _delete("inclusion.proof"), FormatError),
    ("inclusion missing", _delete("inclusion"), FormatError),
    ("tree_size changed", _set("inclusion.tree_size", SIZE + 1), VerificationError),
    ("tree_size smaller", _set("inclusion.tree_size", SIZE - 1), VerificationError),
    ("tree_size missing", _delete("inclusion.tree_size"), FormatError),
    ("tree_size a string", _set("inclusion.tree_size", str(SIZE)), FormatError),
    ("tree_size true", _set("inclusion.tree_size", True), FormatError),
    # checkpoint
    ("checkpoint size line edited", _edit_size_line, SignatureError),
    ("checkpoint root line edited", _edit_root_line, SignatureError),
    ("checkpoint origin edited", _note_edit(ORIGIN + "\n", OTHER_ORIGIN + "\n"), SignatureError),
    ("checkpoint signature bit flipped", _edit_signature, SignatureError),
    ("checkpoint signed by another key", _resign(OTHER_KEY, vkey_too=False), SignatureError),
    ("checkpoint of another tree size", _resign(KEY, vkey_too=False, size=SIZE - 1), VerificationError),
    ("checkpoint truncated", lambda d: _set("checkpoint", d["checkpoint"][:-1])(d), FormatError),
    ("checkpoint without signature", lambda d: _set("checkpoint", d["checkpoint"].split("\n\n")[0] + "\n")(d),
     FormatError),
    ("checkpoint missing", _delete("checkpoint"), FormatError),
    # keys
    ("vkey of another log", _set("vkey", verifier_key(OTHER_ORIGIN, KEY.public_key())), VerificationError),
    ("vkey of another key", _set("vkey", verifier_key(ORIGIN, OTHER_KEY.public_key())), SignatureError),
    ("vkey malformed", lambda d: _set("vkey", d["vkey"][:-4])(d), FormatError),
    ("vkey missing", _delete("vkey"), FormatError),
    # envelope fields
    ("type wrong", _set("type", "caseledger.proof"), FormatError),
    ("type missing", _delete("type"), FormatError),
    ("v 2", _set("v", 2), FormatError),
    ("v true", _set("v", True), FormatError),
    ("v as string", _set("v", "1"), FormatError),
    ("v 1.0", _set("v", 1.0), FormatError),
    ("v missing", _delete("v"), FormatError),
    ("log changed", _set("log", OTHER_ORIGIN), VerificationError),
    ("log missing", _delete("log"), FormatError),
    ("seq changed", _set("seq", SEQ + 1), VerificationError),
    ("seq a string", _set("seq", str(SEQ)), FormatError),
    ("seq true", _set("seq", True), FormatError),
    ("seq missing", _delete("seq"), FormatError),
]


#: mutations of the embedded key: they matter only when that key is used
EMBEDDED_KEY_ONLY = {"vkey of another log", "vkey of another key"}


@pytest.mark.parametrize("trust", [pytest.param(INSECURE, id="embedded key"), pytest.param(TRUST, id="trusted key")])
@pytest.mark.parametrize(("name", "mutation", "error"), [pytest.param(n, m, e, id=n) for n, m, e in BROKEN])
def test_broken_receipt_is_refused(name: str, mutation: Mutation, error: type[Exception], trust: Trust) -> None:
    receipt = make_receipt(SEQ)
    broken = copy.deepcopy(receipt)
    mutation(broken)
    assert json.dumps(broken, sort_keys=True) != json.dumps(receipt, sort_keys=True), "the mutation changed nothing"
    if trust is TRUST and name in EMBEDDED_KEY_ONLY:
        assert verify_receipt(broken, trust)["key_trusted"] is True  # the embedded key is not used
        return
    with pytest.raises(VerificationError) as caught:
        verify_receipt(broken, trust)
    assert type(caught.value) is error, caught.value.message
    with pytest.raises(error):
        verify_document(broken, trust)


def test_a_self_consistent_forgery_needs_the_trusted_key() -> None:
    """Whoever holds another key can sign a receipt that checks out on its own; the trusted key refuses it."""
    forged = make_receipt(SEQ)
    _resign(OTHER_KEY, vkey_too=True)(forged)
    assert verify_receipt(forged, INSECURE)["key_trusted"] is False
    with pytest.raises(SignatureError):
        verify_receipt(forged, TRUST)
    with pytest.raises(VerificationError, match="key not trusted"):
        verify_receipt(forged, NOTHING)


@pytest.mark.parametrize(("vkey", "error"), [
    pytest.param(verifier_key(OTHER_ORIGIN, KEY.public_key()), VerificationError, id="another log"),
    pytest.param(verifier_key(ORIGIN, OTHER_KEY.public_key()), SignatureError, id="another key"),
    pytest.param(VKEY.replace("+", "-", 1), FormatError, id="malformed"),
    pytest.param(VKEY[:-4], FormatError, id="truncated"),
    pytest.param("", FormatError, id="empty"),
])
def test_wrong_trusted_key_is_refused(vkey: str, error: type[Exception]) -> None:
    with pytest.raises(VerificationError) as caught:
        verify_receipt(make_receipt(SEQ), Trust.of(vkey))
    assert type(caught.value) is error


def test_empty_trusted_key_is_not_trust() -> None:
    """An empty --vkey must not fall back to the receipt's own key and then report it as trusted."""
    with pytest.raises(FormatError):
        Trust.of("")


def test_receipt_of_another_log_under_its_own_key() -> None:
    other = make_log(SIZE, OTHER_ORIGIN)
    receipt = make_receipt(3, other, key=OTHER_KEY, origin=OTHER_ORIGIN)
    assert verify_receipt(receipt, INSECURE)["log"] == OTHER_ORIGIN
    with pytest.raises(VerificationError) as caught:
        verify_receipt(receipt, TRUST)
    assert type(caught.value) is VerificationError


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.data())
def test_random_proof_tampering(size: int, data: st.DataObject) -> None:
    log = make_log(size)
    seq = data.draw(st.integers(0, size - 1), label="seq")
    receipt = make_receipt(seq, log, size)
    assert verify_receipt(receipt, TRUST)["ok"]
    proof: list[str] = receipt["inclusion"]["proof"]
    choices = ["add", "seq"] + (["flip", "drop"] if proof else [])
    what = data.draw(st.sampled_from(choices), label="what")
    if what == "flip":
        i = data.draw(st.integers(0, len(proof) - 1), label="i")
        proof[i] = _flip_hex(proof[i], data.draw(st.integers(0, 63), label="digit"))
    elif what == "drop":
        proof.pop(data.draw(st.integers(0, len(proof) - 1), label="i"))
    elif what == "add":
        proof.insert(data.draw(st.integers(0, len(proof)), label="i"), leaf(b"extra").hex())
    else:  # claim another position with the right header and hash: the proof leads elsewhere
        other = data.draw(st.integers(0, size - 1).filter(lambda s: s != seq), label="other") if size > 1 else seq
        if other == seq:
            return
        receipt["seq"] = other
        receipt["header"]["seq"] = other
        _rehash(receipt)
    with pytest.raises(ProofError):
        verify_receipt(receipt, TRUST)


# --- proof documents -----------------------------------------------------------------------------


def _note(size: int, key: Ed25519PrivateKey = KEY) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, mth(the_log().hashes[:size])), key)


def inclusion_doc(seq: int, size: int = SIZE, signed: bool = True) -> Doc:
    log = the_log()
    return InclusionProof(ORIGIN, seq, size, leaf(log.headers[seq]).hex(), mth(log.hashes[:size]).hex(),
                          tuple(p.hex() for p in log.tree.inclusion(seq, size)),
                          _note(size) if signed else None).to_json()


def consistency_doc(first: int, second: int = SIZE, signed: bool = True) -> Doc:
    log = the_log()
    return ConsistencyProof(ORIGIN, first, second, mth(log.hashes[:first]).hex(), mth(log.hashes[:second]).hex(),
                            tuple(p.hex() for p in log.tree.consistency(first, second)),
                            _note(second) if signed else None).to_json()


def range_doc(start: int, end: int, size: int = SIZE, signed: bool = True) -> Doc:
    log = the_log()
    left, right = log.tree.range(start, end, size)
    return RangeProof(ORIGIN, start, end, size, mth(log.hashes[:size]).hex(),
                      tuple(h.hex() for h in log.hashes[start:end]), tuple(h.hex() for h in left),
                      tuple(h.hex() for h in right), _note(size) if signed else None).to_json()


def test_every_proof_document_verifies() -> None:
    for size in range(1, SIZE + 1):
        root = mth(the_log().hashes[:size]).hex()
        for seq in range(size):
            assert verify_document(inclusion_doc(seq, size), TRUST) == {
                "ok": True, "type": "caseledger.inclusion-proof", "log": ORIGIN, "leaf_index": seq,
                "tree_size": size, "root": root, "trusted_root": "checkpoint"}
        for first in range(1, size + 1):
            assert verify_document(consistency_doc(first, size), TRUST) == {
                "ok": True, "type": "caseledger.consistency-proof", "log": ORIGIN, "first": first, "second": size,
                "first_root": mth(the_log().hashes[:first]).hex(), "second_root": root,
                "trusted_root": "checkpoint"}
        for start in range(size):
            for end in range(start + 1, size + 1):
                assert verify_document(range_doc(start, end, size), TRUST) == {
                    "ok": True, "type": "caseledger.range-proof", "log": ORIGIN, "start": start, "end": end,
                    "tree_size": size, "root": root, "trusted_root": "checkpoint"}


MAKERS: list[Callable[[bool], Doc]] = [
    lambda signed: inclusion_doc(5, signed=signed),
    lambda signed: consistency_doc(5, signed=signed),
    lambda signed: range_doc(3, 7, signed=signed),
]
MAKER_IDS = ["inclusion", "consistency", "range"]


@pytest.mark.parametrize("make", MAKERS, ids=MAKER_IDS)
def test_proof_without_a_trusted_root_is_refused(make: Callable[[bool], Doc]) -> None:
    """Old code returned ok for any self-consistent proof; a proof only counts against a trusted root."""
    for doc, trust in ((make(False), TRUST), (make(False), INSECURE), (make(True), NOTHING), (make(True), INSECURE)):
        with pytest.raises(VerificationError, match="no trusted root") as caught:
            verify_document(doc, trust)
        assert type(caught.value) is VerificationError


@pytest.mark.parametrize("make", MAKERS, ids=MAKER_IDS)
def test_proof_against_an_explicit_root(make: Callable[[bool], Doc]) -> None:
    doc = make(False)
    root = mth(the_log().hashes).hex()
    assert verify_document(doc, NOTHING, root=bytes.fromhex(root))["trusted_root"] == "root"
    with pytest.raises(ProofError):
        verify_document(doc, NOTHING, root=mth(the_log().hashes[:4]))
    with pytest.raises(FormatError):
        verify_document(doc, NOTHING, root=bytes.fromhex(root)[:31])


@pytest.mark.parametrize("make", MAKERS, ids=MAKER_IDS)
def test_proof_checkpoint_must_be_signed_by_the_trusted_key(make: Callable[[bool], Doc]) -> None:
    doc = make(True) | {"checkpoint": _note(SIZE, OTHER_KEY)}
    with pytest.raises(SignatureError):
        verify_document(doc, TRUST)
    older = make(True) | {"checkpoint": _note(SIZE - 1)}
    with pytest.raises(ProofError):
        verify_document(older, TRUST)


@pytest.mark.parametrize("cls", [InclusionProof, ConsistencyProof, RangeProof])
def test_proof_types_round_trip(cls: type[Any]) -> None:
    doc = {InclusionProof: inclusion_doc(5), ConsistencyProof: consistency_doc(5), RangeProof: range_doc(3, 7)}[cls]
    typed = cls.from_json(doc)
    assert typed.to_json() == doc
    assert list(doc)[:2] == ["type", "v"] and doc["v"] == 1 and doc["type"] == cls.TYPE
    unsigned = cls.from_json({k: v for k, v in doc.items() if k != "checkpoint"})
    assert unsigned.checkpoint is None and "checkpoint" not in unsigned.to_json()


def _list_edit(name: str, edit: Callable[[list[Any]], object]) -> Mutation:
    def apply(doc: Doc) -> None:
        edit(doc[name])
    return apply


def _flip_field(name: str) -> Mutation:
    def apply(doc: Doc) -> None:
        doc[name] = _flip_hex(doc[name], 10)
    return apply


def _common(list_name: str, hash_names: Sequence[str]) -> list[Broken]:
    return [
        (f"{list_name} hash flipped", _list_edit(list_name, lambda p: p.__setitem__(0, _flip_hex(p[0]))), ProofError),
        (f"{list_name} hash dropped", _list_edit(list_name, lambda p: p.pop()), ProofError),
        (f"{list_name} hash added", _list_edit(list_name, lambda p: p.append(p[0])), ProofError),
        (f"{list_name} upper-case", _list_edit(list_name, lambda p: p.__setitem__(0, p[0].upper())), FormatError),
        (f"{list_name} not hex", _list_edit(list_name, lambda p: p.__setitem__(0, "x" * 64)), FormatError),
        (f"{list_name} missing", _delete(list_name), FormatError),
        (f"{list_name} not a list", _set(list_name, "00" * 32), FormatError),
        *[(f"{name} flipped", _flip_field(name), ProofError) for name in hash_names],
        *[(f"{name} upper-case", lambda d, n=name: _set(n, d[n].upper())(d), FormatError) for name in hash_names],
        *[(f"{name} missing", _delete(name), FormatError) for name in hash_names],
    ]


INCLUSION_BROKEN: list[Broken] = [
    *_common("proof", ["leaf_hash", "root"]),
    ("leaf_index changed", _set("leaf_index", 4), ProofError),
    ("leaf_index outside", _set("leaf_index", SIZE), ProofError),
    ("leaf_index negative", _set("leaf_index", -1), FormatError),
    ("leaf_index true", _set("leaf_index", True), FormatError),
    ("leaf_index a string", _set("leaf_index", "5"), FormatError),
    # A bare proof's tree_size only shapes the path: a proof in 13 leaves and 13's root also
    # "verify" as size 14 or 16. Receipts take size and root from the signed checkpoint.
    ("tree_size changed", _set("tree_size", 6), ProofError),
    ("tree_size missing", _delete("tree_size"), FormatError),
]
CONSISTENCY_BROKEN: list[Broken] = [
    *_common("proof", ["first_root", "second_root"]),
    ("first changed", _set("first", 6), ProofError),
    ("first zero", _set("first", 0), ProofError),
    ("first beyond second", _set("first", SIZE + 1), ProofError),
    ("second changed", _set("second", 6), ProofError),
    ("second true", _set("second", True), FormatError),
    ("roots swapped", lambda d: d.update(first_root=d["second_root"], second_root=d["first_root"]), ProofError),
]
RANGE_BROKEN: list[Broken] = [
    *_common("entry_hashes", ["root"]),
    ("left hash flipped", _list_edit("left", lambda p: p.__setitem__(0, _flip_hex(p[0]))), ProofError),
    ("left hash dropped", _list_edit("left", lambda p: p.pop()), ProofError),
    ("right hash flipped", _list_edit("right", lambda p: p.__setitem__(-1, _flip_hex(p[-1]))), ProofError),
    ("right hash added", _list_edit("right", lambda p: p.append(p[0])), ProofError),
    ("entry hashes swapped", _list_edit("entry_hashes", lambda p: p.reverse()), ProofError),
    ("start changed", _set("start", 2), ProofError),
    ("end changed", _set("end", 8), ProofError),
    ("start equals end", _set("start", 7), ProofError),
    ("tree_size changed", _set("tree_size", SIZE - 1), ProofError),
    ("left missing", _delete("left"), FormatError),
    ("right missing", _delete("right"), FormatError),
]
DOCS: list[tuple[str, Callable[[], Doc], Mutation, type[Exception]]] = [
    *[("inclusion: " + name, lambda: inclusion_doc(5), m, e) for name, m, e in INCLUSION_BROKEN],
    *[("consistency: " + name, lambda: consistency_doc(5), m, e) for name, m, e in CONSISTENCY_BROKEN],
    *[("range: " + name, lambda: range_doc(3, 7), m, e) for name, m, e in RANGE_BROKEN],
    ("unknown shape", lambda: {"log": ORIGIN, "proof": []}, lambda d: None, FormatError),
    ("untyped proof as prove printed it", lambda: {k: v for k, v in inclusion_doc(5).items() if k not in {
        "type", "v", "checkpoint"}}, lambda d: None, FormatError),
    *[(f"{kind}: {name}", make, m, FormatError) for kind, make in [
        ("inclusion", lambda: inclusion_doc(5)), ("consistency", lambda: consistency_doc(5)),
        ("range", lambda: range_doc(3, 7))] for name, m in [
        ("type unknown", _set("type", "caseledger.proof")), ("type missing", _delete("type")),
        ("v 2", _set("v", 2)), ("v true", _set("v", True)), ("v missing", _delete("v")),
        ("log missing", _delete("log")), ("log not a string", _set("log", 7)),
        ("checkpoint not a string", _set("checkpoint", 7)),
        ("checkpoint malformed", _set("checkpoint", "not a note"))]],
]


@pytest.mark.parametrize(("make", "mutation", "error"), [pytest.param(f, m, e, id=name) for name, f, m, e in DOCS])
def test_broken_proof_document_is_refused(make: Callable[[], Doc], mutation: Mutation, error: type[Exception]
                                          ) -> None:
    doc = make()
    mutation(doc)
    with pytest.raises(VerificationError) as caught:
        verify_document(doc, TRUST)
    assert type(caught.value) is error, caught.value.message
