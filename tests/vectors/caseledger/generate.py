"""Write caseledger's own test vectors: entries.json, checkpoints.json, envelopes.json,
segmented-envelopes.json.

Run from anywhere: ``python tests/vectors/caseledger/generate.py``. The output is deterministic
(fixed keys, seeds and nonces; Ed25519 signatures are deterministic), so running it again must
leave the files unchanged; the vector tests check exactly that.

Every expected value is computed here from the specifications (DESIGN §2-§4, RFC 8785, RFC 9162,
C2SP signed-note / tlog-checkpoint) with ``hashlib``, ``rfc8785``, ``cryptography`` and strings
written out by hand, never with caseledger's own ``verification`` or ``ledger`` code, so that the
vectors can catch that code being wrong. Where a value can be written by hand (the JCS text of a
header, an AAD, a note), it is, and the generator asserts that ``rfc8785`` agrees.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = Path(__file__).resolve().parent
ORIGIN = "caseledger.local/acme-bank"
ZERO = "0" * 64
EM_DASH = "\u2014"
ED25519 = b"\x01"  # signed-note signature type of Ed25519

Case = dict[str, Any]


# --- primitives, straight from the specifications --------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def entry_hash(jcs: bytes) -> bytes:
    """DESIGN §2: SHA-256(0x00 ‖ JCS(header)), the RFC 9162 leaf hash."""
    return sha256(b"\x00" + jcs)


def mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle tree hash over leaf hashes."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def q(text: str | None) -> str:
    """A JSON string by hand, for text that needs no escaping; None is null."""
    if text is None:
        return "null"
    assert all(" " <= c < "\x7f" and c not in '"\\' for c in text), text
    return f'"{text}"'


# --- entries.json --------------------------------------------------------------------------------

#: the 16 version-1 header fields in JCS order (all ASCII, so UTF-16 order is byte order)
FIELDS = ("actor", "case", "case_prev", "channel", "commit", "ct", "id", "key", "kind", "log", "meta", "prev",
          "seq", "subject", "time", "v")

# Each positive case: the header fields written by the chain (seq, prev, case_prev) are added below;
# `meta_jcs` is the meta object's JCS text written by hand.
ENTRY_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "first entry of a log: prev is 64 zeros, every optional field null, empty meta",
        {"id": "0b7e4c1e-5f0c-4a52-9a43-000000000000", "time": "2024-05-01T09:00:00.000000Z", "kind": "policy",
         "actor": "service:retention", "case": None, "channel": None, "subject": None, "key": None, "ct": None,
         "commit": None, "meta": {}},
        "{}",
    ),
    (
        "phone interaction opening a case: case_prev null, encrypted content (key, ct), plain ASCII meta",
        {"id": "6f1d2c3b-4a59-4687-b7c8-d9e0f1a2b3c4", "time": "2024-05-01T09:15:02.250000Z",
         "kind": "interaction", "actor": "user:agent-17", "case": "case-1001", "channel": "phone",
         "subject": "s_3f9a0c1d2e4b", "key": "dk_00112233445566778899", "ct": sha256(b"envelope 1").hex(),
         "commit": None, "meta": {"direction": "inbound", "duration_s": 312}},
        '{"direction":"inbound","duration_s":312}',
    ),
    (
        "document in the same case: case_prev links to entry 1, salted commitment, non-ASCII meta as raw UTF-8",
        {"id": "a2b3c4d5-e6f7-4809-9a1b-2c3d4e5f6071", "time": "2024-05-01T09:20:00.000001Z", "kind": "document",
         "actor": "user:agent-17", "case": "case-1001", "channel": "email", "subject": "s_3f9a0c1d2e4b",
         "key": "dk_00112233445566778899", "ct": sha256(b"envelope 2").hex(),
         "commit": sha256(b"\x5a" * 32 + b"document 2").hex(),
         "meta": {"label": "K\u00fcndigung \u2013 \u89e3\u7d04 \U0001f4c4", "pages": 2}},
        '{"label":"K\u00fcndigung \u2013 \u89e3\u7d04 \U0001f4c4","pages":2}',
    ),
    (
        "JSON escapes in meta: quote, backslash, short escapes, \\u00XX for other controls (lower-case hex); "
        "solidus, DEL and U+2028 stay raw",
        {"id": "c4d5e6f7-0819-4a2b-8c3d-4e5f60718293", "time": "2024-05-01T09:20:00.000001Z", "kind": "access",
         "actor": "service:export", "case": None, "channel": "api", "subject": None, "key": None, "ct": None,
         "commit": None,
         "meta": {"text": 'q" b\\ s/ t\t n\n r\r b\b f\f z\x00 u\x1f d\x7f ls\u2028'}},
        '{"text":"q\\" b\\\\ s/ t\\t n\\n r\\r b\\b f\\f z\\u0000 u\\u001f d\x7f ls\u2028"}',
    ),
    (
        "key order by UTF-16 code units (U+1F600 is D83D DE00 and sorts before U+FB01), nested objects and "
        "arrays, integers at the I-JSON limit",
        {"id": "d5e6f708-192a-4b3c-9d4e-5f6071829304", "time": "2024-05-01T10:00:00.000000Z", "kind": "interaction",
         "actor": "user:agent-4", "case": "crm:2024/77", "channel": "chat", "subject": "s_77aa", "key": None,
         "ct": None, "commit": None,
         "meta": {"\ufb01": "ligature", "\U0001f600": "astral", "\u00e9": "e-acute", "z": {"b": [1, True, None, "x",
                  {"d": -1, "c": []}], "a": {}}, "a": 9007199254740991, "A": 0, "-": -9007199254740991}},
        '{"-":-9007199254740991,"A":0,"a":9007199254740991,"z":{"a":{},"b":[1,true,null,"x",{"c":[],"d":-1}]},'
        '"\u00e9":"e-acute","\U0001f600":"astral","\ufb01":"ligature"}',
    ),
    (
        "numbers in meta in ECMAScript form (RFC 8785 §3.2.2.3): 100.0 is 100, -0.0 is 0, 1e21 is 1e+21, "
        "1e16 is 10000000000000000 (read it back as a double, not an out-of-range integer)",
        {"id": "e6f70819-2a3b-4c4d-8e5f-607182930415", "time": "2024-05-01T10:00:00.000000Z", "kind": "policy",
         "actor": "service:retention", "case": None, "channel": None, "subject": None, "key": None, "ct": None,
         "commit": None,
         "meta": {"float_int": 100.0, "neg_zero": -0.0, "big": 1e21, "e16": 1e16, "tiny": 1e-7, "tenth": 0.1,
                  "half": -0.5, "int": 42}},
        '{"big":1e+21,"e16":10000000000000000,"float_int":100,"half":-0.5,"int":42,"neg_zero":0,'
        '"tenth":0.1,"tiny":1e-7}',
    ),
    (
        "chat in case-1001 with the same time as the entry before (times are non-decreasing): case_prev links "
        "to entry 2",
        {"id": "f7081929-3a4b-4d5e-9f60-718293041526", "time": "2024-05-01T10:00:00.000000Z", "kind": "interaction",
         "actor": "user:agent-17", "case": "case-1001", "channel": "chat", "subject": "s_3f9a0c1d2e4b",
         "key": "dk_00112233445566778899", "ct": sha256(b"envelope 6").hex(), "commit": None,
         "meta": {"direction": "outbound"}},
        '{"direction":"outbound"}',
    ),
    (
        "in-person visit in a second case: case_prev null again, empty-string subject is a string, not null",
        {"id": "08192a3b-4c5d-4e6f-8071-829304152637", "time": "2024-05-02T08:30:59.999999Z", "kind": "interaction",
         "actor": "user:agent-2", "case": "case-1002", "channel": "in_person", "subject": "", "key": None,
         "ct": None, "commit": None, "meta": {"branch": "ZH-01"}},
        '{"branch":"ZH-01"}',
    ),
]


def hand_jcs(header: dict[str, Any], meta_jcs: str) -> str:
    """The header's JCS text, written out field by field."""
    parts = []
    for name in FIELDS:
        value = header[name]
        if name == "meta":
            text = meta_jcs
        elif name in ("seq", "v"):
            text = str(value)
        else:
            text = q(value)
        parts.append(f'"{name}":{text}')
    return "{" + ",".join(parts) + "}"


