"""Data keys (DESIGN §4): one per subject and version, wrapped by the tenant key.

Rotation starts a new version (older ones still decrypt older entries); destruction is
crypto-shredding: the content is gone for good, every proof still verifies. Both move the log's key
epoch, so every process drops its cached keys at once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ledger.connections import reading, writing
from ledger.envelope import open_envelope, seal, wrap_aad
from ledger.keys import new_data_key_id, new_key
from ledger.repository import datakeys as repo
from ledger.repository.tenants import bump_key_epoch, key_epoch
from ledger.tenants import TenantContext, Tenants

__all__ = ["NO_SUBJECT", "DataKeys"]

#: the subject of the tenant's key for content that concerns no subject
NO_SUBJECT = ""


def _aad(key_id: str) -> bytes:
    return wrap_aad("data", key_id)


class DataKeys:
    def __init__(self, engine: Engine, tenants: Tenants, clock: Callable[[], str]) -> None:
        self._engine = engine
        self._tenants = tenants
        self._clock = clock

    def get(self, context: TenantContext, key_id: str) -> bytes | None:
        """A data key by id, None once destroyed. Callers sync the context's epoch first."""
        key = context.data_keys.get(key_id)
        if key is not None:
            return key
        with reading(self._engine) as conn:
            row = repo.get_data_key(conn, context.tenant_id, key_id)
        if row is None or row.wrapped is None:
            return None
        key = open_envelope(context.tenant_key, bytes(row.wrapped), _aad(key_id))
        context.data_keys[key_id] = key
        return key

    def current(self, context: TenantContext, subject: str) -> tuple[str, bytes]:
        """The id and key new content of `subject` is encrypted with (made on first use)."""
        cached = context.current_keys.get(subject)
        if cached is not None and cached in context.data_keys:
            return cached, context.data_keys[cached]
        with reading(self._engine) as conn:
            context.sync(key_epoch(conn, context.log_id))
            row = repo.current_data_key(conn, context.tenant_id, subject)
        if row is not None and row.wrapped is not None:
            key = self.get(context, row.key_id)
            assert key is not None
            context.current_keys[subject] = row.key_id
            return row.key_id, key
        return self._new(context, subject, 1 if row is None else row.version + 1)

    def _new(self, context: TenantContext, subject: str, version: int, *, rotation: bool = False) -> tuple[str, bytes]:
        key_id, key = new_data_key_id(), new_key()
        wrapped = seal(context.tenant_key, key, _aad(key_id))
        try:
            with writing(self._engine) as conn, conn.begin():
                repo.insert_data_key(conn, key_id, context.tenant_id, subject, version, wrapped, self._clock())
                if rotation:  # every process must move to the new version
                    bump_key_epoch(conn, context.log_id)
        except IntegrityError:  # another writer made this version first
            context.current_keys.pop(subject, None)
            return self.current(context, subject)
        if rotation:
            context.invalidate()  # refilled, with the new epoch, on next use
            return key_id, key
        context.data_keys[key_id] = key
        context.current_keys[subject] = key_id
        return key_id, key

    def rotate(self, tenant: str, subject: str | None) -> str:
        """Start a new key version for a subject (None: the tenant's key for subject-less content)."""
        context = self._tenants.get(tenant)
        subject_key = subject or NO_SUBJECT
        with reading(self._engine) as conn:
            row = repo.current_data_key(conn, context.tenant_id, subject_key)
        return self._new(context, subject_key, 1 if row is None else row.version + 1, rotation=True)[0]

    def destroy(self, tenant: str, subject: str) -> list[str]:
        """Crypto-shredding: destroy every version of the subject's key; returns their ids."""
        context = self._tenants.get(tenant)
        with writing(self._engine) as conn, conn.begin():
            destroyed = repo.destroy_data_keys(conn, context.tenant_id, subject, self._clock())
            bump_key_epoch(conn, context.log_id)
        context.invalidate()
        return destroyed
