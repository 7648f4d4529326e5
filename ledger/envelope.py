"""The only module that touches AES-GCM (DESIGN §4, STYLE §7).

Envelope = version byte ‖ 12-byte random nonce ‖ AES-256-GCM ciphertext+tag; the segmented envelope
(version 0x02, below) seals a stream such as a document segment by segment. The AAD binds a
ciphertext to where it belongs — content to (log, entry id, key id), a wrapped key to its purpose
and id — so moving it anywhere else fails. Every failure is the same opaque `DecryptionError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import DecryptionError
from verification.entry import canonical_json

__all__ = [
    "KEY_SIZE",
    "SALT_SIZE",
    "SEGMENTED_HEADER_SIZE",
    "SEGMENTED_VERSION",
    "SEGMENT_PREFIX_SIZE",
    "SEGMENT_SIZE",
    "VERSION",
    "SegmentSealer",
    "content_aad",
    "open_envelope",
    "open_stream",
    "plain_size",
    "seal",
    "seal_stream",
    "segmented_size",
    "wrap_aad",
]

VERSION = 1
KEY_SIZE = 32
#: an entry's content is sealed as salt ‖ content; the salt makes its commitment (DESIGN §2)
SALT_SIZE = 32
_NONCE_SIZE = 12
_HEADER = bytes([VERSION])


_SAFE = re.compile(r"[A-Za-z0-9_.:-]+\Z")


def content_aad(log: str, entry_id: str, key_id: str) -> bytes:
    """JCS({"log","id","key"}); ids we mint need no escaping, so that case is formatted directly."""
    if _SAFE.match(entry_id) and _SAFE.match(key_id) and _SAFE.match(log.replace("/", "")):
        return f'{{"id":"{entry_id}","key":"{key_id}","log":"{log}"}}'.encode()
    return canonical_json({"log": log, "id": entry_id, "key": key_id})


def wrap_aad(purpose: str, key_id: str) -> bytes:
    return canonical_json({"wrap": purpose, "key": key_id})


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt under a fresh random nonce; 96-bit random nonces are safe well past our volumes per key."""
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    nonce = os.urandom(_NONCE_SIZE)
    return _HEADER + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_envelope(key: bytes, envelope: bytes, aad: bytes) -> bytes:
    if len(key) != KEY_SIZE or len(envelope) < 1 + _NONCE_SIZE + 16 or envelope[0] != VERSION:
        raise DecryptionError()
    nonce = envelope[1 : 1 + _NONCE_SIZE]
    try:
        return AESGCM(key).decrypt(nonce, envelope[1 + _NONCE_SIZE :], aad)
    except InvalidTag:
        raise DecryptionError() from None


# --- segmented envelope (DESIGN §4, version 0x02) -------------------------------------------------
#
# The STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015), as in Tink's streaming AEAD and
# age: 0x02 ‖ 7-byte random prefix ‖ seg_0 ‖ seg_1 ‖ …, segment i sealed under the nonce
# prefix ‖ uint32_be(i) ‖ last-flag. The index in the nonce catches reordered and dropped segments,
# the last flag a stream cut at a segment boundary or extended beyond its end. Every plaintext segment
# holds exactly SEGMENT_SIZE bytes except the final one; the final one is empty only when the whole
# plaintext is, so each plaintext has exactly one envelope length and that length gives the plaintext
# length (`plain_size`).

SEGMENTED_VERSION = 2
SEGMENT_SIZE = 65_536
SEGMENT_PREFIX_SIZE = 7
SEGMENTED_HEADER_SIZE = 1 + SEGMENT_PREFIX_SIZE
_TAG_SIZE = 16
_STORED_SEGMENT = SEGMENT_SIZE + _TAG_SIZE
_MAX_SEGMENTS = 1 << 32
_NOT_LAST = b"\x00"
_LAST = b"\x01"


def _segment_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (_LAST if last else _NOT_LAST)


