"""Receipts that carry their anchor (DESIGN §6 last bullet, §7).

The 13-entry log of `tests.verification.test_receipt` is anchored at some size in a round with
other logs; a receipt for an older (or the same) checkpoint carries that anchor receipt and the
consistency proof between the two. The receipt verifies only if the entry is in its tree, the
anchored tree extends that tree, and the anchored checkpoint's leaf is in the round.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.verification.test_entry import ORIGIN, OTHER_ORIGIN, mth
from tests.verification.test_receipt import INSECURE, KEY, NOTHING, OTHER_KEY, SIZE, TRUST, make_receipt, the_log
from verification.anchor import AnchorReceipt, RoundLeaf, build_round
from verification.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from verification.documents import verify_document
from verification.errors import FormatError, ProofError, SignatureError, VerificationError
from verification.receipt import Receipt, ReceiptAnchor, verify_receipt
from verification.trust import Trust

Doc = dict[str, Any]
Mutation = Callable[[Doc], None]

SEQ = 5
RECEIPT_SIZE = 9
ANCHORED_SIZE = SIZE
#: the other members of the round (they only need a leaf; their checkpoints are not shown)
NEIGHBOURS = ["caseledger.local/Zeta", "caseledger.local/beta", "caseledger.local/ärzte"]
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TX = "0x" + "ab" * 32
BLOCK_HASH = "0x" + "cd" * 32
OTHER_TRUST = Trust.of(verifier_key(OTHER_ORIGIN, OTHER_KEY.public_key()))


def root(size: int) -> bytes:
    return mth(the_log().hashes[:size])


def anchor_receipt(size: int = ANCHORED_SIZE, key: Ed25519PrivateKey = KEY, origin: str = ORIGIN,
                   checkpoint_root: bytes | None = None) -> Doc:
    """The anchor receipt of `origin`'s checkpoint of `size`, in a round with the neighbours."""
    cp_root = root(size) if checkpoint_root is None else checkpoint_root
    tree = build_round([RoundLeaf(origin, size, cp_root),
                        *(RoundLeaf(n, 4, hashlib.sha256(n.encode()).digest()) for n in NEIGHBOURS)])
    index = tree.index_of(origin)
    return AnchorReceipt(origin, sign_checkpoint(Checkpoint(origin, size, cp_root), key), 3, tree.size,
                         tree.root.hex(), index, tuple(p.hex() for p in tree.proof(index)), 31337, CONTRACT, TX, 42,
                         BLOCK_HASH).to_json()


def anchored(seq: int = SEQ, size: int = RECEIPT_SIZE, at: int = ANCHORED_SIZE) -> Doc:
    receipt = make_receipt(seq, size=size)
    consistency = [p.hex() for p in the_log().tree.consistency(size, at)] if at >= size else []
    return receipt | {"anchor": {"receipt": anchor_receipt(at), "consistency": consistency}}


# --- valid ---------------------------------------------------------------------------------------


def test_an_anchored_receipt_verifies() -> None:
    doc = anchored()
    plain = verify_receipt(make_receipt(SEQ, size=RECEIPT_SIZE), TRUST)
    result = verify_receipt(doc, TRUST)
    anchor = verify_document(doc["anchor"]["receipt"], TRUST)
    assert result == {**plain, "anchor": anchor, "checks": ["offline"]}
    assert list(result)[: len(plain)] == list(plain)  # the keys a receipt always had, unchanged
    assert anchor["size"] == ANCHORED_SIZE and anchor["root"] == root(ANCHORED_SIZE).hex()
    assert anchor["key_trusted"] is True and anchor["chain"]["tx"] == TX
    assert verify_document(doc, TRUST) == result
    assert verify_document(json.loads(json.dumps(doc)), TRUST) == result
    assert verify_receipt(doc, TRUST, root=root(RECEIPT_SIZE)) == result


def test_anchored_at_the_receipts_own_size() -> None:
    doc = anchored(size=RECEIPT_SIZE, at=RECEIPT_SIZE)
    assert doc["anchor"]["consistency"] == []
    assert verify_receipt(doc, TRUST)["anchor"]["size"] == RECEIPT_SIZE


@pytest.mark.parametrize(("size", "at"), [(1, 1), (1, 13), (4, 8), (5, 6), (8, 13), (12, 13), (13, 13)])
def test_every_shape_of_consistency(size: int, at: int) -> None:
    for seq in range(size):
        assert verify_receipt(anchored(seq, size, at), TRUST)["anchor"]["size"] == at


def test_under_the_receipts_own_key() -> None:
    """With the embedded-key opt-out, the receipt's key opens the anchored checkpoint too; neither is trusted."""
    result = verify_receipt(anchored(), INSECURE)
    assert result["key_trusted"] is False and result["anchor"]["key_trusted"] is False
    # the opt-out is not needed for a bare anchor receipt: it has no key to fall back on
    with pytest.raises(VerificationError, match="key not trusted"):
        verify_document(anchored()["anchor"]["receipt"], INSECURE)
    with pytest.raises(VerificationError, match="key not trusted"):
        verify_receipt(anchored(), NOTHING)


