"""Anchoring rounds and anchor receipts (DESIGN §6), checked offline.

A round over several logs is built with real Ed25519-signed checkpoints; its leaves are also
computed here by hand (JCS written out, SHA-256 with the 0x00 prefix) and its tree by the naive
RFC 9162 tree of `tests.verification.reference`. Every way of breaking an anchor receipt must
fail with the error class that says what broke, and the parser names every member it refuses.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import verification
from tests.verification.reference import Tree
from tests.verification.test_receipt import _delete, _set
from verification.anchor import (
    ANCHOR_RECEIPT_TYPE,
    MAX_ROUND_SIZE,
    AnchorReceipt,
    RoundLeaf,
    RoundTree,
    build_round,
    round_leaf,
    round_leaf_hash,
    verify_anchor_receipt,
)
from verification.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from verification.documents import DOCUMENT_TYPES, verify_document
from verification.errors import FormatError, ProofError, SignatureError, VerificationError
from verification.merkle import EMPTY_ROOT, verify_inclusion
from verification.trust import Trust

Doc = dict[str, Any]
Mutation = Callable[[Doc], None]

#: five logs; their origins sort differently by UTF-8 bytes, by code unit in UTF-16, and by case
ORIGINS = ["caseledger.local/acme-bank", "caseledger.local/Zeta", "caseledger.local/ärzte",
           "caseledger.local/\uff61x", "caseledger.local/\U0001f600"]
#: the order the round must have: bytewise UTF-8 ("Z" < "a" < "ä" < U+FF61 < U+1F600)
ORDER = ["caseledger.local/Zeta", "caseledger.local/acme-bank", "caseledger.local/ärzte",
         "caseledger.local/\uff61x", "caseledger.local/\U0001f600"]
KEYS = {origin: Ed25519PrivateKey.from_private_bytes(hashlib.sha256(origin.encode()).digest()) for origin in ORIGINS}
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SIZES = {origin: 3 + 5 * i for i, origin in enumerate(ORIGINS)}
ORIGIN = ORIGINS[0]
UNTRUSTED = "caseledger.local/nobody"
TRUST = Trust.of(*(verifier_key(origin, key.public_key()) for origin, key in KEYS.items()))
NOTHING = Trust()
INSECURE = Trust(insecure_embedded_key=True)
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # EIP-55, as a local node's first deployment
TX = "0x" + hashlib.sha256(b"tx").hexdigest()
BLOCK_HASH = "0x" + hashlib.sha256(b"block").hexdigest()


def root_of(origin: str, size: int) -> bytes:
    return hashlib.sha256(f"{origin}/{size}".encode()).digest()


def note(origin: str, size: int | None = None, root: bytes | None = None,
         key: Ed25519PrivateKey | None = None) -> str:
    size = SIZES[origin] if size is None else size
    root = root_of(origin, size) if root is None else root
    return sign_checkpoint(Checkpoint(origin, size, root), key or KEYS[origin])


def by_hand(origin: str, size: int, root: bytes) -> bytes:
    """The leaf hash from DESIGN §6 alone: JCS written out (keys sorted, no spaces), 0x00 prefix."""
    data = '{"log":' + json.dumps(origin, ensure_ascii=False) + ',"root":"' + root.hex() + '","size":' + str(size) + "}"
    assert data.encode() == rfc8785.dumps({"log": origin, "root": root.hex(), "size": size})
    return hashlib.sha256(b"\x00" + data.encode()).digest()


def the_round() -> RoundTree:
    return build_round([RoundLeaf(origin, SIZES[origin], root_of(origin, SIZES[origin])) for origin in ORIGINS])


def make_doc(origin: str = ORIGIN, round_id: int = 7) -> Doc:
    tree = the_round()
    index = tree.index_of(origin)
    return AnchorReceipt(
        log=origin, checkpoint=note(origin), round_id=round_id, round_size=tree.size, round_root=tree.root.hex(),
        leaf_index=index, proof=tuple(p.hex() for p in tree.proof(index)), chain_id=11155111, contract=CONTRACT,
        tx=TX, block=123, block_hash=BLOCK_HASH).to_json()


# --- round leaves and trees ----------------------------------------------------------------------


def test_round_leaf_is_the_jcs_of_log_root_size() -> None:
    root = root_of(ORIGIN, 5)
    assert round_leaf(ORIGIN, 5, root) == b'{"log":"caseledger.local/acme-bank","root":"' + root.hex().encode() + \
        b'","size":5}'
    assert round_leaf_hash(ORIGIN, 5, root) == by_hand(ORIGIN, 5, root)
    for origin in ORIGINS:  # non-ASCII origins are UTF-8 in the JCS, not escaped
        assert round_leaf_hash(origin, 9, root) == by_hand(origin, 9, root)
        assert origin.encode() in round_leaf(origin, 9, root)


@pytest.mark.parametrize(("log", "size", "root"), [
    pytest.param("", 1, bytes(32), id="empty log"),
    pytest.param("a\nb", 1, bytes(32), id="log with a newline"),
    pytest.param("a\tb", 1, bytes(32), id="log with a tab"),
    pytest.param("a\ud800", 1, bytes(32), id="log with a lone surrogate"),
    pytest.param(7, 1, bytes(32), id="log not text"),
    pytest.param("a", -1, bytes(32), id="negative size"),
    pytest.param("a", True, bytes(32), id="bool size"),
    pytest.param("a", 1.0, bytes(32), id="float size"),
    pytest.param("a", 2**53, bytes(32), id="size beyond 2^53"),
    pytest.param("a", 1, bytes(31), id="short root"),
    pytest.param("a", 1, "00" * 32, id="hex root"),
])
def test_bad_round_leaf_is_refused(log: Any, size: Any, root: Any) -> None:
    with pytest.raises(FormatError):
        round_leaf(log, size, root)
    with pytest.raises(FormatError):
        RoundLeaf(log, size, root)


def test_round_is_ordered_by_origin_bytes() -> None:
    tree = the_round()
    assert [leaf.log for leaf in tree.leaves] == ORDER
    assert sorted(ORIGINS, key=lambda o: o.encode("utf-8")) == ORDER
    assert sorted(ORIGINS, key=lambda o: o.encode("utf-16-be")) != ORDER  # not JavaScript's order
    assert sorted(ORIGINS, key=str.lower) != ORDER
    assert tree.size == len(ORIGINS)
    assert [tree.index_of(origin) for origin in ORDER] == list(range(len(ORDER)))
    # whatever order the leaves come in
    assert build_round(list(reversed(tree.leaves))) == tree


def test_round_root_and_proofs() -> None:
    tree = the_round()
    hashes = [by_hand(o, SIZES[o], root_of(o, SIZES[o])) for o in ORDER]
    naive = Tree(hashes)
    assert tree.root == naive.root(len(hashes))
    for index in range(tree.size):
        assert tree.leaf_hash(index) == hashes[index]
        assert tree.proof(index) == naive.inclusion(index, len(hashes))
        verify_inclusion(index, tree.size, hashes[index], tree.proof(index), tree.root)
    with pytest.raises(KeyError):
        tree.index_of(UNTRUSTED)
    with pytest.raises(ValueError):
        tree.proof(tree.size)


def test_round_of_one_and_of_none() -> None:
    one = build_round([RoundLeaf(ORIGIN, 1, root_of(ORIGIN, 1))])
    assert one.root == by_hand(ORIGIN, 1, root_of(ORIGIN, 1)) and one.proof(0) == []
    empty = build_round([])
    assert empty.root == EMPTY_ROOT and empty.size == 0 and empty.leaves == ()


def test_a_log_twice_in_a_round_is_refused() -> None:
    with pytest.raises(FormatError, match="twice"):
        build_round([RoundLeaf(ORIGIN, 3, root_of(ORIGIN, 3)), RoundLeaf(ORIGIN, 4, root_of(ORIGIN, 4))])


def test_round_tree_keeps_its_order() -> None:
    leaves = the_round().leaves
    with pytest.raises(FormatError, match="ordered"):
        RoundTree((leaves[1], leaves[0], *leaves[2:]))
    with pytest.raises(FormatError):
        RoundTree((leaves[0], leaves[0]))
    with pytest.raises(FormatError):
        RoundTree([*leaves])  # type: ignore[arg-type]


# --- valid anchor receipts -----------------------------------------------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
def test_every_log_of_the_round_verifies(origin: str) -> None:
    doc = make_doc(origin)
    tree = the_round()
    result = verify_anchor_receipt(doc, TRUST)
    assert result == {
        "ok": True, "type": ANCHOR_RECEIPT_TYPE, "log": origin, "size": SIZES[origin],
        "root": root_of(origin, SIZES[origin]).hex(),
        "round": {"id": 7, "size": len(ORIGINS), "root": tree.root.hex(), "leaf_index": tree.index_of(origin)},
        "chain": {"chain_id": 11155111, "contract": CONTRACT, "tx": TX, "block": 123, "block_hash": BLOCK_HASH},
        "key_trusted": True, "checks": ["offline"],
    }
    assert verify_document(doc, TRUST) == result
    assert verify_document(json.loads(json.dumps(doc)), TRUST) == result
    assert verify_anchor_receipt(AnchorReceipt.from_json(doc), TRUST) == result
    assert verify_anchor_receipt(doc, TRUST, root=root_of(origin, SIZES[origin])) == result
    with pytest.raises(ProofError):
        verify_anchor_receipt(doc, TRUST, root=root_of(origin, 1))
    with pytest.raises(ProofError):
        verify_document(doc, TRUST, root=root_of(origin, 1))


def test_the_wire_form() -> None:
    doc = make_doc()
    assert list(doc) == ["type", "v", "log", "checkpoint", "round", "chain"]
    assert doc["type"] == "caseledger.anchor-receipt" and doc["v"] == 1
    assert list(doc["round"]) == ["id", "size", "root", "leaf_index", "proof"]
    assert list(doc["chain"]) == ["chain_id", "contract", "tx", "block", "block_hash"]
    typed = AnchorReceipt.from_json(doc)
    assert typed.to_json() == doc
    assert AnchorReceipt.from_json(json.loads(json.dumps(typed.to_json()))) == typed
    assert typed.contract == CONTRACT  # EIP-55 case kept as given


def test_unknown_members_are_ignored() -> None:
    doc = make_doc() | {"later": 1}
    doc["round"]["later"] = 2
    assert AnchorReceipt.from_json(doc).to_json() == make_doc()


def test_registered_as_a_document_type() -> None:
    assert ANCHOR_RECEIPT_TYPE in DOCUMENT_TYPES and set(DOCUMENT_TYPES[ANCHOR_RECEIPT_TYPE]) == {1}
    for name in ("AnchorReceipt", "RoundLeaf", "RoundTree", "build_round", "round_leaf", "round_leaf_hash",
                 "verify_anchor_receipt", "ReceiptAnchor"):
        assert name in verification.__all__ and hasattr(verification, name), name


def test_chain_is_not_checked_offline() -> None:
    """Offline, the round id and the chain members are only echoed: an online check confirms them."""
    doc = make_doc(round_id=8)
    doc["chain"] |= {"chain_id": 1, "block": 0, "contract": CONTRACT.lower()}
    result = verify_anchor_receipt(doc, TRUST)
    assert result["round"]["id"] == 8 and result["chain"]["chain_id"] == 1
    assert result["chain"]["contract"] == CONTRACT.lower() and result["checks"] == ["offline"]


def test_round_size_is_bound_offline_only_by_the_proofs_shape() -> None:
    """RFC 9162: leaf 1's path in a tree of 5 is also its path in trees of 6 to 8 with the same root.

    So offline a round size that keeps the path's shape goes unnoticed (the result echoes it);
    the online check compares it with the leaf count the contract stores for the round.
    """
    assert INDEX == 1
    for size in (6, 7, 8):
        doc = make_doc()
        doc["round"]["size"] = size
        assert verify_anchor_receipt(doc, TRUST)["round"]["size"] == size
    for size in (2, 3, 4, 9, 16):
        doc = make_doc()
        doc["round"]["size"] = size
        with pytest.raises(ProofError):
            verify_anchor_receipt(doc, TRUST)


def test_without_a_trusted_key_it_is_refused() -> None:
    """An anchor receipt has no key of its own, so the embedded-key opt-out changes nothing."""
    for trust in (NOTHING, INSECURE, Trust.of(verifier_key(ORIGINS[1], KEYS[ORIGINS[1]].public_key()))):
        with pytest.raises(VerificationError, match="key not trusted") as caught:
            verify_anchor_receipt(make_doc(), trust)
        assert type(caught.value) is VerificationError
        with pytest.raises(VerificationError, match="key not trusted"):
            verify_document(make_doc(), trust)


# --- broken anchor receipts ----------------------------------------------------------------------




def _edit(path: str, edit: Callable[[Any], Any]) -> Mutation:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        target = doc
        for name in parents:
            target = target[name]
        target[last] = edit(target[last])
    return apply


def _proof(edit: Callable[[list[str]], object]) -> Mutation:
    def apply(doc: Doc) -> None:
        edit(doc["round"]["proof"])
    return apply


def flip_hex(text: str, position: int = 0) -> str:
    return text[:position] + format(int(text[position], 16) ^ 1, "x") + text[position + 1 :]


def _note_lines(edit: Callable[[list[str]], None]) -> Mutation:
    def apply(doc: Doc) -> None:
        lines = doc["checkpoint"].split("\n")
        edit(lines)
        doc["checkpoint"] = "\n".join(lines)
    return apply


def _bump_size(lines: list[str]) -> None:
    lines[1] = str(int(lines[1]) + 1)


def _other_root(lines: list[str]) -> None:
    lines[2] = base64.b64encode(hashlib.sha256(b"another root").digest()).decode()


def _other_origin(lines: list[str]) -> None:
    lines[0] = ORIGINS[1]


def _flip_signature(lines: list[str]) -> None:
    name, blob = lines[-2].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    lines[-2] = f"{name} {base64.b64encode(bytes(raw)).decode()}"


def _swap_log(doc: Doc) -> None:
    """The log and checkpoint of another member of the round, at this receipt's leaf index and proof."""
    other = make_doc(ORIGINS[1])
    doc["log"], doc["checkpoint"] = other["log"], other["checkpoint"]