def entries() -> tuple[list[Case], list[bytes]]:
    cases: list[Case] = []
    leaves: list[bytes] = []
    prev = ZERO
    case_heads: dict[str, str] = {}
    for seq, (desc, fields, meta_jcs) in enumerate(ENTRY_CASES):
        header = {"v": 1, "log": ORIGIN, "seq": seq, **fields, "prev": prev,
                  "case_prev": case_heads.get(fields["case"]) if fields["case"] is not None else None}
        header = {name: header[name] for name in FIELDS}  # readable order in the file: JCS order
        text = hand_jcs(header, meta_jcs)
        jcs = text.encode("utf-8")
        assert rfc8785.dumps(header) == jcs, (desc, rfc8785.dumps(header), jcs)
        digest = entry_hash(jcs)
        cases.append({"desc": f"entry {seq}: {desc}", "header": header, "jcs": text, "entry_hash": digest.hex(),
                      "wantErr": False})
        leaves.append(digest)
        prev = digest.hex()
        if header["case"] is not None:
            case_heads[header["case"]] = prev

    def mutated(index: int, desc: str, old: str, new: str) -> Case:
        text = str(cases[index]["jcs"])
        assert text.count(old) >= 1, (old, text)
        return {"desc": desc, "jcs": text.replace(old, new, 1), "wantErr": True}

    def canonical_but_invalid(index: int, desc: str, **changes: Any) -> Case:
        header = dict(cases[index]["header"])
        for name, value in changes.items():
            if value is _DELETE:
                del header[name]
            else:
                header[name] = value
        return {"desc": desc, "jcs": rfc8785.dumps(header).decode("utf-8"), "wantErr": True}

    base = str(cases[1]["jcs"])
    base_header: dict[str, Any] = cases[1]["header"]
    negatives = [
        mutated(1, "non-canonical: whitespace after a separator", '"actor":', '"actor": '),
        {"desc": "non-canonical: members not sorted (v first)",
         "jcs": '{"v":1,' + base[1:].replace(',"v":1}', "}"), "wantErr": True},
        mutated(2, "non-canonical: non-ASCII written as a \\u escape", "K\u00fcndigung", "K\\u00fcndigung"),
        mutated(1, "non-canonical: escaped solidus", "caseledger.local/", "caseledger.local\\/"),
        mutated(3, "non-canonical: upper-case hex in a \\u escape", "\\u001f", "\\u001F"),
        mutated(3, "non-canonical: DEL escaped", "\x7f", "\\u007f"),
        mutated(5, "non-canonical: exponent written in upper case", "1e+21", "1E+21"),
        mutated(5, "non-canonical: integral number with a fraction", '"int":42', '"int":42.0'),
        {"desc": "non-canonical: trailing newline", "jcs": base + "\n", "wantErr": True},
        mutated(1, "non-canonical: duplicate member", '"v":1', '"v":1,"v":1'),
        mutated(1, "non-canonical: integer that is not a double (2^53 + 1)", '"duration_s":312',
                '"duration_s":9007199254740993'),
        mutated(1, "invalid JSON: truncated", base, base[:-1]),
        canonical_but_invalid(1, "invalid header: version 2", v=2),
        canonical_but_invalid(1, "invalid header: version true", v=True),
        canonical_but_invalid(1, "invalid header: field meta missing", meta=_DELETE),
        canonical_but_invalid(1, "invalid header: unknown field", extra="x"),
        canonical_but_invalid(1, "invalid header: seq negative", seq=-1),
        canonical_but_invalid(1, "invalid header: prev in upper-case hex", prev=base_header["prev"].upper()),
        canonical_but_invalid(1, "invalid header: ct not 64 hex digits", ct="ab" * 31),
        canonical_but_invalid(1, "invalid header: id an upper-case UUID", id=base_header["id"].upper()),
        canonical_but_invalid(1, "invalid header: time without microseconds", time="2024-05-01T09:15:02Z"),
        canonical_but_invalid(1, "invalid header: time with an offset", time="2024-05-01T09:15:02.250000+00:00"),
        canonical_but_invalid(1, "invalid header: time on a day that does not exist",
                              time="2024-02-30T09:15:02.250000Z"),
        canonical_but_invalid(1, "invalid header: time in non-ASCII digits",
                              time="\u0662\u0660\u0662\u0664-05-01T09:15:02.250000Z"),
        canonical_but_invalid(1, "invalid header: unknown channel", channel="fax"),
        canonical_but_invalid(1, "invalid header: meta not an object", meta=["inbound"]),
        canonical_but_invalid(1, "invalid header: kind empty", kind=""),
    ]
    for case in negatives:
        assert all(case["jcs"] != other["jcs"] for other in cases), case["desc"]
    return cases + negatives, leaves


