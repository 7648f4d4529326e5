"""Signed-note checkpoints: round trips, known answers, interop with Go, and every way to break one."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from verification.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    NoteVerifier,
    key_id,
    open_checkpoint,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_note,
)
from verification.errors import FormatError, SignatureError

ORIGIN = "caseledger.local/acme-bank"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
ROOT = hashlib.sha256(b"caseledger known answer").digest()
CP = Checkpoint(ORIGIN, 42, ROOT)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _verifier(name: str = ORIGIN, key: Ed25519PrivateKey = KEY) -> NoteVerifier:
    return parse_verifier_key(verifier_key(name, key.public_key()))


def _sig_line(name: str, kid: bytes, signature: bytes) -> str:
    return f"— {name} {_b64(kid + signature)}\n"


# --- known answers ------------------------------------------------------------------------------

# Computed once with hashlib and cryptography alone (see test_known_answer_by_hand) and pinned, so
# a change in any layer shows up as a diff against fixed text.
KAT_KEY_ID = "d2685567"
KAT_VKEY = "caseledger.local/acme-bank+d2685567+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
KAT_NOTE = (
    "caseledger.local/acme-bank\n"
    "42\n"
    "qwhFoc+Wc2NNMhvVbc4PDsx8nW/LnG/6IMOQOaloRqc=\n"
    "\n"
    "— caseledger.local/acme-bank "
    "0mhVZ5CErV7JqsYFa3GiA9/4nEE970zc3BXwX8lXxvmYXtHgHxjaB9w0o2KxR2YT4KOuc9z0KRgh6RB87aL8QazN0Q8=\n"
)


def test_known_answer_by_hand() -> None:
    """The checkpoint note assembled from the spec with hashlib/cryptography, not our code."""
    public = KEY.public_key().public_bytes_raw()
    body = f"{ORIGIN}\n42\n{_b64(ROOT)}\n"
    kid = hashlib.sha256(ORIGIN.encode() + b"\n" + b"\x01" + public).digest()[:4]
    signature = KEY.sign(body.encode("utf-8"))
    expected = body + "\n" + "\u2014 " + ORIGIN + " " + _b64(kid + signature) + "\n"

    assert kid.hex() == KAT_KEY_ID
    assert expected == KAT_NOTE
    assert ORIGIN + "+" + kid.hex() + "+" + _b64(b"\x01" + public) == KAT_VKEY

    assert CP.body() == body
    assert key_id(ORIGIN, public) == kid
    assert verifier_key(ORIGIN, KEY.public_key()) == KAT_VKEY
    assert sign_checkpoint(CP, KEY) == KAT_NOTE
    assert open_checkpoint(KAT_NOTE, parse_verifier_key(KAT_VKEY)) == CP


# golang.org/x/mod/sumdb/note package documentation: a key pair, a note signed with it, and the
# same note countersigned by a second key. Ed25519 is deterministic, so we must reproduce it.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # from PRIVATE+KEY+PeterNeumann+c74f20a3+…
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann "
    + "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_NOTE_2 = (
    GO_NOTE
    + "— EnochRoot "
    + "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_go_note_interop() -> None:
    peter = parse_verifier_key(GO_VKEY)
    enoch = parse_verifier_key(GO_ENOCH_VKEY)
    assert peter.name == "PeterNeumann" and peter.key_id.hex() == "c74f20a3"
    assert verifier_key(peter.name, peter.public_key) == GO_VKEY
    assert verifier_key(enoch.name, enoch.public_key) == GO_ENOCH_VKEY

    seed = base64.b64decode(GO_SKEY_B64)
    assert seed[0] == 1
    assert sign_note(GO_TEXT, "PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:])) == GO_NOTE

    assert verify_note(GO_NOTE, [peter]) == GO_TEXT
    assert verify_note(GO_NOTE_2, [peter]) == GO_TEXT  # the unknown second signer is ignored
    assert verify_note(GO_NOTE_2, [enoch]) == GO_TEXT
    assert verify_note(GO_NOTE_2, [peter, enoch]) == GO_TEXT
    with pytest.raises(SignatureError):
        verify_note(GO_NOTE, [enoch])
    with pytest.raises(SignatureError):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), [peter])


# --- round trips --------------------------------------------------------------------------------


def test_round_trip() -> None:
    v = _verifier()
    for cp in (CP, Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest()), Checkpoint(ORIGIN, 2**63 - 1, ROOT)):
        note = sign_checkpoint(cp, KEY)
        assert open_checkpoint(note, v) == cp
        assert parse_checkpoint(cp.body()) == cp


def test_extensions_are_preserved() -> None:
    body = CP.body() + "ext one\n— not a signature\n"
    cp = parse_checkpoint(body)
    assert cp.extensions == ("ext one", "— not a signature")
    assert cp.body() == body
    note = sign_note(body, ORIGIN, KEY)
    assert open_checkpoint(note, _verifier()) == cp


@given(
    origin=st.text(
        st.characters(
            min_codepoint=0x21, blacklist_characters="+", blacklist_categories=("Cs", "Zs", "Zl", "Zp")
        ),
        min_size=1,
        max_size=40,
    ).filter(lambda s: not any(c.isspace() for c in s)),
    size=st.integers(0, 2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
)
def test_round_trip_property(origin: str, size: int, root: bytes) -> None:
    cp = Checkpoint(origin, size, root)
    note = sign_checkpoint(cp, KEY)
    assert open_checkpoint(note, _verifier(origin)) == cp


def test_verifier_key_format() -> None:
    vkey = verifier_key(ORIGIN, KEY.public_key())
    match = re.fullmatch(r"([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)", vkey)
    assert match is not None
    name, kid, key = match.groups()
    raw = KEY.public_key().public_bytes_raw()
    assert name == ORIGIN
    assert base64.b64decode(key) == b"\x01" + raw
    assert bytes.fromhex(kid) == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    v = parse_verifier_key(vkey)
    assert v == NoteVerifier(ORIGIN, bytes.fromhex(kid), v.public_key)
    assert v.public_key.public_bytes_raw() == raw
    assert verifier_key(v.name, v.public_key) == vkey


# --- signature failures -------------------------------------------------------------------------


def test_tampered_body() -> None:
    note = sign_checkpoint(CP, KEY)
    with pytest.raises(SignatureError):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), _verifier())
    other_root = _b64(hashlib.sha256(b"other").digest())
    with pytest.raises(SignatureError):
        open_checkpoint(note.replace(_b64(ROOT), other_root), _verifier())


def test_wrong_key() -> None:
    note = sign_checkpoint(CP, OTHER_KEY)  # same name, other key: a different key id, so unknown
    with pytest.raises(SignatureError):
        open_checkpoint(note, _verifier())


def test_wrong_key_id() -> None:
    body = CP.body()
    signature = KEY.sign(body.encode())
    for kid in (b"\x00\x00\x00\x00", bytes.fromhex(KAT_KEY_ID)[::-1]):
        with pytest.raises(SignatureError):
            open_checkpoint(body + "\n" + _sig_line(ORIGIN, kid, signature), _verifier())


def test_known_key_id_with_a_bad_signature() -> None:
    body = CP.body()
    kid = bytes.fromhex(KAT_KEY_ID)
    forged = _sig_line(ORIGIN, kid, OTHER_KEY.sign(body.encode()))
    short = _sig_line(ORIGIN, kid, KEY.sign(body.encode())[:63])
    good = _sig_line(ORIGIN, kid, KEY.sign(body.encode()))
    for lines in ([forged], [short], [good, forged], [forged, good]):
        with pytest.raises(SignatureError):
            verify_note(body + "\n" + "".join(lines), [_verifier()])
    assert verify_note(body + "\n" + good + good, [_verifier()]) == body  # a repeat is harmless


def test_unknown_signer_only() -> None:
    note = sign_note(CP.body(), "witness.example/w1", OTHER_KEY)
    with pytest.raises(SignatureError):
        open_checkpoint(note, _verifier())
    with pytest.raises(SignatureError):
        verify_note(note, [])


def test_unknown_signers_are_ignored() -> None:
    note = sign_checkpoint(CP, KEY)
    witness = sign_note(CP.body(), "witness.example/w1", OTHER_KEY).split("\n\n", 1)[1]
    junk = _sig_line("witness.example/w2", b"\x01\x02\x03\x04", b"x" * 10)
    assert open_checkpoint(CP.body() + "\n" + witness + note.split("\n\n", 1)[1] + junk, _verifier()) == CP


def test_wrong_origin() -> None:
    other = Checkpoint("caseledger.local/other-bank", 42, ROOT)
    note = sign_note(other.body(), ORIGIN, KEY)  # validly signed by our key, for another log
    with pytest.raises(SignatureError):
        open_checkpoint(note, _verifier())


# --- format failures ----------------------------------------------------------------------------


def _set_trailing_bit(blob: str) -> str:
    """Same bytes, non-canonical text: set a padding bit that decoders ignore."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(blob[-2])
    assert last & 3 == 0  # 68 bytes: the last character carries two padding bits
    changed = blob[:-2] + alphabet[last | 1] + "="
    assert base64.b64decode(changed) == base64.b64decode(blob)
    return changed