INDEX = the_round().index_of(ORIGIN)
# (name, mutation, the exact error class that must come out)
BROKEN: list[tuple[str, Mutation, type[Exception]]] = [
    # round
    ("round.root flipped", _edit("round.root", flip_hex), ProofError),
    ("round.root of another round", _set("round.root", hashlib.sha256(b"r").hexdigest()), ProofError),
    ("round.size larger, another path shape", _set("round.size", 9), ProofError),
    ("round.size much larger", _set("round.size", 64), ProofError),
    ("round.size smaller", _set("round.size", INDEX + 1), ProofError),
    ("round.leaf_index changed", _set("round.leaf_index", INDEX + 1), ProofError),
    ("round.leaf_index zero", _set("round.leaf_index", 0), ProofError),
    ("round.leaf_index = round.size", _set("round.leaf_index", len(ORIGINS)), FormatError),
    ("round.proof hash flipped", _proof(lambda p: p.__setitem__(0, flip_hex(p[0]))), ProofError),
    ("round.proof last hash flipped", _proof(lambda p: p.__setitem__(-1, flip_hex(p[-1], 63))), ProofError),
    ("round.proof hash dropped", _proof(lambda p: p.pop()), ProofError),
    ("round.proof first hash dropped", _proof(lambda p: p.pop(0)), ProofError),
    ("round.proof hash added", _proof(lambda p: p.append(p[0])), ProofError),
    ("round.proof hashes swapped", _proof(lambda p: p.reverse()), ProofError),
    ("round.proof empty", _proof(lambda p: p.clear()), ProofError),
    ("round.proof hash upper-case", _proof(lambda p: p.__setitem__(0, p[0].upper())), FormatError),
    # checkpoint
    ("checkpoint size line edited", _note_lines(_bump_size), SignatureError),
    ("checkpoint root line edited", _note_lines(_other_root), SignatureError),
    ("checkpoint origin edited", _note_lines(_other_origin), SignatureError),
    ("checkpoint signature bit flipped", _note_lines(_flip_signature), SignatureError),
    ("checkpoint signed by another key", _set("checkpoint", note(ORIGIN, key=OTHER_KEY)), SignatureError),
    ("checkpoint of another log", _set("checkpoint", note(ORIGINS[1])), SignatureError),
    ("checkpoint of another size, validly signed", _set("checkpoint", note(ORIGIN, SIZES[ORIGIN] + 1)), ProofError),
    ("checkpoint of another root, validly signed",
     _set("checkpoint", note(ORIGIN, root=hashlib.sha256(b"fork").digest())), ProofError),
    ("checkpoint truncated", _edit("checkpoint", lambda t: t[:-1]), FormatError),
    ("checkpoint without signature", _edit("checkpoint", lambda t: t.split("\n\n")[0] + "\n"), FormatError),
    # log
    ("log of another trusted log", _set("log", ORIGINS[1]), SignatureError),
    ("log untrusted", _set("log", UNTRUSTED), VerificationError),
    ("log and checkpoint of another member", _swap_log, ProofError),
]