def segmented_size(plain_size: int) -> int:
    """The length of the segmented envelope of `plain_size` bytes of plaintext."""
    if plain_size < 0:
        raise ValueError("a plaintext size cannot be negative")
    segments = max(1, -(-plain_size // SEGMENT_SIZE))
    if segments > _MAX_SEGMENTS:
        raise ValueError("too large for one segmented envelope")
    return SEGMENTED_HEADER_SIZE + plain_size + segments * _TAG_SIZE


def plain_size(envelope_size: int) -> int:
    """The plaintext length inside a segmented envelope of `envelope_size` bytes (the inverse of
    `segmented_size`); ValueError for a length no envelope has."""
    body = envelope_size - SEGMENTED_HEADER_SIZE
    if body < _TAG_SIZE:
        raise ValueError(f"no segmented envelope is {envelope_size} bytes long")
    full, rest = divmod(body, _STORED_SEGMENT)
    if rest == 0:
        segments = full
    elif rest < _TAG_SIZE or (rest == _TAG_SIZE and full > 0):
        # a final segment shorter than its tag, or an empty final segment after full ones
        raise ValueError(f"no segmented envelope is {envelope_size} bytes long")
    else:
        segments = full + 1
    if segments > _MAX_SEGMENTS:
        raise ValueError(f"no segmented envelope is {envelope_size} bytes long")
    return body - segments * _TAG_SIZE


class SegmentSealer:
    """Seals a stream incrementally: `header()`, then `update(data)` as data arrives, then `finish()`.

    The concatenation of header(), every update()'s result and finish() is the envelope. At most one
    segment of plaintext is buffered: a full segment stays buffered until more data shows it is not
    the final one, as the last flag must say so.
    """

    def __init__(self, key: bytes, aad: bytes) -> None:
        self._setup(key, aad, os.urandom(SEGMENT_PREFIX_SIZE))

    @classmethod
    def with_prefix(cls, key: bytes, aad: bytes, prefix: bytes) -> SegmentSealer:
        """The deterministic layer (STYLE §8): a sealer with the nonce prefix given, not drawn at random.

        Public because the published vectors (``tests/vectors/caseledger/segmented-envelopes.json``)
        can only be reproduced byte for byte with their prefix, and other implementations test
        against them: there is no other way to check our output against a vector. Never use it to
        seal stored data: a prefix must never repeat under one key, which only the random prefix of
        the constructor ensures.
        """
        sealer = cls.__new__(cls)
        sealer._setup(key, aad, prefix)
        return sealer

    def _setup(self, key: bytes, aad: bytes, prefix: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        if len(prefix) != SEGMENT_PREFIX_SIZE:
            raise ValueError(f"the nonce prefix is {SEGMENT_PREFIX_SIZE} bytes")
        self._aead = AESGCM(key)
        self._aad = bytes(aad)
        self._prefix = bytes(prefix)
        self._buffer = bytearray()
        self._index = 0
        self._finished = False

    def header(self) -> bytes:
        """Version byte ‖ nonce prefix: the envelope's first 8 bytes."""
        return bytes([SEGMENTED_VERSION]) + self._prefix

    def _seal(self, last: bool) -> bytes:
        if self._index >= _MAX_SEGMENTS:
            raise ValueError("too large for one segmented envelope")
        nonce = _segment_nonce(self._prefix, self._index, last)
        self._index += 1
        sealed = self._aead.encrypt(nonce, self._buffer, self._aad)
        self._buffer.clear()
        return sealed

    def update(self, data: bytes) -> bytes:
        """Take more plaintext; return the sealed segments it completed (often b"")."""
        if self._finished:
            raise ValueError("the stream is already finished")
        out: list[bytes] = []
        with memoryview(data) as view:
            position, end = 0, len(view)
            while position < end:
                if len(self._buffer) == SEGMENT_SIZE:  # more data follows: not the final segment
                    out.append(self._seal(last=False))
                take = min(SEGMENT_SIZE - len(self._buffer), end - position)
                self._buffer += view[position : position + take]
                position += take
        return b"".join(out)

    def finish(self) -> bytes:
        """Seal the final segment (empty for an empty stream)."""
        if self._finished:
            raise ValueError("the stream is already finished")
        self._finished = True
        return self._seal(last=True)


def seal_stream(key: bytes, chunks: Iterable[bytes], aad: bytes) -> Iterator[bytes]:
    """The segmented envelope of the concatenated `chunks`, in pieces of at most one segment plus
    whatever a single chunk completes; the header comes first."""
    return _seal_stream(SegmentSealer(key, aad), chunks)


def _seal_stream(sealer: SegmentSealer, chunks: Iterable[bytes]) -> Iterator[bytes]:
    yield sealer.header()
    for chunk in chunks:
        sealed = sealer.update(chunk)
        if sealed:
            yield sealed
    yield sealer.finish()


def open_stream(key: bytes, chunks: Iterable[bytes], aad: bytes) -> Iterator[bytes]:
    """Open a segmented envelope read in chunks of any size; yield each segment's plaintext once it is
    authenticated (an empty plaintext yields nothing).

    Anything wrong — version byte, key, AAD, a flipped bit, segments reordered, dropped, appended or
    cut — raises the one opaque `DecryptionError`, at the first segment that fails. Segments before it
    have already been yielded: a stream cut or extended is only found at (or just before) its end, so a
    receiver must treat what it got as unauthenticated until the generator finishes. For downloads this
    means the `access` entry is committed before the first byte is sent, and a stored blob that was
    truncated makes the response fail at its end (the HTTP layer must then abort the connection rather
    than end the body cleanly, so that the client sees a short read against Content-Length).

    Holds at most one stored segment plus one chunk.
    """
    if len(key) != KEY_SIZE:
        raise DecryptionError()
    return _open_stream(AESGCM(key), chunks, bytes(aad))


def _open_stream(aead: AESGCM, chunks: Iterable[bytes], aad: bytes) -> Iterator[bytes]:
    buffer = bytearray()
    prefix: bytes | None = None
    index = 0

    def open_segment(sealed: bytes | bytearray, last: bool) -> bytes:
        if index >= _MAX_SEGMENTS:
            raise DecryptionError()
        try:
            return aead.decrypt(_segment_nonce(prefix or b"", index, last), sealed, aad)
        except InvalidTag:
            raise DecryptionError() from None

    for chunk in chunks:
        buffer += chunk
        if prefix is None:
            if len(buffer) < SEGMENTED_HEADER_SIZE:
                continue
            if buffer[0] != SEGMENTED_VERSION:
                raise DecryptionError()
            prefix = bytes(buffer[1:SEGMENTED_HEADER_SIZE])
            del buffer[:SEGMENTED_HEADER_SIZE]
        # a full stored segment with more bytes after it cannot be the final one
        while len(buffer) > _STORED_SEGMENT:
            plaintext = open_segment(buffer[:_STORED_SEGMENT], last=False)
            del buffer[:_STORED_SEGMENT]
            index += 1
            yield plaintext
    # what is left is the final segment: it has at least its tag, and is empty only as the sole segment
    if prefix is None or len(buffer) < _TAG_SIZE or (index > 0 and len(buffer) == _TAG_SIZE):
        raise DecryptionError()
    plaintext = open_segment(buffer, last=True)
    buffer.clear()
    if plaintext:
        yield plaintext
