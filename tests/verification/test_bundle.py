"""Bundles (DESIGN §9): a log's entries, their content and one proof, checked offline against a signed checkpoint.

A log is built by hand (`tests.verification.test_entry.build_log`: real version-1 headers, both hash
chains), with salted commitments to JSON and binary content; its proofs come from the naive RFC 9162
tree of `tests.verification.reference`, its checkpoint is signed with a test Ed25519 key, and the
bundles are assembled as JSON. Every attack on a bundle must fail the check named after what it
broke, at the seq where it broke it; nothing here imports the ledger.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verification
from tests.verification.reference import Tree
from tests.verification.test_entry import ORIGIN, OTHER_ORIGIN, Spec, build_log, leaf
from tests.verification.test_receipt import KEY, OTHER_KEY, TRUST, VKEY
from verification.anchor import AnchorReceipt, RoundLeaf, build_round
from verification.bundle import Bundle, BundleEntry, BundleInclusion, BundleRange
from verification.bundle_result import BUNDLE_CHECKS, BundleResult
from verification.bundle_verify import verify_bundle
from verification.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from verification.documents import verify_document
from verification.entry import canonical_json
from verification.errors import FormatError, ProofError, SignatureError, VerificationError
from verification.trust import Trust

Doc = dict[str, Any]
Mutation = Callable[[Doc], None]

SIZE = 21  # not a power of two: proofs have right-border subtrees
CASES = ("c-1", "c-2", None)  # entry i is of case CASES[i % 3]
DOCUMENT = 9  # c-1: binary content
NO_COMMIT = 12  # c-1: content, but the header commits to nothing
REDACTED = 15  # c-1: content withheld, with the reason
C1 = [i for i in range(SIZE) if CASES[i % 3] == "c-1"]  # 0, 3, 6, …, 18
START, END = 5, 14  # the range bundle: entries [5, 14)
OTHER_ORIGIN_KEY = verifier_key(OTHER_ORIGIN, OTHER_KEY.public_key())


def salt_of(seq: int) -> bytes:
    return hashlib.sha256(f"salt {seq}".encode()).digest()


def content_of(seq: int) -> Any:
    """What entry `seq` holds: JSON for interactions, bytes for the document, nothing for access entries."""
    if CASES[seq % 3] is None:
        return None
    if seq == DOCUMENT:
        return b"%PDF-1.7 statement \x00\xff of the month\n"
    return {"text": f"message {seq}: gr\xfcezi \U0001f44b", "n": seq, "direction": "inbound"}


def committed(content: Any) -> bytes:
    return content if isinstance(content, bytes) else canonical_json(content)


def content_json(content: Any) -> Any:
    return {"base64": base64.b64encode(content).decode()} if isinstance(content, bytes) else content


@cache
def the_log() -> tuple[list[bytes], Tree]:
    specs = []
    for seq in range(SIZE):
        case = CASES[seq % 3]
        content = content_of(seq)
        commit = None if content is None or seq == NO_COMMIT else hashlib.sha256(
            salt_of(seq) + committed(content)).hexdigest()
        specs.append(Spec(case=case, channel="chat" if case else None, step_us=seq % 2,
                          kind="access" if case is None else "document" if seq == DOCUMENT else "interaction",
                          meta={"direction": "inbound"} if case else {}, overrides={"commit": commit}))
    headers = build_log(specs)
    return headers, Tree([leaf(data) for data in headers])


def root_of(size: int = SIZE) -> bytes:
    return the_log()[1].root(size)


def checkpoint_note(size: int = SIZE, key: Any = KEY, origin: str = ORIGIN, root: bytes | None = None) -> str:
    return sign_checkpoint(Checkpoint(origin, size, root_of(size) if root is None else root), key)


def entry_json(seq: int) -> Doc:
    data = the_log()[0][seq]
    entry: Doc = {"seq": seq, "entry_hash": leaf(data).hex(), "header": json.loads(data)}
    content = content_of(seq)
    if seq == REDACTED:
        entry |= {"content": None, "redacted": "withheld: legal privilege"}
    elif content is not None:
        entry |= {"content": content_json(content), "salt": salt_of(seq).hex()}
    return entry


def hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def manifest(scope: Doc) -> Doc:
    return {"log": ORIGIN, "scope": scope, "generated_at": "2024-06-01T10:00:00.5+02:00",
            "generator": "caseledger 0.1", "exported_by": "user:auditor-1", "include_content": True,
            "redactions": [f"/entries/{REDACTED}/content"]}


def range_bundle(start: int = START, end: int = END, size: int = SIZE) -> Doc:
    left, right = the_log()[1].range(start, end, size)
    return {"type": "caseledger.bundle", "v": 1, "manifest": manifest({"start": start, "end": end}), "vkey": VKEY,
            "checkpoint": checkpoint_note(size), "entries": [entry_json(seq) for seq in range(start, end)],
            "proof": {"range": {"start": start, "end": end, "left": hexes(left), "right": hexes(right)}},
            "anchors": []}


def case_bundle(case: str = "c-1", size: int = SIZE) -> Doc:
    seqs = [i for i in range(size) if CASES[i % 3] == case]
    tree = the_log()[1]
    return {"type": "caseledger.bundle", "v": 1, "manifest": manifest({"case": case}), "vkey": VKEY,
            "checkpoint": checkpoint_note(size), "entries": [entry_json(seq) for seq in seqs],
            "proof": {"inclusion": [{"seq": seq, "proof": hexes(tree.inclusion(seq, size))} for seq in seqs]},
            "anchors": []}


def anchor_json(size: int = SIZE, log: str = ORIGIN, key: Any = KEY) -> Doc:
    root = root_of(size)
    tree = build_round([RoundLeaf(log, size, root),
                        RoundLeaf("caseledger.local/zeta", 4, hashlib.sha256(b"zeta").digest())])
    index = tree.index_of(log)
    return AnchorReceipt(log, sign_checkpoint(Checkpoint(log, size, root), key), 7, tree.size, tree.root.hex(), index,
                         tuple(p.hex() for p in tree.proof(index)), 11155111,
                         "0x5FbDB2315678afecb367f032d93F642f64180aa3", "0x" + "ab" * 32, 42, "0x" + "cd" * 32).to_json()


def collected(doc: Doc, trust: Trust = TRUST) -> BundleResult:
    return verify_bundle(copy.deepcopy(doc), trust, collect=True)


def failed(result: BundleResult) -> dict[str, int | None]:
    return {check.name: check.seq for check in result.failed}


# --- valid bundles -------------------------------------------------------------------------------


def test_a_range_bundle_verifies() -> None:
    doc = range_bundle()
    result = verify_bundle(doc, TRUST)
    assert result.valid and result.key_trusted and result.failed == ()
    assert [c.name for c in result.checks] == list(BUNDLE_CHECKS) and all(c.ok for c in result.checks)
    assert (result.log, result.proof, result.tree_size, result.root) == (ORIGIN, "range", SIZE, root_of().hex())
    in_range = range(START, END)
    assert result.entries == END - START
    assert result.content_redacted == 0 and result.redacted == ()
    assert result.unverifiable == (NO_COMMIT,) and result.content_unverifiable == 1
    assert result.content_absent == sum(1 for i in in_range if content_of(i) is None)
    assert result.content_verified == END - START - result.content_absent - 1
    details = {c.name: c.detail for c in result.checks}
    assert details["proof"] == f"entries [{START}, {END}) are in the tree of size {SIZE}"
    assert details["hash_chain"].startswith(f"{END - START - 1} prev links")
    # a range has the case links within it: c-1 at 6, 9, 12; c-2 at 7, 10, 13
    assert details["case_chain"] == "4 case_prev links within the range hold"


def test_a_range_from_zero_checks_each_case_from_its_first_entry() -> None:
    result = verify_bundle(range_bundle(0, SIZE), TRUST)
    assert result.valid and result.entries == SIZE and result.redacted == (REDACTED,)
    assert "entry 0 starts the chain" in next(c.detail for c in result.checks if c.name == "hash_chain")


def test_a_case_bundle_verifies() -> None:
    result = verify_bundle(case_bundle(), TRUST)
    assert result.valid and result.proof == "inclusion" and result.entries == len(C1)
    assert result.redacted == (REDACTED,) and result.unverifiable == (NO_COMMIT,)
    assert result.content_verified == len(C1) - 2 and result.content_absent == 0
    details = {c.name: c.detail for c in result.checks}
    assert details["case_chain"] == f"case c-1: {len(C1) - 1} case_prev links hold, from the case's first entry"
    assert details["scope"] == "every entry is within case c-1"
    assert details["content"] == f"{len(C1) - 2} verified, 1 redacted, 1 not verifiable (no commitment), 0 not included"


def test_binary_content_is_checked_as_its_bytes() -> None:
    doc = case_bundle()
    entry = next(e for e in doc["entries"] if e["seq"] == DOCUMENT)
    assert set(entry["content"]) == {"base64"}
    assert verify_bundle(doc, TRUST).valid
    entry["content"] = {"base64": base64.b64encode(b"another statement").decode()}
    assert failed(collected(doc)) == {"content": DOCUMENT}


def test_round_trip_is_the_wire_form() -> None:
    for doc in (range_bundle(), case_bundle(), case_bundle() | {"anchors": [anchor_json()]}):
        typed = Bundle.from_json(doc)
        assert typed.to_json() == doc
        assert Bundle.from_json(json.loads(json.dumps(typed.to_json()))) == typed
        assert verify_bundle(typed, TRUST) == verify_bundle(doc, TRUST)
    typed = Bundle.from_json(case_bundle())
    assert isinstance(typed.proof, tuple) and all(isinstance(p, BundleInclusion) for p in typed.proof)
    assert isinstance(Bundle.from_json(range_bundle()).proof, BundleRange)
    document = next(e for e in typed.entries if e.seq == DOCUMENT)
    assert document.content == content_of(DOCUMENT) and isinstance(document, BundleEntry)


def test_verify_document_dispatches_bundles() -> None:
    result = verify_document(case_bundle(), TRUST)
    assert result["ok"] is True and result["valid"] is True and result["type"] == "caseledger.bundle"
    assert result["counts"] == {"entries": len(C1), "content_verified": len(C1) - 2, "content_redacted": 1,
                                "content_unverifiable": 1, "content_absent": 0, "anchors": 0}
    assert [c["name"] for c in result["checks"]] == list(BUNDLE_CHECKS)
    doc = case_bundle()
    del doc["entries"][2]
    del doc["proof"]["inclusion"][2]
    with pytest.raises(VerificationError) as raised:
        verify_document(doc, TRUST)
    assert raised.value.fields["check"] == "case_chain" and raised.value.fields["seq"] == C1[3]


def test_public_names_are_exported() -> None:
    for name in ("Bundle", "BundleEntry", "BundleManifest", "BundleRange", "BundleInclusion", "BundleResult",
                 "BundleCheck", "verify_bundle"):
        assert name in verification.__all__ and hasattr(verification, name)


def test_summary_names_every_check_and_the_counts() -> None:
    text = verify_bundle(case_bundle(), TRUST).summary()
    assert text.splitlines()[0].startswith(f"caseledger.bundle of {ORIGIN} (scope: case c-1)")
    for name in BUNDLE_CHECKS:
        assert f"ok    {name}" in text
    assert f"content: {len(C1) - 2} verified, 1 redacted, 1 not verifiable (no commitment), 0 not included" in text
    assert text.endswith("result: VALID\n")
    doc = case_bundle()
    doc["entries"][1]["header"]["meta"]["direction"] = "outbound"
    text = collected(doc).summary()
    assert "FAIL  entry_hashes" in text and text.endswith("checks failed)\n")


# --- trust ---------------------------------------------------------------------------------------


def test_nothing_verifies_without_a_trusted_key() -> None:
    with pytest.raises(VerificationError, match="key not trusted") as raised:
        verify_bundle(case_bundle(), Trust())
    assert raised.value.fields["check"] == "checkpoint_signature"
    result = collected(case_bundle(), Trust())
    assert failed(result) == {"checkpoint_signature": None} and not result.key_trusted
    # the rest is still checked, against the checkpoint as stated
    assert next(c.detail for c in result.checks if c.name == "proof").endswith("its signature did not verify)")


def test_the_embedded_key_only_when_asked_for() -> None:
    result = verify_bundle(case_bundle(), Trust(insecure_embedded_key=True))
    assert result.valid and result.key_trusted is False
    assert "not trusted" in result.summary()
    doc = case_bundle() | {"vkey": OTHER_ORIGIN_KEY}  # the embedded key must be the log's
    result = collected(doc, Trust(insecure_embedded_key=True))
    assert failed(result) == {"checkpoint_signature": None}
    assert result.failed[0].detail == f"the bundle's own key is for {OTHER_ORIGIN!r}, not {ORIGIN!r}"


def test_a_trusted_root_must_be_the_checkpoints() -> None:
    assert verify_bundle(case_bundle(), TRUST, root=root_of()).valid
    with pytest.raises(ProofError) as raised:
        verify_bundle(case_bundle(), TRUST, root=root_of(SIZE - 1))
    assert raised.value.fields["check"] == "checkpoint_signature"


# --- attacks -------------------------------------------------------------------------------------


def _change_header(doc: Doc) -> None:
    doc["entries"][2]["header"]["actor"] = "user:someone-else"


def _change_header_and_hash(doc: Doc) -> None:
    entry = doc["entries"][2]
    entry["header"]["actor"] = "user:someone-else"
    entry["entry_hash"] = leaf(canonical_json(entry["header"])).hex()


def _drop(index: int, proofs: bool = True) -> Mutation:
    def apply(doc: Doc) -> None:
        del doc["entries"][index]
        if proofs and "inclusion" in doc["proof"]:
            del doc["proof"]["inclusion"][index]
    return apply


def _drop_last_and_shrink(doc: Doc) -> None:
    doc["entries"].pop()
    doc["proof"]["range"]["end"] -= 1


def _add_next(doc: Doc) -> None:
    doc["entries"].append(entry_json(END))


def _add_next_and_grow(doc: Doc) -> None:
    doc["entries"].append(entry_json(END))
    doc["proof"]["range"]["end"] += 1
    doc["manifest"]["scope"]["end"] += 1


def _add_other_case(doc: Doc) -> None:
    """A genuine entry of case c-2, with its genuine inclusion proof, slipped into the c-1 bundle."""
    doc["entries"].insert(1, entry_json(1))
    doc["proof"]["inclusion"].insert(1, {"seq": 1, "proof": hexes(the_log()[1].inclusion(1, SIZE))})


def _add_forged_to_case(doc: Doc) -> None:
    """A made-up entry of c-1 at a free seq, linked into the case chain, with a proof that cannot hold."""
    forged = json.loads(the_log()[0][4])
    forged |= {"case": "c-1", "case_prev": doc["entries"][1]["entry_hash"]}
    data = canonical_json(forged)
    doc["entries"].insert(2, {"seq": 4, "entry_hash": leaf(data).hex(), "header": forged})
    doc["proof"]["inclusion"].insert(2, {"seq": 4, "proof": hexes(the_log()[1].inclusion(4, SIZE))})


def _flip(path: tuple[Any, ...]) -> Mutation:
    def apply(doc: Doc) -> None:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        value = target[path[-1]]
        target[path[-1]] = ("0" if value[0] != "0" else "1") + value[1:]
    return apply


def _content(index: int, value: Any) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["entries"][index]["content"] = value
    return apply


def _salt(index: int) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["entries"][index]["salt"] = salt_of(999).hex()
    return apply


def _resign(key: Any, origin: str = ORIGIN, root: bytes | None = None) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["checkpoint"] = checkpoint_note(SIZE, key, origin, root)
    return apply


def _set(*path: Any, value: Any) -> Mutation:
    def apply(doc: Doc) -> None:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return apply


def _duplicate(index: int) -> Mutation:
    def apply(doc: Doc) -> None:
        doc["entries"].insert(index, copy.deepcopy(doc["entries"][index]))
        if "inclusion" in doc["proof"]:
            doc["proof"]["inclusion"].insert(index, copy.deepcopy(doc["proof"]["inclusion"][index]))
    return apply


def _swap(i: int, j: int) -> Mutation:
    def apply(doc: Doc) -> None:
        entries = doc["entries"]
        entries[i], entries[j] = entries[j], entries[i]
    return apply


def _silently_drop(index: int) -> Mutation:
    def apply(doc: Doc) -> None:
        for name in ("content", "salt"):
            doc["entries"][index].pop(name)
    return apply


def _other_case_log(doc: Doc) -> None:
    """The whole bundle restated as of another log: its checkpoint is still of ours."""
    doc["manifest"]["log"] = OTHER_ORIGIN


R, C = range_bundle, case_bundle
i9 = C1.index(9)  # the document's place in the case bundle
# (attack, bundle, mutation, the first failed check, its seq, other checks that must fail too)
ATTACKS: list[tuple[str, Callable[[], Doc], Mutation, str, int | None, set[str]]] = [
    ("header changed (range)", R, _change_header, "entry_hashes", START + 2, {"proof", "hash_chain"}),
    ("header changed (case)", C, _change_header, "entry_hashes", C1[2], {"proof", "case_chain"}),
    ("header and entry_hash changed (range)", R, _change_header_and_hash, "proof", None, {"hash_chain"}),
    ("header and entry_hash changed (case)", C, _change_header_and_hash, "proof", C1[2], {"case_chain"}),
    ("entry removed from the middle (range)", R, _drop(3), "proof", START + 3, set()),
    ("first entry removed (range)", R, _drop(0), "proof", START, set()),
    ("last entry removed and range shrunk", R, _drop_last_and_shrink, "proof", None, set()),
    ("entry removed from the middle (case)", C, _drop(2), "case_chain", C1[3], set()),
    ("case's first entry removed (case)", C, _drop(0), "case_chain", C1[1], set()),
    ("entry removed, its proof left (case)", C, _drop(2, proofs=False), "proof", C1[2], {"case_chain"}),
    ("entry added after the range", R, _add_next, "scope", END, {"proof"}),
    ("entry added, range and scope grown", R, _add_next_and_grow, "proof", None, set()),
    ("entry of another case added (case)", C, _add_other_case, "scope", 1, set()),
    ("forged entry added to the case", C, _add_forged_to_case, "proof", 4, {"case_chain"}),
    ("range left hash altered", lambda: range_bundle(), _flip(("proof", "range", "left", 0)), "proof", None, set()),
    ("range right hash altered", R, _flip(("proof", "range", "right", -1)), "proof", None, set()),
    ("inclusion proof hash altered", C, _flip(("proof", "inclusion", 3, "proof", 0)), "proof", C1[3], set()),
    ("entry_hash altered", C, _flip(("entries", 3, "entry_hash")), "entry_hashes", C1[3], set()),
    ("content changed", C, _content(1, {"text": "something else", "n": 3, "direction": "inbound"}), "content", C1[1],
     set()),
    ("binary content changed", C, _content(i9, {"base64": base64.b64encode(b"x").decode()}), "content", 9, set()),
    ("content restated as a string", C, _content(1, "message 3"), "content", C1[1], set()),
    ("salt changed", C, _salt(1), "content", C1[1], set()),
    ("content silently dropped", C, _silently_drop(1), "content", C1[1], set()),
    ("checkpoint re-signed by another key", C, _resign(OTHER_KEY), "checkpoint_signature", None, set()),
    ("checkpoint of another root, re-signed", C, _resign(OTHER_KEY, root=hashlib.sha256(b"x").digest()),
     "checkpoint_signature", None, {"proof"}),
    ("checkpoint of another origin under our key", C, _resign(KEY, OTHER_ORIGIN), "checkpoint_signature", None,
     set()),
    ("bundle restated as of another log", C, _other_case_log, "checkpoint_signature", None, {"headers"}),
    ("seq changed", C, _set("entries", 2, "seq", value=C1[2] + 1), "headers", C1[2] + 1, {"proof"}),
    ("seq changed (range)", R, _set("entries", 2, "seq", value=START + 3), "headers", START + 3, {"order", "proof"}),
    ("entry twice (case)", C, _duplicate(2), "order", C1[2], {"proof", "case_chain"}),
    ("entry twice (range)", R, _duplicate(2), "order", START + 2, {"proof"}),
    ("entries swapped", R, _swap(1, 2), "order", START + 1, {"proof", "hash_chain"}),
    ("prev relinked", C, _set("entries", 1, "header", "prev", value="00" * 32), "entry_hashes", C1[1],
     {"proof"}),
    ("header time null", C, _set("entries", 0, "header", "time", value=None), "headers", 0, {"entry_hashes"}),
    ("header not a header", C, _set("entries", 1, "header", value={"v": 1}), "headers", C1[1], {"entry_hashes"}),
    ("inclusion proof twice", C, lambda d: d["proof"]["inclusion"].append(d["proof"]["inclusion"][2]), "proof",
     C1[2], set()),
    ("scope widened to another case", C, _set("manifest", "scope", value={"case": "c-2"}), "scope", C1[0], set()),
    ("seq range narrower than the entries", R, _set("manifest", "scope", "end", value=END - 1), "scope", END - 1,
     set()),
]


@pytest.mark.parametrize(("build", "mutate", "check", "seq", "also"), [a[1:] for a in ATTACKS],
                         ids=[a[0] for a in ATTACKS])
def test_attack_fails_the_named_check(build: Callable[[], Doc], mutate: Mutation, check: str, seq: int | None,
                                      also: set[str]) -> None:
    doc = build()
    assert verify_bundle(copy.deepcopy(doc), TRUST).valid
    mutate(doc)
    with pytest.raises(VerificationError) as raised:
        verify_bundle(copy.deepcopy(doc), TRUST)
    assert not isinstance(raised.value, FormatError) or check == "headers", raised.value
    assert raised.value.fields["check"] == check, raised.value
    if seq is not None:
        assert raised.value.fields["seq"] == seq, raised.value
    result = collected(doc)
    assert not result.valid
    assert result.failed[0].name == check and (seq is None or result.failed[0].seq == seq)
    assert {check} | also <= set(failed(result)), failed(result)
    assert str(raised.value) == result.failed[0].detail or result.failed[0].detail in str(raised.value)


def test_a_header_is_hashed_as_rfc8785_writes_it() -> None:
    """``1.0`` is the number 1: JCS writes ``1``, so the header is the genuine one (as in a receipt)."""
    doc = case_bundle()
    doc["entries"][1]["header"]["v"] = 1.0
    doc["entries"][1]["header"]["seq"] = float(C1[1])
    assert verify_bundle(doc, TRUST).valid
    doc["entries"][1]["header"]["v"] = 1.5
    assert failed(collected(doc)) == {"headers": C1[1], "entry_hashes": C1[1], "proof": C1[1], "case_chain": C1[2]}


def test_a_deep_header_is_a_failed_check_not_a_crash() -> None:
    nested: list[Any] = []
    for _ in range(5000):  # deeper than any encoder recurses
        nested = [nested]
    doc = case_bundle()
    doc["entries"][1]["header"]["case"] = nested
    result = verify_bundle(doc, TRUST, collect=True)
    assert failed(result)["headers"] == C1[1]
    assert "nests deeper" in next(c.detail for c in result.checks if c.name == "headers")


def test_the_signature_failure_is_a_signature_error() -> None:
    doc = case_bundle()
    _resign(OTHER_KEY)(doc)
    with pytest.raises(SignatureError):
        verify_bundle(doc, TRUST)


def test_every_failure_is_counted() -> None:
    doc = case_bundle()
    for entry in doc["entries"][1:4]:
        entry["salt"] = salt_of(999).hex()
    check = next(c for c in collected(doc).checks if c.name == "content")
    assert (check.ok, check.seq, check.failures) == (False, C1[1], 3)


def test_redaction_is_reported_not_failed() -> None:
    doc = case_bundle()
    doc["entries"][1] = {k: v for k, v in doc["entries"][1].items() if k not in ("content", "salt")} | {
        "content": None, "redacted": "erased: subject's keys destroyed"}
    result = verify_bundle(doc, TRUST)
    assert result.valid and result.redacted == (C1[1], REDACTED)


def test_content_left_out_of_a_bundle_without_content_is_absent() -> None:
    doc = case_bundle()
    doc["manifest"]["include_content"] = False
    for entry in doc["entries"]:
        for name in ("content", "salt", "redacted"):
            entry.pop(name, None)
    result = verify_bundle(doc, TRUST)
    assert result.valid and result.content_absent == len(C1) and result.content_verified == 0


def test_subject_and_time_scopes() -> None:
    doc = case_bundle()
    doc["manifest"]["scope"] = {"subject": "s_c-1", "from": "2024-05-01T12:00:00Z", "to": "2024-05-02T00:00:00Z"}
    assert verify_bundle(doc, TRUST).valid
    doc["manifest"]["scope"]["to"] = "2024-05-01T14:00:00.000004+02:00"  # c-1 at 12:00:00.000000, 2, 3, 5, …
    assert failed(collected(doc)) == {"scope": 9}
    doc["manifest"]["scope"] = {"subject": "s_c-2"}
    assert failed(collected(doc)) == {"scope": 0}


def test_anchors_verify_offline_for_this_log() -> None:
    doc = case_bundle() | {"anchors": [anchor_json()]}
    result = verify_bundle(doc, TRUST)
    assert result.valid and len(result.anchors) == 1 and result.anchors[0]["round"]["id"] == 7
    assert "1 anchor receipt verified offline (rounds 7" in next(c.detail for c in result.checks if c.name == "anchors")
    later = case_bundle() | {"anchors": [anchor_json(SIZE - 3)]}  # an anchor of an older checkpoint is fine too
    assert verify_bundle(later, TRUST).valid


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda a: a.update(log=OTHER_ORIGIN), "the anchor is of log"),
    (lambda a: a["round"].update(root="00" * 32), "does not lead to the expected root"),
    (lambda a: a.update(checkpoint=sign_checkpoint(Checkpoint(ORIGIN, SIZE, root_of()), OTHER_KEY)), "no signature"),
    (lambda a: a.update(checkpoint=sign_checkpoint(Checkpoint(ORIGIN, SIZE, hashlib.sha256(b"fork").digest()), KEY)),
     "does not lead"),
], ids=["anchor of another log", "round root altered", "anchored checkpoint by another key", "anchored fork"])
def test_a_bad_anchor_fails_the_anchors_check(mutate: Callable[[Doc], None], message: str) -> None:
    anchor = anchor_json()
    mutate(anchor)
    doc = case_bundle() | {"anchors": [anchor_json(SIZE - 1), anchor]}
    with pytest.raises(VerificationError, match=message) as raised:
        verify_bundle(doc, TRUST)
    assert raised.value.fields["check"] == "anchors" and str(raised.value).startswith("anchors[1]: ")


def test_an_anchor_of_the_same_size_must_have_the_same_root() -> None:
    fork = hashlib.sha256(b"fork").digest()
    tree = build_round([RoundLeaf(ORIGIN, SIZE, fork)])
    anchor = AnchorReceipt(ORIGIN, checkpoint_note(SIZE, root=fork), 8, 1, tree.root.hex(), 0, (), 1,
                           "0x" + "ab" * 20, "0x" + "cd" * 32, 1, "0x" + "ef" * 32)
    doc = case_bundle() | {"anchors": [anchor.to_json()]}
    with pytest.raises(ProofError, match="tree size and another root") as raised:
        verify_bundle(doc, TRUST)
    assert raised.value.fields["check"] == "anchors"


# --- malformed bundles ---------------------------------------------------------------------------


def _without(*path: Any) -> Mutation:
    def apply(doc: Doc) -> None:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
    return apply


def _with(*path: Any, value: Any) -> Mutation:
    return _set(*path, value=value)


MALFORMED: list[tuple[str, Callable[[], Doc], Mutation, str]] = [
    ("unknown type", C, _with("type", value="caseledger.bundles"), "not a caseledger.bundle"),
    ("version 2", C, _with("v", value=2), "unsupported version"),
    ("version true", C, _with("v", value=True), "unsupported version"),
    ("unknown top-level member", C, _with("extra", value=1), "'extra'"),
    *[(f"missing {name}", C, _without(name), f"'{name}' is missing")
      for name in ("manifest", "vkey", "checkpoint", "entries", "proof", "anchors")],
    ("manifest not an object", C, _with("manifest", value=[]), "'manifest'"),
    ("manifest member missing", C, _without("manifest", "generator"), "'manifest.generator' is missing"),
    ("manifest member unknown", C, _with("manifest", "signed", value=True), "'manifest.signed'"),
    ("manifest log empty", C, _with("manifest", "log", value=""), "'manifest.log'"),
    ("scope unknown member", C, _with("manifest", "scope", value={"tenant": "acme"}), "'manifest.scope.tenant'"),
    ("scope not an object", C, _with("manifest", "scope", value="c-1"), "'manifest.scope'"),
    ("scope case not a case id", C, _with("manifest", "scope", value={"case": "c 1"}), "'manifest.scope.case'"),
    ("scope start negative", C, _with("manifest", "scope", value={"start": -1}), "'manifest.scope.start'"),
    ("scope time not RFC 3339", C, _with("manifest", "scope", value={"from": "yesterday"}), "'manifest.scope.from'"),
    ("generated_at without offset", C, _with("manifest", "generated_at", value="2024-06-01T10:00:00"),
     "'manifest.generated_at'"),
    ("generated_at February 30", C, _with("manifest", "generated_at", value="2024-02-30T10:00:00Z"),
     "'manifest.generated_at'"),
    ("exported_by a name", C, _with("manifest", "exported_by", value="Jane Doe"), "'manifest.exported_by'"),
    ("include_content as 1", C, _with("manifest", "include_content", value=1), "'manifest.include_content'"),
    ("redactions not a list", C, _with("manifest", "redactions", value="/entries"), "'manifest.redactions'"),
    ("redaction not a pointer", C, _with("manifest", "redactions", value=["entries/1"]), "'manifest.redactions[0]'"),
    ("redaction with a bad escape", C, _with("manifest", "redactions", value=["/a~2"]), "'manifest.redactions[0]'"),
    ("vkey malformed", C, _with("vkey", value="nope"), "'vkey'"),
    ("checkpoint not a string", C, _with("checkpoint", value=1), "'checkpoint'"),
    ("entries not a list", C, _with("entries", value={}), "'entries'"),
    ("entry not an object", C, _with("entries", 1, value=[]), "'entries[1]': an entry must be a JSON object"),
    ("entry member missing", C, _without("entries", 1, "header"), "'entries[1].header'"),
    ("entry member unknown", C, _with("entries", 1, "note", value="x"), "'entries[1].note'"),
    ("entry seq negative", C, _with("entries", 1, "seq", value=-1), "entries[1].seq"),
    ("entry seq a float", C, _with("entries", 1, "seq", value=3.0), "entries[1].seq"),
    ("entry seq beyond 2^53", C, _with("entries", 1, "seq", value=2**53), "entries[1].seq"),
    ("entry_hash upper case", C, _with("entries", 1, "entry_hash", value="AB" * 32), "entries[1].entry_hash"),
    ("header a string", C, _with("entries", 1, "header", value="{}"), "entries[1].header"),
    ("header too deep", C, _with("entries", 1, "header", "meta", value=json.loads('{"a":' * 70 + "1" + "}" * 70)),
     "entries[1].header"),
    ("content null without a reason", C, _without("entries", 1, "salt"), "entries[1]"),
    ("content without salt", C, _without("entries", 1, "salt"), "entries[1].salt"),
    ("salt too short", C, _with("entries", 1, "salt", value="ab" * 16), "entries[1].salt"),
    ("salt beside redacted content", C, _with("entries", C1.index(REDACTED), "salt", value="ab" * 32),
     "entries[5].salt"),
    ("redacted beside content", C, _with("entries", 1, "redacted", value="why"), "entries[1].redacted"),
    ("redaction reason empty", C, _with("entries", C1.index(REDACTED), "redacted", value=""), "entries[5].redacted"),
    ("content null, no reason", C, _without("entries", C1.index(REDACTED), "redacted"), "entries[5].redacted"),
    ("base64 not canonical", C, _with("entries", i9, "content", value={"base64": "YQ"}), "content.base64"),
    ("base64 not a string", C, _with("entries", i9, "content", value={"base64": 1}), "content.base64"),
    ("content a NaN", C, _with("entries", 1, "content", value=float("nan")), "entries[1].content"),
    ("content too deep", C, _with("entries", 1, "content", value=json.loads("[" * 70 + "]" * 70)),
     "entries[1].content"),
    ("content though not included", C, _with("manifest", "include_content", value=False), "entries[0].content"),
    ("proof empty", C, _with("proof", value={}), "'proof'"),
    ("proof both kinds", C, _with("proof", "range", value={}), "'proof'"),
    ("proof of an unknown kind", C, _with("proof", value={"consistency": []}), "'proof'"),
    ("inclusion not a list", C, _with("proof", "inclusion", value={}), "'proof.inclusion'"),
    ("inclusion member unknown", C, _with("proof", "inclusion", 0, "size", value=3), "'proof.inclusion[0].size'"),
    ("inclusion hash not hex", C, _with("proof", "inclusion", 0, "proof", 0, value="zz" * 32),
     "proof.inclusion[0].proof[0]"),
    ("inclusion proof too long", C, _with("proof", "inclusion", 0, "proof", value=["00" * 32] * 129),
     "proof.inclusion[0].proof"),
    ("range member missing", R, _without("proof", "range", "right"), "'proof.range.right' is missing"),
    ("range empty", R, _with("proof", "range", "end", value=START), "'proof.range.end'"),
    ("range start a bool", R, _with("proof", "range", "start", value=False), "'proof.range.start'"),
    ("range hash a number", R, _with("proof", "range", "left", 0, value=0), "'proof.range.left[0]'"),
    ("anchors not a list", C, _with("anchors", value={}), "'anchors'"),
    ("anchor malformed", C, _with("anchors", value=[{"type": "caseledger.anchor-receipt", "v": 1}]), "anchors[0]"),
]


@pytest.mark.parametrize(("build", "mutate", "named"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_bundles_are_format_errors(build: Callable[[], Doc], mutate: Mutation, named: str) -> None:
    doc = build()
    mutate(doc)
    with pytest.raises(FormatError) as raised:
        Bundle.from_json(doc)
    assert named in str(raised.value), str(raised.value)
    with pytest.raises(FormatError):
        verify_bundle(doc, TRUST, collect=True)
    with pytest.raises(FormatError):
        verify_document(doc, TRUST)


@pytest.mark.parametrize("doc", [None, [], "caseledger.bundle", 1, {}, {"type": "caseledger.bundle", "v": 1}])
def test_not_a_bundle_at_all(doc: Any) -> None:
    with pytest.raises(FormatError):
        Bundle.from_json(doc)


def test_constructing_a_bad_value_is_refused() -> None:
    typed = Bundle.from_json(case_bundle())
    with pytest.raises(FormatError, match="'salt'"):
        BundleEntry(1, "00" * 32, {}, content={"a": 1})
    with pytest.raises(FormatError, match="'proof'"):
        Bundle(typed.manifest, typed.vkey, typed.checkpoint, typed.entries, ("nope",))  # type: ignore[arg-type]
    with pytest.raises(FormatError, match="'entries'"):
        Bundle(typed.manifest, typed.vkey, typed.checkpoint, list(typed.entries), typed.proof)  # type: ignore[arg-type]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3), max_leaves=10)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, the document itself excluded."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


SMALL_RANGE = range_bundle(START, START + 3)
SMALL_CASE = case_bundle() | {"anchors": [anchor_json()]}
SMALL_CASE["entries"] = SMALL_CASE["entries"][:4]
SMALL_CASE["proof"]["inclusion"] = SMALL_CASE["proof"]["inclusion"][:4]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([SMALL_RANGE, SMALL_CASE]), st.data())
def test_any_member_replaced_raises_only_verification_errors(base: Doc, data: st.DataObject) -> None:
    """Any value anywhere replaced by any JSON value, or removed: a FormatError or a failed check, nothing raw."""
    doc = copy.deepcopy(base)
    path = data.draw(st.sampled_from(_paths(doc)))
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    if data.draw(st.booleans()):
        target[path[-1]] = data.draw(JSON)
    elif isinstance(target, dict):
        del target[path[-1]]
    else:
        target.pop(path[-1])
    with contextlib.suppress(FormatError):
        Bundle.from_json(doc)
    with contextlib.suppress(VerificationError):
        result = verify_bundle(doc, TRUST, collect=True)
        assert result.valid == (result.failed == ())
