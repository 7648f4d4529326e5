"""The key hierarchy (DESIGN §4): master key → tenant keys → per-subject data keys.

The master key comes from ``CASELEDGER_MASTER_KEY``, a key file, or any object implementing
`MasterKey` (the adapter point for a KMS). Tenant keys and log signing keys are stored wrapped by
the master key; data keys are stored wrapped by their tenant key. Nothing here stores a key in
clear text outside the development key file.
"""

from __future__ import annotations

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
from ledger.files import private_dir, write_private_file
from ledger.settings import Mode, Settings

__all__ = [
    "LocalMasterKey",
    "MasterKey",
    "create_development_key_file",
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


def create_development_key_file(path: Path, data: bytes, what: str) -> None:
    """Write a newly generated key to `path` (0600, in a 0700 directory) and say so loudly on stderr.

    The one way development mode creates a key file (the master key, the JWT issuer's key): never
    silently, since such a key lies unprotected beside the data it protects.
    """
    private_dir(path.parent)
    write_private_file(path, data)
    print(
        f"WARNING: development mode generated an UNPROTECTED {what} at {path}. "
        "Never use it for real data; production mode refuses to start without a real key.",
        file=sys.stderr,
        flush=True,
    )


def load_master_key(settings: Settings, *, create: bool = False) -> LocalMasterKey:
    """Load the master key; in development mode, `create` generates a key file (0600) if none exists."""
    if settings.master_key is None and not settings.master_key_path.exists():
        path = settings.master_key_path
        if settings.mode is Mode.PRODUCTION or not create:
            raise ConfigurationError(
                f"no master key: set CASELEDGER_MASTER_KEY or create {path} (caseledger init)"
            )
        create_development_key_file(path, (new_key().hex() + "\n").encode(), "master key")
    return LocalMasterKey(settings.read_master_key())


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
