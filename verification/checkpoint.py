"""Checkpoints: C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes (DESIGN §3).

A checkpoint body is ``<origin>\\n<size>\\n<base64 root>\\n`` plus optional, opaque extension
lines that we preserve on parse but never write. The note is the body, a blank line, then one
line per signature: ``— <key name> <base64(4-byte key id ‖ 64-byte Ed25519 signature)>``, the
signature being over the body's UTF-8 bytes. key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4];
verifier keys read ``<name>+<8 hex key id>+<base64(0x01 ‖ public key)>``. Our output is what Go's
``golang.org/x/mod/sumdb/note`` writes, byte for byte.

Layers (STYLE §9): :func:`verify_note` parses the envelope and checks signatures against known
keys, :func:`parse_checkpoint` parses the body, :func:`open_checkpoint` does both and binds the
origin to the key. Root comparison is the caller's. Malformed input raises :class:`FormatError`,
a signature problem :class:`SignatureError`; no parser exception escapes. Building our own
notes with invalid arguments (a bad key name, a body not ending in newline) is a programming
error and raises ``ValueError``.

Ed25519 signatures are deterministic, so signing needs neither clock nor randomness.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verification.errors import FormatError, SignatureError

__all__ = [
    "ED25519_ALGORITHM",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteVerifier",
    "key_id",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
    "verify_note",
]

#: signed-note signature type byte of plain Ed25519
ED25519_ALGORITHM = b"\x01"
#: signed-note asks verifiers for a limit of at least 16; Go's note package uses 100
MAX_SIGNATURES = 100

_SIG_PREFIX = "— "  # U+2014 EM DASH, space
_KEY_ID_SIZE = 4
_PUBLIC_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_ROOT_SIZE = 32
_MAX_TREE_SIZE = 2**63 - 1  # tlog sizes are int64
_SIZE_LINE = re.compile(r"0|[1-9][0-9]{0,18}")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


# --- small helpers ------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4, padded, canonical) or FormatError."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise FormatError(f"{what} is not valid base64") from exc
    if _b64encode(data) != text:
        raise FormatError(f"{what} is not canonical base64")
    return data


def _is_valid_name(name: str) -> bool:
    """signed-note key names: non-empty, no Unicode spaces, no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _has_control(text: str) -> bool:
    """signed-note forbids ASCII control characters other than newline."""
    return any(c < " " and c != "\n" for c in text)


def _is_line(text: str) -> bool:
    """One line of note text: no newline, no other control character."""
    return "\n" not in text and not _has_control(text)


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeError as exc:
        raise FormatError(f"{what} is not valid UTF-8") from exc


# --- checkpoint body (c2sp.org/tlog-checkpoint) -------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its size and RFC 9162 root (c2sp.org/tlog-checkpoint).

    Construction checks the fields so that :meth:`body` always yields a parseable body:
    ``ValueError`` for an empty origin or one with newlines or control characters, a size outside
    [0, 2^63), a root that is not 32 bytes, or an empty/multi-line extension.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or not _is_line(self.origin):
            raise ValueError(f"invalid checkpoint origin {self.origin!r}")
        if type(self.size) is not int or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise ValueError(f"invalid tree size {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != _ROOT_SIZE:
            raise ValueError(f"a checkpoint root is {_ROOT_SIZE} bytes")
        for line in self.extensions:
            if not line or not _is_line(line):
                raise ValueError(f"invalid extension line {line!r}")

    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in newline."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (c2sp.org/tlog-checkpoint "Note text").

    At least three non-empty lines, each ending in newline: origin, decimal size without leading
    zeros, standard padded base64 of a 32-byte root; any further lines are kept as extensions.
    Raises :class:`FormatError` on anything else. This does not check any signature.
    """
    if not isinstance(body, str) or not body.endswith("\n"):
        raise FormatError("checkpoint body must end in a newline")
    if _has_control(body):
        raise FormatError("checkpoint body contains control characters")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError(f"checkpoint body has {len(lines)} lines, needs at least 3")
    if any(not line for line in lines):
        raise FormatError("checkpoint body has an empty line")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE_LINE.fullmatch(size_text):
        raise FormatError(f"checkpoint size {size_text!r} is not a decimal without leading zeros")
    root = _b64decode(root_text, "checkpoint root")
    if len(root) != _ROOT_SIZE:
        raise FormatError(f"checkpoint root is {len(root)} bytes, expected {_ROOT_SIZE}")
    try:
        return Checkpoint(origin, int(size_text), root, tuple(extensions))
    except ValueError as exc:
        raise FormatError(f"invalid checkpoint: {exc}") from exc


# --- keys ---------------------------------------------------------------------------------------


def key_id(name: str, public_key_bytes: bytes) -> bytes:
    """signed-note Ed25519 key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]."""
    if len(public_key_bytes) != _PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {_PUBLIC_KEY_SIZE} bytes")
    material = name.encode("utf-8") + b"\n" + ED25519_ALGORITHM + public_key_bytes
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


@dataclass(frozen=True)
class NoteVerifier:
    """A known note key: signatures count only when both ``name`` and ``key_id`` match."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """Verifier key text for ``public_key`` under key ``name`` (``ValueError`` for a bad name)."""
    if not _is_valid_name(name):
        raise ValueError(f"invalid note key name {name!r}")
    raw = public_key.public_bytes_raw()
    return f"{name}+{key_id(name, raw).hex()}+{_b64encode(ED25519_ALGORITHM + raw)}"


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse ``<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte key)>`` and check the key id.

    Like Go's ``note.NewVerifier``, upper-case hex is accepted; :func:`verifier_key` writes lower case.

    Raises :class:`FormatError` for anything malformed, another algorithm, or a key id that is
    not the one the name and key produce.
    """
    if not isinstance(vkey, str):
        raise FormatError("verifier key must be text")
    name, sep1, rest = vkey.partition("+")
    id_hex, sep2, key_b64 = rest.partition("+")
    if not sep1 or not sep2 or not _is_valid_name(name) or not _HEX_KEY_ID.fullmatch(id_hex):
        raise FormatError("malformed verifier key")
    key = _b64decode(key_b64, "verifier key")
    if len(key) != 1 + _PUBLIC_KEY_SIZE or key[:1] != ED25519_ALGORITHM:
        raise FormatError("verifier key is not an Ed25519 key")
    raw = key[1:]
    kid = bytes.fromhex(id_hex)
    if kid != key_id(name, raw):
        raise FormatError("verifier key id does not match its name and key")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise FormatError("verifier key is not a valid Ed25519 key") from exc
    return NoteVerifier(name, kid, public_key)