def _malformed_notes() -> dict[str, str]:
    note = sign_checkpoint(CP, KEY)
    body, sig = note.split("\n\n")
    sig_line = sig + "\n" if not sig.endswith("\n") else sig
    _, _, blob = sig_line.rstrip("\n").partition(ORIGIN + " ")
    return {
        "missing blank line": body + "\n" + sig_line,
        "no signatures": body + "\n\n",
        "trailing garbage": note + "garbage",
        "trailing garbage line": note + "garbage\n",
        "missing final newline": note[:-1],
        "bad base64": note.replace(blob, blob[:-2] + "!="),
        "unpadded base64": note.replace(blob, blob.rstrip("=")),
        "non-canonical base64": note.replace(blob, _set_trailing_bit(blob)),
        "hyphen instead of em dash": note.replace("— ", "- "),
        "no space after dash": note.replace("— ", "—"),
        "missing signature": body + "\n\n— " + ORIGIN + "\n",
        "empty signature": body + "\n\n— " + ORIGIN + " \n",
        "four-byte signature": body + "\n\n— " + ORIGIN + " " + _b64(b"abcd") + "\n",
        "name with plus": body + "\n\n— a+b " + blob + "\n",
        "empty name": body + "\n\n—  " + blob + "\n",
        "carriage return": note.replace("\n", "\r\n"),
        "control character": note.replace("42", "4\x002"),
        "tab": note.replace("— ", "—\t"),
        "lone surrogate": note.replace("42", "4\ud8002"),
        "too many signatures": note + sig_line * MAX_SIGNATURES,
        "empty": "",
        "only newlines": "\n\n",
    }