def test_round_trip() -> None:
    doc = anchored()
    typed = Receipt.from_json(doc)
    assert isinstance(typed.anchor, ReceiptAnchor) and isinstance(typed.anchor.receipt, AnchorReceipt)
    assert typed.to_json() == doc
    assert list(typed.to_json()) == ["v", "type", "log", "seq", "entry_hash", "header", "inclusion", "checkpoint",
                                     "vkey", "anchor"]
    assert list(doc["anchor"]) == ["receipt", "consistency"]
    assert Receipt.from_json(json.loads(json.dumps(typed.to_json()))) == typed


def test_a_receipt_without_anchor_is_as_before() -> None:
    doc = make_receipt(SEQ)
    typed = Receipt.from_json(doc)
    assert typed.anchor is None and "anchor" not in typed.to_json()
    assert typed.to_json() == doc
    assert list(typed.to_json()) == ["v", "type", "log", "seq", "entry_hash", "header", "inclusion", "checkpoint",
                                     "vkey"]
    built = Receipt(typed.log, typed.seq, typed.entry_hash, typed.header, typed.tree_size, typed.proof,
                    typed.checkpoint, typed.vkey)
    assert built == typed and built.to_json() == doc
    result = verify_receipt(doc, TRUST)
    assert "anchor" not in result and "checks" not in result


def test_other_unknown_members_are_still_ignored() -> None:
    doc = anchored() | {"later": {"x": 1}}
    assert Receipt.from_json(doc).to_json() == anchored()
    assert verify_document(doc, TRUST)["anchor"]["ok"] is True


# --- broken --------------------------------------------------------------------------------------


def _consistency(edit: Callable[[list[Any]], object]) -> Mutation:
    def apply(doc: Doc) -> None:
        edit(doc["anchor"]["consistency"])
    return apply


def _anchor(edit: Callable[[Doc], object]) -> Mutation:
    def apply(doc: Doc) -> None:
        edit(doc["anchor"]["receipt"])
    return apply


def _flip(text: str, position: int = 0) -> str:
    return text[:position] + format(int(text[position], 16) ^ 1, "x") + text[position + 1 :]


def _replace_anchor(receipt: Doc, consistency: list[str] | None = None) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["anchor"]["receipt"] = receipt
        if consistency is not None:
            doc["anchor"]["consistency"] = consistency
    return apply


def _forked(size: int) -> Doc:
    """A checkpoint of `size` validly signed by the log's key, but of a tree that does not extend the receipt's."""
    return anchor_receipt(size, checkpoint_root=hashlib.sha256(b"fork").digest())


BROKEN: list[tuple[str, Mutation, type[Exception]]] = [
    # the consistency proof
    ("consistency hash flipped", _consistency(lambda p: p.__setitem__(0, _flip(p[0]))), ProofError),
    ("consistency last hash flipped", _consistency(lambda p: p.__setitem__(-1, _flip(p[-1], 63))), ProofError),
    ("consistency hash dropped", _consistency(lambda p: p.pop()), ProofError),
    ("consistency hash added", _consistency(lambda p: p.append(p[0])), ProofError),
    ("consistency hashes swapped", _consistency(lambda p: p.reverse()), ProofError),
    ("consistency empty", _consistency(lambda p: p.clear()), ProofError),
    ("consistency for other sizes", _consistency(
        lambda p: p.__setitem__(slice(None), [h.hex() for h in the_log().tree.consistency(8, SIZE)])), ProofError),
    ("consistency hash upper-case", _consistency(lambda p: p.__setitem__(0, p[0].upper())), FormatError),
    ("consistency hash not hex", _consistency(lambda p: p.__setitem__(0, "x" * 64)), FormatError),
    ("consistency hash not a string", _consistency(lambda p: p.__setitem__(0, 5)), FormatError),
    ("consistency not a list", lambda d: d["anchor"].__setitem__("consistency", "ab" * 32), FormatError),
    ("consistency missing", lambda d: d["anchor"].pop("consistency"), FormatError),
    # the anchored checkpoint
    ("anchored checkpoint older than the receipt's", _replace_anchor(anchor_receipt(RECEIPT_SIZE - 1), []),
     ProofError),
    ("anchored checkpoint of the same size, forked", _replace_anchor(_forked(RECEIPT_SIZE), []), ProofError),
    ("anchored checkpoint of a larger forked tree", _replace_anchor(_forked(ANCHORED_SIZE)), ProofError),
    ("anchored checkpoint signed by another key", _replace_anchor(anchor_receipt(key=OTHER_KEY)), SignatureError),
    ("anchored checkpoint's size line edited", _anchor(lambda a: a.__setitem__(
        "checkpoint", a["checkpoint"].replace(f"\n{ANCHORED_SIZE}\n", f"\n{ANCHORED_SIZE + 1}\n", 1))),
     SignatureError),
    ("anchored checkpoint of the same size as the receipt, with a proof", _replace_anchor(
        anchor_receipt(RECEIPT_SIZE)), ProofError),
    # the anchor receipt itself
    ("anchor of another log", _replace_anchor(anchor_receipt(key=OTHER_KEY, origin=OTHER_ORIGIN)),
     VerificationError),
    ("anchor round root flipped", _anchor(lambda a: a["round"].__setitem__("root", _flip(a["round"]["root"]))),
     ProofError),
    ("anchor round proof hash dropped", _anchor(lambda a: a["round"]["proof"].pop()), ProofError),
    ("anchor leaf index changed", _anchor(lambda a: a["round"].__setitem__("leaf_index",
                                                                          a["round"]["leaf_index"] ^ 1)), ProofError),
    ("anchor log changed", _anchor(lambda a: a.__setitem__("log", OTHER_ORIGIN)), VerificationError),
    ("anchor type wrong", _anchor(lambda a: a.__setitem__("type", "caseledger.receipt")), FormatError),
    ("anchor v 2", _anchor(lambda a: a.__setitem__("v", 2)), FormatError),
    ("anchor round missing", _anchor(lambda a: a.pop("round")), FormatError),
    ("anchor tx upper-case", _anchor(lambda a: a["chain"].__setitem__("tx", "0x" + "AB" * 32)), FormatError),
    ("anchor receipt missing", lambda d: d["anchor"].pop("receipt"), FormatError),
    ("anchor receipt not an object", lambda d: d["anchor"].__setitem__("receipt", []), FormatError),
    ("anchor null", lambda d: d.__setitem__("anchor", None), FormatError),
    ("anchor a list", lambda d: d.__setitem__("anchor", [d["anchor"]]), FormatError),
]