@pytest.mark.parametrize(("name", "mutation", "error"), [pytest.param(n, m, e, id=n) for n, m, e in BROKEN])
def test_broken_anchor_receipt_is_refused(name: str, mutation: Mutation, error: type[Exception]) -> None:
    doc = make_doc()
    broken = copy.deepcopy(doc)
    mutation(broken)
    assert broken != doc, "the mutation changed nothing"
    with pytest.raises(VerificationError) as caught:
        verify_anchor_receipt(broken, TRUST)
    assert type(caught.value) is error, caught.value.message
    with pytest.raises(error):
        verify_document(broken, TRUST)


def _bad(path: str, value: Any) -> Any:
    return pytest.param(_set(path, value), path, id=f"{path}={value!r}"[:60])


def _missing(path: str) -> Any:
    return pytest.param(_delete(path), path, id=f"{path} missing")


HEX = hashlib.sha256(b"h").hexdigest()
MALFORMED = [
    *[_missing(p) for p in ("log", "checkpoint", "round", "chain", "round.id", "round.size", "round.root",
                            "round.leaf_index", "round.proof", "chain.chain_id", "chain.contract", "chain.tx",
                            "chain.block", "chain.block_hash")],
    _bad("log", ""), _bad("log", 7), _bad("log", None),
    _bad("checkpoint", ""), _bad("checkpoint", ["x"]),
    _bad("round", []), _bad("round", None), _bad("chain", "x"),
    _bad("round.id", -1), _bad("round.id", True), _bad("round.id", "7"), _bad("round.id", 7.0),
    _bad("round.id", 2**53),
    _bad("round.size", 0), _bad("round.size", -5), _bad("round.size", False), _bad("round.size", MAX_ROUND_SIZE + 1),
    _bad("round.root", HEX.upper()), _bad("round.root", HEX[:-2]), _bad("round.root", HEX + "00"),
    _bad("round.root", "0x" + HEX), _bad("round.root", "z" * 64), _bad("round.root", 0),
    _bad("round.root", base64.b64encode(bytes(32)).decode()),
    _bad("round.leaf_index", -1), _bad("round.leaf_index", True), _bad("round.leaf_index", 99),
    _bad("round.leaf_index", None),
    _bad("round.proof", HEX), _bad("round.proof", None), _bad("round.proof", {"0": HEX}),
    _bad("round.proof", [HEX, 7]), _bad("round.proof", [HEX.upper()]), _bad("round.proof", [HEX[:63]]),
    _bad("chain.chain_id", 0), _bad("chain.chain_id", -1), _bad("chain.chain_id", True),
    _bad("chain.chain_id", "11155111"), _bad("chain.chain_id", 1.5),
    _bad("chain.contract", CONTRACT[2:]), _bad("chain.contract", CONTRACT[:-1]), _bad("chain.contract", CONTRACT + "0"),
    _bad("chain.contract", "0X" + CONTRACT[2:]), _bad("chain.contract", "0x" + "g" * 40), _bad("chain.contract", 1),
    _bad("chain.tx", TX.upper().replace("0X", "0x")), _bad("chain.tx", TX[2:]), _bad("chain.tx", TX[:-1]),
    _bad("chain.tx", "0x" + HEX + "00"), _bad("chain.tx", None),
    _bad("chain.block", -1), _bad("chain.block", "123"), _bad("chain.block", True), _bad("chain.block", 2**53),
    _bad("chain.block_hash", BLOCK_HASH[2:]), _bad("chain.block_hash", "0x" + HEX[:62]),
    _bad("chain.block_hash", BLOCK_HASH.upper().replace("0X", "0x")),
]