class _Delete:
    pass


_DELETE: Any = _Delete()


# --- checkpoints.json ----------------------------------------------------------------------------


def key_id(name: str, public: bytes) -> bytes:
    """signed-note Ed25519 key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]."""
    return sha256(name.encode("utf-8") + b"\n" + ED25519 + public)[:4]


def signed_note(body: str, name: str, key: Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes_raw()
    signature = key.sign(body.encode("utf-8"))
    return f"{body}\n{EM_DASH} {name} {b64(key_id(name, public) + signature)}\n"


def checkpoints(entry_leaves: Sequence[bytes]) -> list[Case]:
    def positive(desc: str, seed: bytes, origin: str, size: int, root: bytes) -> Case:
        key = Ed25519PrivateKey.from_private_bytes(seed)
        public = key.public_key().public_bytes_raw()
        body = f"{origin}\n{size}\n{b64(root)}\n"
        kid = key_id(origin, public)
        vkey = f"{origin}+{kid.hex()}+{b64(ED25519 + public)}"
        return {"desc": desc, "seed": seed.hex(), "origin": origin, "size": size, "root": root.hex(),
                "note": signed_note(body, origin, key), "key_id": kid.hex(),
                "vkey": vkey, "wantErr": False}

    seed_a = bytes(range(32))
    seed_b = sha256(b"caseledger vector key b")
    cases = [
        positive("empty log: size 0, root is SHA-256 of the empty string", seed_a, ORIGIN, 0, sha256(b"")),
        positive("size 1: the root is the entry hash of entries.json entry 0", seed_a, ORIGIN, 1, entry_leaves[0]),
        positive(f"size {len(entry_leaves)}: the RFC 9162 root of all entries.json entries", seed_a, ORIGIN,
                 len(entry_leaves), mth(entry_leaves)),
        positive("largest size, 2^63 - 1", seed_b, ORIGIN, 2**63 - 1, sha256(b"caseledger vector root")),
        positive("origin (and key name) with non-ASCII characters, hashed as UTF-8",
                 seed_b, "caseledger.local/z\u00fcrich-kantonalbank", 42, sha256("z\u00fcrich".encode())),
    ]

    good = cases[2]
    key_a = Ed25519PrivateKey.from_private_bytes(seed_a)
    key_b = Ed25519PrivateKey.from_private_bytes(seed_b)
    note = str(good["note"])
    body, sig_line = note.split("\n\n")
    size = good["size"]

    def negative(desc: str, bad_note: str) -> Case:
        assert bad_note != note
        return {"desc": desc, "origin": ORIGIN, "vkey": good["vkey"], "note": bad_note, "wantErr": True}

    sig_blob = bytearray(base64.b64decode(sig_line.rsplit(" ", 1)[1].strip(), validate=True))
    sig_blob[-1] ^= 0x01
    other_root = b64(sha256(b"another root"))
    url_safe_root = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    negatives = [
        negative("body edited: size changed", note.replace(f"\n{size}\n", f"\n{size + 1}\n", 1)),
        negative("body edited: root changed", note.replace(b64(mth(entry_leaves)), other_root, 1)),
        negative("signature bit flipped", f"{body}\n\n{EM_DASH} {ORIGIN} {b64(bytes(sig_blob))}\n"),
        negative("signed by another key under the same name", signed_note(body + "\n", ORIGIN, key_b)),
        negative("checkpoint of another origin signed with this log's key and name",
                 signed_note(body.replace(ORIGIN, "caseledger.local/other-bank", 1) + "\n", ORIGIN, key_a)),
        negative("no signature line", body + "\n"),
        negative("signature line starts with a hyphen, not U+2014", note.replace(EM_DASH, "-", 1)),
        negative("no final newline", note[:-1]),
        negative("size with a leading zero (validly signed)",
                 signed_note(body.replace(f"\n{size}\n", f"\n0{size}\n", 1) + "\n", ORIGIN, key_a)),
        negative("root of 31 bytes (validly signed)",
                 signed_note(f"{ORIGIN}\n{size}\n{b64(mth(entry_leaves)[:31])}\n", ORIGIN, key_a)),
        negative("root in URL-safe base64 (validly signed)",
                 signed_note(f"{ORIGIN}\n{size}\n{url_safe_root}\n", ORIGIN, key_a)),
    ]
    return cases + negatives


# --- envelopes.json ------------------------------------------------------------------------------


def content_aad(log: str, entry_id: str, key_id: str) -> str:
    """DESIGN §4: AAD = JCS({"log","id","key"}); members in order id, key, log."""
    text = '{"id":' + q(entry_id) + ',"key":' + q(key_id) + ',"log":"' + log + '"}'
    assert rfc8785.dumps({"log": log, "id": entry_id, "key": key_id}) == text.encode("utf-8")
    return text


def envelopes() -> list[Case]:
    def positive(desc: str, key: bytes, log: str, entry_id: str, kid: str, nonce: bytes, plaintext: bytes) -> Case:
        aad = content_aad(log, entry_id, kid)
        envelope = b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext, aad.encode("utf-8"))
        return {"desc": desc, "key": key.hex(), "log": log, "id": entry_id, "key_id": kid, "nonce": nonce.hex(),
                "plaintext": plaintext.hex(), "aad": aad, "envelope": envelope.hex(), "wantErr": False}

    key_1 = sha256(b"caseledger vector data key 1")
    key_2 = bytes(range(32))
    salt = sha256(b"caseledger vector salt")
    cases = [
        positive("empty plaintext: the envelope is version, nonce and the 16-byte tag", key_1, ORIGIN,
                 "6f1d2c3b-4a59-4687-b7c8-d9e0f1a2b3c4", "dk_00112233445566778899", bytes(12), b""),
        positive("short ASCII content", key_1, ORIGIN, "a2b3c4d5-e6f7-4809-9a1b-2c3d4e5f6071",
                 "dk_00112233445566778899", bytes.fromhex("000102030405060708090a0b"), b"call back tomorrow"),
        positive("content as the ledger seals it: 32-byte salt followed by UTF-8 text (commit = SHA-256 of the "
                 "same bytes)", key_2, ORIGIN, "f7081929-3a4b-4d5e-9f60-718293041526", "dk_aabbccddeeff00112233",
                 bytes.fromhex("ffffffffffffffffffffffff"),
                 salt + "Gr\u00fcezi, ich m\u00f6chte mein Konto k\u00fcndigen. \U0001f64f".encode()),
        positive("log with non-ASCII characters: the AAD holds them as raw UTF-8", key_2,
                 "caseledger.local/z\u00fcrich-kantonalbank", "08192a3b-4c5d-4e6f-8071-829304152637",
                 "dk_99887766554433221100", bytes.fromhex("0123456789abcdef01234567"), bytes(range(256))),
    ]

    good = cases[1]
    envelope = bytes.fromhex(str(good["envelope"]))

    def negative(desc: str, **changes: Any) -> Case:
        case = {**good, "desc": desc, "wantErr": True, **changes}
        case["aad"] = content_aad(case["log"], case["id"], case["key_id"])
        assert case != {**good, "desc": desc, "wantErr": True}
        return case

    def flip(data: bytes, index: int) -> str:
        raw = bytearray(data)
        raw[index] ^= 0x01
        return bytes(raw).hex()

    return [
        *cases,
        negative("tag bit flipped", envelope=flip(envelope, -1)),
        negative("ciphertext bit flipped", envelope=flip(envelope, 13)),
        negative("nonce bit flipped", envelope=flip(envelope, 1)),
        negative("unknown version byte 0x02", envelope="02" + envelope[1:].hex()),
        negative("truncated below version, nonce and tag", envelope=envelope[:28].hex()),
        negative("moved to another entry: id differs", id="c4d5e6f7-0819-4a2b-8c3d-4e5f60718293"),
        negative("moved to another log", log="caseledger.local/other-bank"),
        negative("moved to another data key id", key_id="dk_ffffffffffffffffffff"),
        negative("another data key", key=key_2.hex()),
    ]


