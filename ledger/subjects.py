"""Subjects: the random handle standing for an outside customer reference, and forgetting it.

The mapping (a keyed MAC of the reference → handle) is the only link between a person and the
log; deleting it is part of erasure. Handles are cached per process, valid at the key epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ledger.connections import reading, writing
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.keys import subject_ref_mac
from ledger.repository import subjects as repo
from ledger.repository.tenants import bump_key_epoch, key_epoch
from ledger.tenants import TenantContext, Tenants

__all__ = ["MAX_REF_LENGTH", "Subjects"]

MAX_REF_LENGTH = 256


class Subjects:
    def __init__(self, engine: Engine, tenants: Tenants, clock: Callable[[], str]) -> None:
        self._engine = engine
        self._tenants = tenants
        self._clock = clock

    @staticmethod
    def check_ref(ref: object, where: str = "") -> None:
        """`InvalidInput` (its message starting with `where`) unless `ref` is a subject reference: a
        string of 1-`MAX_REF_LENGTH` characters of valid Unicode (its keyed digest is taken of its
        UTF-8, which a lone surrogate has not)."""
        if not isinstance(ref, str) or not 1 <= len(ref) <= MAX_REF_LENGTH or not _is_unicode(ref):
            raise InvalidInput(f"{where}a subject reference must be a string of 1-{MAX_REF_LENGTH} characters "
                               "of valid Unicode")

    def handle(self, tenant: str, ref: str, *, create: bool = True) -> str:
        """The handle standing for `ref` in this tenant (made on first use unless `create` is False)."""
        return self.handles(self._tenants.get(tenant), {ref}, create=create)[ref]

    def handles(self, context: TenantContext, refs: set[str], *, create: bool = True) -> dict[str, str]:
        """Handles for many references: from the cache, else one lookup; missing ones are created."""
        for ref in refs:
            self.check_ref(ref)
        macs = {subject_ref_mac(context.tenant_key, ref): ref for ref in refs}
        if not create:  # a lookup (erasure, reports) must not trust a mapping erased by another process
            with reading(self._engine) as conn:
                context.sync(key_epoch(conn, context.log_id))
        handles = {macs[mac]: context.subjects[mac] for mac in macs if mac in context.subjects}
        if len(handles) == len(macs):
            return handles
        with reading(self._engine) as conn:
            context.sync(key_epoch(conn, context.log_id))
            found = repo.find_subjects(conn, context.tenant_id, list(macs))
        missing = {mac: ref for mac, ref in macs.items() if mac not in found}
        if missing and not create:
            raise NotFound("no such subject", tenant=context.name)
        if missing:
            made = {mac: "sub_" + os.urandom(12).hex() for mac in missing}
            try:
                with writing(self._engine) as conn, conn.begin():
                    for mac, handle in made.items():
                        repo.insert_subject(conn, context.tenant_id, handle, mac, self._clock())
            except IntegrityError:  # some were created concurrently by another writer: use theirs
                with reading(self._engine) as conn:
                    made = repo.find_subjects(conn, context.tenant_id, list(missing))
                if len(made) != len(missing):
                    raise Conflict("subjects are being created concurrently; retry") from None
            found |= made
        context.subjects.update(found)
        return {macs[mac]: handle for mac, handle in found.items()}

    def forget(self, tenant: str, ref: str) -> str:
        """Delete the mapping from a reference to its handle, in every process; returns the handle."""
        context = self._tenants.get(tenant)
        with writing(self._engine) as conn, conn.begin():
            handle = repo.delete_subject(conn, context.tenant_id, subject_ref_mac(context.tenant_key, ref))
            bump_key_epoch(conn, context.log_id)
        context.invalidate()
        if handle is None:
            raise NotFound("no such subject", tenant=tenant)
        return handle


def _is_unicode(text: str) -> bool:
    """Whether `text` has a UTF-8 form (holds no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
