"""The only module that touches AES-GCM (DESIGN §4, STYLE §7).

Envelope = version byte ‖ 12-byte random nonce ‖ AES-256-GCM ciphertext+tag. The AAD binds a
ciphertext to where it belongs — content to (log, entry id, key id), a wrapped key to its purpose
and id — so moving it anywhere else fails. Every failure is the same opaque `DecryptionError`.
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import DecryptionError
from verification.entry import canonical_json

__all__ = ["KEY_SIZE", "SALT_SIZE", "VERSION", "content_aad", "open_envelope", "seal", "wrap_aad"]

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