@pytest.mark.parametrize(("mutation", "member"), MALFORMED)
def test_malformed_member_is_named(mutation: Mutation, member: str) -> None:
    doc = make_doc()
    mutation(doc)
    with pytest.raises(FormatError) as caught:
        AnchorReceipt.from_json(doc)
    named = caught.value.fields.get("member", "")
    assert named == member or named.startswith(member + "["), (named, caught.value.message)
    assert member in caught.value.message
    with pytest.raises(FormatError):
        verify_document(doc, TRUST)


@pytest.mark.parametrize("doc", [
    pytest.param({**make_doc(), "type": "caseledger.receipt"}, id="type of a receipt"),
    pytest.param({**make_doc(), "type": "caseledger.anchor"}, id="type unknown"),
    pytest.param({k: v for k, v in make_doc().items() if k != "type"}, id="type missing"),
    pytest.param({**make_doc(), "v": 2}, id="v 2"),
    pytest.param({**make_doc(), "v": True}, id="v true"),
    pytest.param({**make_doc(), "v": "1"}, id="v a string"),
    pytest.param({**make_doc(), "v": 1.0}, id="v 1.0"),
    pytest.param({k: v for k, v in make_doc().items() if k != "v"}, id="v missing"),
    pytest.param([make_doc()], id="a list"),
    pytest.param(None, id="null"),
])
def test_unknown_type_or_version_is_refused(doc: Any) -> None:
    with pytest.raises(FormatError):
        AnchorReceipt.from_json(doc)
    with pytest.raises(FormatError):
        verify_anchor_receipt(doc, TRUST)