# --- signed notes (c2sp.org/signed-note) ----------------------------------------------------------


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``body`` as a signed note with one Ed25519 signature line under key ``name``.

    ``body`` must end in newline and contain no control characters but newlines; ``name`` must be
    a valid key name. ``ValueError`` otherwise.
    """
    if not body.endswith("\n") or _has_control(body):
        raise ValueError("note text must end in a newline and contain no control characters")
    if not _is_valid_name(name):
        raise ValueError(f"invalid note key name {name!r}")
    try:
        message = body.encode("utf-8")
    except UnicodeError as exc:
        raise ValueError("note text is not valid UTF-8") from exc
    kid = key_id(name, private_key.public_key().public_bytes_raw())
    signature = private_key.sign(message)
    return f"{body}\n{_SIG_PREFIX}{name} {_b64encode(kid + signature)}\n"


def verify_note(note: str, verifiers: Sequence[NoteVerifier]) -> str:
    """Open a signed note and return its text once a known key's signature verifies.

    Follows c2sp.org/signed-note and Go's ``note.Open``: the note is valid UTF-8 without control
    characters other than newline; the text is everything up to and including the newline before
    the *last* blank line; every line after it is a signature line, the note ends in newline, and
    there are at most :data:`MAX_SIGNATURES` of them (:class:`FormatError` otherwise).
    Signatures whose (name, key id) match no verifier are ignored. Every signature from a known
    key must verify, and at least one must be present (:class:`SignatureError` otherwise).
    """
    if not isinstance(note, str):
        raise FormatError("signed note must be text")
    _utf8(note, "signed note")
    if _has_control(note):
        raise FormatError("signed note contains control characters")
    split = note.rfind("\n\n")
    if split < 0:
        raise FormatError("signed note has no blank line before its signatures")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise FormatError("signed note must end in a signature line and a newline")

    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode("utf-8")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"signed note has {len(lines)} signatures, at most {MAX_SIGNATURES} allowed")
    verified = 0
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise FormatError("malformed signature line")
        name, _, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not _is_valid_name(name) or not sig_b64:
            raise FormatError("malformed signature line")
        blob = _b64decode(sig_b64, "signature")
        if len(blob) <= _KEY_ID_SIZE:
            raise FormatError("signature is too short")
        kid, signature = blob[:_KEY_ID_SIZE], blob[_KEY_ID_SIZE:]
        verifier = known.get((name, kid))
        if verifier is None:
            continue  # c2sp.org/signed-note: verifiers MUST ignore unknown keys
        try:
            if len(signature) != _SIGNATURE_SIZE:
                raise InvalidSignature
            verifier.public_key.verify(signature, message)
        except InvalidSignature as exc:
            raise SignatureError(
                f"invalid signature by {name}+{kid.hex()}", key_name=name, key_id=kid.hex()
            ) from exc
        verified += 1
    if not verified:
        raise SignatureError(
            "signed note has no signature by a known key",
            known=[f"{v.name}+{v.key_id.hex()}" for v in verifiers],
        )
    return text


# --- signed checkpoints -------------------------------------------------------------------------


def sign_checkpoint(cp: Checkpoint, private_key: Ed25519PrivateKey) -> str:
    """The signed note of ``cp``, signed under the key name ``cp.origin`` (DESIGN §3)."""
    return sign_note(cp.body(), cp.origin, private_key)


def open_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    """Verify a signed checkpoint by the log's key and parse it.

    The note must carry a valid signature by ``verifier`` (:func:`verify_note`), its body must be
    a checkpoint (:func:`parse_checkpoint`), and the checkpoint's origin must be the key's name:
    our key name is the origin, so a checkpoint of another log signed by this key is refused
    (:class:`SignatureError`). The caller still compares size and root with what it expects.
    """
    body = verify_note(note, [verifier])
    checkpoint = parse_checkpoint(body)
    if checkpoint.origin != verifier.name:
        raise SignatureError(
            f"checkpoint of {checkpoint.origin!r} is signed by the key of {verifier.name!r}",
            origin=checkpoint.origin,
            key_name=verifier.name,
        )
    return checkpoint