@pytest.mark.parametrize("case", sorted(_malformed_notes()))
def test_malformed_note(case: str) -> None:
    note = _malformed_notes()[case]
    with pytest.raises(FormatError):
        verify_note(note, [_verifier()])


def test_many_signatures_up_to_the_limit() -> None:
    note = sign_checkpoint(CP, KEY)
    sig_line = note.split("\n\n", 1)[1]
    assert verify_note(note + sig_line * (MAX_SIGNATURES - 1), [_verifier()]) == CP.body()


def test_signed_body_that_is_not_a_checkpoint() -> None:
    root = _b64(ROOT)
    for body in (
        f"{ORIGIN}\n42\n",  # two lines
        f"{ORIGIN}\n042\n{root}\n",  # leading zero
        f"{ORIGIN}\n-1\n{root}\n",
        f"{ORIGIN}\n+1\n{root}\n",
        f"{ORIGIN}\n4_2\n{root}\n",
        f"{ORIGIN}\n\u0664\u0662\n{root}\n",  # Arabic-Indic digits int() would accept
        f"{ORIGIN}\n{2**63}\n{root}\n",
        f"{ORIGIN}\n42\n{_b64(ROOT[:31])}\n",
        f"{ORIGIN}\n42\n{root.rstrip('=')}\n",
        f"{ORIGIN}\n42\n{root}\n\nextension after a blank line\n",
        f"\n42\n{root}\n",
    ):
        note = sign_note(body, ORIGIN, KEY)
        with pytest.raises(FormatError):
            open_checkpoint(note, _verifier())