def test_the_type_checks_what_it_is_built_from() -> None:
    """A value built in code, not parsed, is held to the same rules, so `to_json` never writes a bad document."""
    good = AnchorReceipt.from_json(make_doc())
    fields = good.__dict__
    for name, value in [("round_root", HEX.upper()), ("proof", [HEX]), ("proof", (HEX, b"x")),
                        ("leaf_index", good.round_size), ("tx", TX[2:]), ("chain_id", 0), ("log", "")]:
        with pytest.raises(FormatError):
            AnchorReceipt(**(fields | {name: value}))


# --- properties ----------------------------------------------------------------------------------

_ORIGIN_TEXT = st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_ORIGIN_TEXT, st.integers(0, 2**53 - 1), min_size=1, max_size=40), st.data())
def test_random_rounds(logs: dict[str, int], data: st.DataObject) -> None:
    leaves = [RoundLeaf(log, size, hashlib.sha256(log.encode()).digest()) for log, size in logs.items()]
    shuffled = data.draw(st.permutations(leaves), label="order")
    tree = build_round(shuffled)
    assert tree == build_round(leaves)
    keys = [leaf.log.encode() for leaf in tree.leaves]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    hashes = [by_hand(leaf.log, leaf.size, leaf.root) for leaf in tree.leaves]
    assert tree.root == Tree(hashes).root(len(hashes))
    for index, leaf in enumerate(tree.leaves):
        assert tree.index_of(leaf.log) == index
        verify_inclusion(index, tree.size, hashes[index], tree.proof(index), tree.root)