# --- segmented-envelopes.json --------------------------------------------------------------------

SEGMENT = 65_536  # DESIGN §4: plaintext bytes in every segment but the last


def seal_segments(key: bytes, prefix: bytes, aad: bytes, segments: Sequence[tuple[int, bool, bytes]]) -> bytes:
    """0x02 ‖ prefix ‖ each (index, last, plaintext) sealed under nonce prefix ‖ uint32_be(index) ‖ last.

    Taking the index and flag per segment lets the negative cases build the envelopes a faulty or
    hostile writer would."""
    out = [b"\x02", prefix]
    for index, last, plaintext in segments:
        nonce = prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        out.append(AESGCM(key).encrypt(nonce, plaintext, aad))
    return b"".join(out)


def split(plaintext: bytes) -> list[tuple[int, bool, bytes]]:
    """Segments of exactly SEGMENT bytes, the last holding the rest (1..SEGMENT, or 0 for empty input)."""
    pieces = [plaintext[start : start + SEGMENT] for start in range(0, len(plaintext), SEGMENT)] or [b""]
    return [(index, index == len(pieces) - 1, piece) for index, piece in enumerate(pieces)]


def segmented_envelopes() -> list[Case]:
    key = sha256(b"caseledger vector segmented data key")
    log, entry_id, kid = ORIGIN, "a2b3c4d5-e6f7-4809-9a1b-2c3d4e5f6071", "dk_00112233445566778899"
    aad = content_aad(log, entry_id, kid)

    def positive(desc: str, prefix: bytes, plaintext: bytes, repeat: tuple[int, int] | None = None) -> Case:
        segments = split(plaintext)
        envelope = seal_segments(key, prefix, aad.encode("utf-8"), segments)
        # the tag closes each stored segment: offsets straight from the layout
        ends = [8 + sum(len(p) + 16 for _, _, p in segments[: i + 1]) for i in range(len(segments))]
        case: Case = {"desc": desc, "key": key.hex(), "log": log, "id": entry_id, "key_id": kid, "aad": aad,
                      "prefix": prefix.hex()}
        if repeat is None:
            case["plaintext"] = plaintext.hex()
        else:
            assert plaintext == bytes([repeat[0]]) * repeat[1]
            case["plaintext_repeat"] = {"byte": f"{repeat[0]:02x}", "count": repeat[1]}
        case.update({"plaintext_size": len(plaintext), "segments": len(segments),
                     "tags": [envelope[end - 16 : end].hex() for end in ends],
                     "envelope_size": len(envelope), "envelope_sha256": sha256(envelope).hex()})
        if len(envelope) <= 256:
            case["envelope"] = envelope.hex()
        case["wantErr"] = False
        return case

    prefix_1 = bytes.fromhex("00010203040506")
    short = b"statement for May"
    cases = [
        positive("empty file: one empty final segment, the envelope is version, prefix and one tag",
                 bytes(7), b""),
        positive("short file: one final segment", prefix_1, short),
        positive("exactly one full segment: it is the final one (no empty segment after it)", prefix_1,
                 b"\x61" * SEGMENT, (0x61, SEGMENT)),
        positive("one byte more than a segment: a full segment, then a final one of 1 byte",
                 bytes.fromhex("fffefdfcfbfaf9"), b"\x62" * (SEGMENT + 1), (0x62, SEGMENT + 1)),
        positive("exactly two full segments, the second final", prefix_1, b"\x63" * (2 * SEGMENT),
                 (0x63, 2 * SEGMENT)),
        positive("three segments, the last holding 1 byte", prefix_1, b"\x64" * (2 * SEGMENT + 1),
                 (0x64, 2 * SEGMENT + 1)),
    ]

    good = cases[1]
    envelope = bytes.fromhex(str(good["envelope"]))
    raw_aad = aad.encode("utf-8")

    def negative(desc: str, bad: bytes, **changes: Any) -> Case:
        case: Case = {"desc": desc, "key": key.hex(), "log": log, "id": entry_id, "key_id": kid, **changes}
        case["aad"] = content_aad(case["log"], case["id"], case["key_id"])
        case["envelope"] = bad.hex()
        case["wantErr"] = True
        assert bad != envelope or case["aad"] != aad or case["key"] != key.hex(), desc
        return case

    def flip(index: int) -> bytes:
        raw = bytearray(envelope)
        raw[index] ^= 0x01
        return bytes(raw)

    return [
        *cases,
        negative("version byte 0x01 (the single-shot envelope's)", b"\x01" + envelope[1:]),
        negative("unknown version byte 0x03", b"\x03" + envelope[1:]),
        negative("prefix bit flipped", flip(1)),
        negative("ciphertext bit flipped", flip(8)),
        negative("tag bit flipped", flip(-1)),
        negative("truncated by one byte", envelope[:-1]),
        negative("one byte appended", envelope + b"\x00"),
        negative("header only: no segment at all", envelope[:8]),
        negative("header cut short", envelope[:5]),
        negative("final segment shorter than a tag", envelope[:8 + 15]),
        negative("the stream was cut after its segment: sealed with the last flag clear",
                 seal_segments(key, prefix_1, raw_aad, [(0, False, short)])),
        negative("segment 0 dropped: the only segment is segment 1",
                 seal_segments(key, prefix_1, raw_aad, [(1, True, short)])),
        negative("a short non-final segment and an empty final one (boundaries are fixed: one bad final segment)",
                 seal_segments(key, prefix_1, raw_aad, [(0, False, short), (1, True, b"")])),
        negative("moved to another entry: id differs", envelope, id="c4d5e6f7-0819-4a2b-8c3d-4e5f60718293"),
        negative("moved to another log", envelope, log="caseledger.local/other-bank"),
        negative("moved to another data key id", envelope, key_id="dk_ffffffffffffffffffff"),
        negative("another data key", envelope, key=bytes(range(32)).hex()),
    ]


# --- output --------------------------------------------------------------------------------------


def build() -> dict[str, list[Case]]:
    entry_cases, leaves = entries()
    return {"entries.json": entry_cases, "checkpoints.json": checkpoints(leaves), "envelopes.json": envelopes(),
            "segmented-envelopes.json": segmented_envelopes()}


def render(cases: list[Case]) -> str:
    return json.dumps(cases, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, cases in build().items():
        (HERE / name).write_text(render(cases), encoding="utf-8")
        print(f"wrote {len(cases)} cases to {HERE / name}")


if __name__ == "__main__":
    main()