@pytest.mark.parametrize(
    "body",
    [
        "",
        "a\n1\n",
        "a\n1\nAAAA\n",
        "a\n1\n" + _b64(ROOT),
        "a\n 1\n" + _b64(ROOT) + "\n",
        "a\n1\n" + _b64(ROOT) + "\n\n",
    ],
)
def test_parse_checkpoint_rejects(body: str) -> None:
    with pytest.raises(FormatError):
        parse_checkpoint(body)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        ORIGIN,
        f"{ORIGIN}+{KAT_KEY_ID}",
        KAT_VKEY.replace(KAT_KEY_ID, "d2685568"),  # wrong key id
        KAT_VKEY.replace(KAT_KEY_ID, "d268556"),
        KAT_VKEY.replace(KAT_KEY_ID, "d268556g"),
        KAT_VKEY.replace("+AQOh", "+AgOh"),  # another algorithm byte
        KAT_VKEY[:-4],  # truncated key
        KAT_VKEY + "AAAA",
        KAT_VKEY + "!",
        KAT_VKEY.replace(ORIGIN, "caseledger.local/other"),  # name not bound to this key id
        "bad name+" + KAT_VKEY.split("+", 1)[1],
        "+" + KAT_VKEY.split("+", 1)[1],
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T\u00e9",
    ],
)
def test_parse_verifier_key_rejects(vkey: str) -> None:
    with pytest.raises(FormatError):
        parse_verifier_key(vkey)


@given(st.text(max_size=300))
def test_parsers_raise_only_format_errors(text: str) -> None:
    for parse in (parse_checkpoint, parse_verifier_key):
        with contextlib.suppress(FormatError):
            parse(text)
    with contextlib.suppress(FormatError, SignatureError):
        verify_note(text, [_verifier()])


@given(st.integers(0, len(KAT_NOTE) - 1), st.characters())
def test_any_single_character_change_is_rejected(position: int, char: str) -> None:
    mutated = KAT_NOTE[:position] + char + KAT_NOTE[position + 1 :]
    if mutated == KAT_NOTE:
        return
    with pytest.raises((FormatError, SignatureError)):
        open_checkpoint(mutated, parse_verifier_key(KAT_VKEY))


# --- our own misuse -----------------------------------------------------------------------------


def test_signing_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sign_note("no newline", ORIGIN, KEY)
    with pytest.raises(ValueError):
        sign_note("x\n", "has space", KEY)
    with pytest.raises(ValueError):
        sign_note("x\n", "a+b", KEY)
    with pytest.raises(ValueError):
        sign_note("bell\a\n", ORIGIN, KEY)
    with pytest.raises(ValueError):
        verifier_key("", KEY.public_key())
    with pytest.raises(ValueError):
        key_id(ORIGIN, b"short")
    with pytest.raises(ValueError):
        sign_checkpoint(Checkpoint("has space/log", 1, ROOT), KEY)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 2**63, ROOT, ()),
        (ORIGIN, True, ROOT, ()),
        (ORIGIN, 1, ROOT[:31], ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("two\nlines",)),
    ],
    ids=[
        "empty origin",
        "two-line origin",
        "negative size",
        "size 2^63",
        "bool size",
        "short root",
        "empty extension",
        "two-line extension",
    ],
)
def test_checkpoint_fields_are_checked(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        Checkpoint(origin, size, root, extensions)