_HEX64 = st.binary(min_size=32, max_size=32).map(bytes.hex)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2**32 - 1).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size - 1))),
       st.integers(0, 2**53 - 1), st.lists(_HEX64, max_size=33), st.integers(1, 2**53 - 1),
       st.text(alphabet="0123456789abcdefABCDEF", min_size=40, max_size=40), _HEX64, st.integers(0, 2**53 - 1),
       _HEX64, st.text(min_size=1))
def test_json_round_trip(size_index: tuple[int, int], round_id: int, proof: list[str], chain_id: int, address: str,
                         tx: str, block: int, block_hash: str, log: str) -> None:
    size, index = size_index
    typed = AnchorReceipt(log, "note\n", round_id, size, HEX, index, tuple(proof), chain_id, "0x" + address,
                          "0x" + tx, block, "0x" + block_hash)
    wire = json.loads(json.dumps(typed.to_json()))
    assert AnchorReceipt.from_json(wire) == typed
    assert AnchorReceipt.from_json(wire).to_json() == typed.to_json()


# --- published vectors (tests/vectors/caseledger/anchor) -----------------------------------------

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "caseledger" / "anchor"
VECTOR_FILES = ("rounds.json", "anchor-receipts.json")


def _vectors(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return cases


@cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("caseledger_anchor_vector_generator", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", VECTOR_FILES)
def test_vector_files_are_what_the_generator_writes(name: str) -> None:
    generator = _generator()
    assert (VECTORS / name).read_text(encoding="utf-8") == generator.render(generator.build()[name]), (
        f"{name} is stale: run python tests/vectors/caseledger/anchor/generate.py"
    )
    cases = _vectors(name)
    assert all(isinstance(case["desc"], str) and case["desc"] for case in cases)
    assert len({case["desc"] for case in cases}) == len(cases)
    assert {case["wantErr"] for case in cases} == {True, False}


def _vector_params(name: str, want_err: bool) -> list[Any]:
    return [pytest.param(case, id=case["desc"][:80]) for case in _vectors(name) if case["wantErr"] is want_err]


@pytest.mark.parametrize("case", _vector_params("rounds.json", want_err=False))
def test_round_vector(case: dict[str, Any]) -> None:
    leaves = [RoundLeaf(leaf["log"], leaf["size"], bytes.fromhex(leaf["root"])) for leaf in case["leaves"]]
    tree = build_round(list(reversed(leaves)))
    assert tree.leaves == tuple(leaves)
    assert tree.root.hex() == case["root"]
    for i, leaf in enumerate(leaves):
        assert round_leaf(leaf.log, leaf.size, leaf.root) == case["leaf_data"][i].encode("utf-8")
        assert round_leaf_hash(leaf.log, leaf.size, leaf.root).hex() == case["leaf_hashes"][i]
        assert [p.hex() for p in tree.proof(i)] == case["proofs"][i]


@pytest.mark.parametrize("case", _vector_params("rounds.json", want_err=True))
def test_round_vector_refused(case: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        build_round([RoundLeaf(leaf["log"], leaf["size"], bytes.fromhex(leaf["root"])) for leaf in case["leaves"]])


@pytest.mark.parametrize("case", _vector_params("anchor-receipts.json", want_err=False))
def test_anchor_receipt_vector(case: dict[str, Any]) -> None:
    result = verify_document(case["receipt"], Trust.of(*case["vkeys"]))
    assert result["ok"] is True and result["log"] == case["receipt"]["log"]
    assert AnchorReceipt.from_json(case["receipt"]).to_json() == case["receipt"]


@pytest.mark.parametrize("case", _vector_params("anchor-receipts.json", want_err=True))
def test_anchor_receipt_vector_refused(case: dict[str, Any]) -> None:
    with pytest.raises(VerificationError):
        verify_document(case["receipt"], Trust.of(*case["vkeys"]))