@pytest.mark.parametrize("trust", [pytest.param(INSECURE, id="embedded key"), pytest.param(TRUST, id="trusted key")])
@pytest.mark.parametrize(("name", "mutation", "error"), [pytest.param(n, m, e, id=n) for n, m, e in BROKEN])
def test_broken_anchor_is_refused(name: str, mutation: Mutation, error: type[Exception], trust: Trust) -> None:
    doc = anchored()
    broken = copy.deepcopy(doc)
    mutation(broken)
    assert broken != doc, "the mutation changed nothing"
    with pytest.raises(VerificationError) as caught:
        verify_receipt(broken, trust)
    assert type(caught.value) is error, caught.value.message
    with pytest.raises(error):
        verify_document(broken, trust)


def test_the_anchor_of_another_log_is_refused_even_when_that_log_is_trusted() -> None:
    both = Trust(TRUST.verifiers + OTHER_TRUST.verifiers)
    foreign = anchor_receipt(key=OTHER_KEY, origin=OTHER_ORIGIN)
    assert verify_document(foreign, both)["ok"] is True  # a good anchor receipt, of another log
    doc = anchored()
    doc["anchor"]["receipt"] = foreign
    with pytest.raises(VerificationError, match="the anchor is for log") as caught:
        verify_receipt(doc, both)
    assert type(caught.value) is VerificationError


def test_malformed_anchor_members_are_named() -> None:
    doc = anchored()
    doc["anchor"]["receipt"]["chain"]["block"] = -1
    with pytest.raises(FormatError) as caught:
        Receipt.from_json(doc)
    assert "anchor.receipt" in caught.value.message and "chain.block" in caught.value.message
    assert caught.value.fields["member"] == "anchor.receipt.chain.block"
    doc = anchored()
    doc["anchor"]["consistency"][1] = "00"
    with pytest.raises(FormatError, match=r"anchor\.consistency\[1\]"):
        Receipt.from_json(doc)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, SIZE).flatmap(lambda at: st.tuples(st.integers(1, at), st.just(at))), st.data())
def test_random_anchors_and_tampering(sizes: tuple[int, int], data: st.DataObject) -> None:
    size, at = sizes
    seq = data.draw(st.integers(0, size - 1), label="seq")
    doc = anchored(seq, size, at)
    assert verify_receipt(doc, TRUST)["anchor"]["size"] == at
    proof: list[str] = doc["anchor"]["consistency"]
    choices = ["add"] + (["flip", "drop"] if proof else [])
    what = data.draw(st.sampled_from(choices), label="what")
    if what == "flip":
        i = data.draw(st.integers(0, len(proof) - 1), label="i")
        proof[i] = _flip(proof[i], data.draw(st.integers(0, 63), label="digit"))
    elif what == "drop":
        proof.pop(data.draw(st.integers(0, len(proof) - 1), label="i"))
    else:
        proof.insert(data.draw(st.integers(0, len(proof)), label="i"), hashlib.sha256(b"extra").hexdigest())
    with pytest.raises(ProofError):
        verify_receipt(doc, TRUST)
