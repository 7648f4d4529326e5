"""The key hierarchy (DESIGN §4): master key → tenant keys → per-subject data keys.

The master key comes from ``CASELEDGER_MASTER_KEY``, a key file, or any object implementing
`MasterKey` (the adapter point for a KMS). Tenant keys and log signing keys are stored wrapped by
the master key; data keys are stored wrapped by their tenant key. Nothing here stores a key in
clear text outside the development key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import sys
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.envelope import KEY_SIZE, open_envelope, seal, wrap_aad
from ledger.errors import ConfigurationError
from ledger.settings import Mode, Settings, check_key_file

__all__ = [
    "LocalMasterKey",
    "MasterKey",
    "load_master_key",
    "new_data_key_id",
    "new_key",
    "subject_ref_mac",
    "unwrap_signing_key",
    "wrap_signing_key",
]


class MasterKey(Protocol):
    """What a KMS adapter provides: wrap and unwrap small keys bound to a purpose and id."""

    def wrap(self, key: bytes, purpose: str, key_id: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, purpose: str, key_id: str) -> bytes: ...


class LocalMasterKey:
    """A master key held in process memory, loaded from the environment or a key file."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ConfigurationError("the master key must be 32 bytes")
        self._key = key

    def wrap(self, key: bytes, purpose: str, key_id: str) -> bytes:
        return seal(self._key, key, wrap_aad(purpose, key_id))

    def unwrap(self, wrapped: bytes, purpose: str, key_id: str) -> bytes:
        return open_envelope(self._key, wrapped, wrap_aad(purpose, key_id))


def new_key() -> bytes:
    return os.urandom(KEY_SIZE)


def new_data_key_id() -> str:
    return "dk_" + os.urandom(10).hex()


def _decode_key(text: str, source: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 2 * KEY_SIZE else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != KEY_SIZE:
        raise ConfigurationError(f"{source} must hold a 32-byte key as 64 hex digits or base64")
    return raw


def load_master_key(settings: Settings, *, create: bool = False) -> LocalMasterKey:
    """Load the master key; in development mode, `create` generates a key file (0600) if none exists."""
    if settings.master_key is not None:
        return LocalMasterKey(_decode_key(settings.master_key.get_secret_value(), "CASELEDGER_MASTER_KEY"))
    path = settings.master_key_file or settings.default_master_key_path
    if not path.exists():
        if settings.mode is Mode.PRODUCTION or not create:
            raise ConfigurationError(
                f"no master key: set CASELEDGER_MASTER_KEY or create {path} (caseledger init)"
            )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_key().hex() + "\n")
        print(
            f"WARNING: development mode generated an UNPROTECTED master key at {path}. "
            "Never use it for real data; production mode refuses to start without a real key.",
            file=sys.stderr,
        )
    if settings.mode is Mode.PRODUCTION:
        check_key_file(path)
    return LocalMasterKey(_decode_key(Path(path).read_text(), f"key file {path}"))


def subject_ref_mac(tenant_key: bytes, ref: str) -> bytes:
    """Keyed digest of an outside customer reference: the lookup key of the subject mapping.

    Keyed so the mapping table alone does not reveal which references exist.
    """
    mac_key = hmac.new(tenant_key, b"caseledger subject-ref v1", hashlib.sha256).digest()
    return hmac.new(mac_key, ref.encode(), hashlib.sha256).digest()


def wrap_signing_key(master: MasterKey, private_key: Ed25519PrivateKey, origin: str) -> bytes:
    raw = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return master.wrap(raw, "log-signing", origin)


def unwrap_signing_key(master: MasterKey, wrapped: bytes, origin: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(master.unwrap(wrapped, "log-signing", origin))
