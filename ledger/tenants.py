"""Tenants: one log each, its tenant key and Ed25519 log key, and what a process caches about them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ledger.connections import reading, writing
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.keys import MasterKey, new_key, unwrap_signing_key, wrap_signing_key
from ledger.repository import tenants as repo
from verification.checkpoint import Checkpoint, sign_checkpoint, sign_note, verifier_key
from verification.compact import CompactRange
from verification.entry import ZERO_HASH

__all__ = ["TENANT_RE", "TenantContext", "TenantInfo", "Tenants"]

TENANT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")


@dataclass(frozen=True)
class TenantInfo:
    tenant: str
    origin: str
    vkey: str
    size: int | None = None
    root: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tenant": self.tenant, "origin": self.origin, "vkey": self.vkey}
        if self.size is not None:
            out |= {"size": self.size, "root": self.root}
        return out


@dataclass
class TenantContext:
    """What a process keeps about one tenant. The caches hold only what is valid at `epoch`.

    The log row's key epoch grows whenever a subject mapping is deleted or data keys are rotated or
    destroyed, by any process; appends prepared from older caches are refused under the log lock and
    prepared again, and reads re-check the epoch, so crypto-shredding and forgetting take effect at
    once in every process.
    """

    name: str
    tenant_id: int
    log_id: int
    origin: str
    tenant_key: bytes
    public_key: Ed25519PublicKey
    signing_key_wrapped: bytes
    signing_key: Ed25519PrivateKey | None = None
    epoch: int = -1
    subjects: dict[bytes, str] = field(default_factory=dict)
    data_keys: dict[str, bytes] = field(default_factory=dict)
    current_keys: dict[str, str] = field(default_factory=dict)

    @property
    def vkey(self) -> str:
        """The log's public key in note verifier-key form (DESIGN §3)."""
        return verifier_key(self.origin, self.public_key)

    def sync(self, epoch: int) -> None:
        """Adopt the epoch read from the log row, dropping the caches if it moved."""
        if epoch != self.epoch:
            self.invalidate()
            self.epoch = epoch

    def invalidate(self) -> None:
        """Forget every cached handle and key; the next use reads the epoch and refills."""
        self.subjects.clear()
        self.data_keys.clear()
        self.current_keys.clear()
        self.epoch = -1


class Tenants:
    def __init__(self, engine: Engine, master: MasterKey, instance: str, clock: Callable[[], str]) -> None:
        self._engine = engine
        self._master = master
        self._instance = instance
        self._clock = clock
        self._cache: dict[str, TenantContext] = {}

    def create(self, name: str) -> TenantInfo:
        if not TENANT_RE.match(name):
            raise InvalidInput(f"tenant name {name!r} must be 1-63 of a-z, 0-9 and '-', starting alphanumeric")
        origin = f"{self._instance}/{name}"
        tenant_key = new_key()
        signing_key = Ed25519PrivateKey.generate()
        try:
            with writing(self._engine) as conn, conn.begin():
                tenant_id = repo.insert_tenant(conn, name, self._clock(),
                                               self._master.wrap(tenant_key, "tenant", origin))
                repo.insert_log(
                    conn, tenant_id, origin, wrap_signing_key(self._master, signing_key, origin),
                    signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), ZERO_HASH,
                )
        except IntegrityError:
            raise Conflict(f"tenant {name!r} already exists", tenant=name) from None
        return TenantInfo(name, origin, verifier_key(origin, signing_key.public_key()))

    def names(self) -> list[str]:
        """Every tenant's name, in order (for the deployment-wide tasks: compliance runs, audits)."""
        with reading(self._engine) as conn:
            return repo.tenant_names(conn)

    def get(self, name: str) -> TenantContext:
        """The tenant's context, cached for the life of the process (a tenant is never renamed)."""
        context = self._cache.get(name)
        if context is not None:
            return context
        with reading(self._engine) as conn:
            row = repo.get_tenant(conn, name)
        if row is None:
            raise NotFound(f"no tenant {name!r}", tenant=name)
        context = TenantContext(
            name=name, tenant_id=row.id, log_id=row.log_id, origin=row.origin,
            tenant_key=self._master.unwrap(bytes(row.wrapped_key), "tenant", row.origin),
            public_key=Ed25519PublicKey.from_public_bytes(bytes(row.public_key)),
            signing_key_wrapped=bytes(row.signing_key_wrapped),
        )
        self._cache[name] = context
        return context

    def info(self, name: str) -> TenantInfo:
        """Name, origin, verifier key and the current size and root of the tenant's log."""
        context = self.get(name)
        with reading(self._engine) as conn:
            head = repo.get_log(conn, context.log_id)
        root = CompactRange.from_bytes(head.size, bytes(head.peaks)).root()
        return TenantInfo(name, context.origin, context.vkey, head.size, root.hex())

    def sign(self, context: TenantContext, size: int, root: bytes) -> str:
        """A C2SP signed-note checkpoint of the tree of `size` with `root` (a true statement about
        the log at any size it has had; `ledger.checkpoints` keeps the ones it issues)."""
        if context.signing_key is None:
            context.signing_key = unwrap_signing_key(self._master, context.signing_key_wrapped, context.origin)
        return sign_checkpoint(Checkpoint(context.origin, size, root), context.signing_key)

    def sign_text(self, context: TenantContext, body: str) -> str:
        """A statement of the log (an erasure certificate's text) as a C2SP signed note under the log's
        key. Its first line must not be the log's origin, so that it can never pass for a checkpoint."""
        if body.split("\n", 1)[0] == context.origin:
            raise ValueError("a statement must not begin like a checkpoint of the log")
        if context.signing_key is None:
            context.signing_key = unwrap_signing_key(self._master, context.signing_key_wrapped, context.origin)
        return sign_note(body, context.origin, context.signing_key)
