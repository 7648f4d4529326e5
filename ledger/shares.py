"""Share links (DESIGN §8): a capability to download one document, a few times, until a deadline.

A share's token is 32 random bytes, handed out once as base64url (43 characters, no padding); only
SHA-256 of the bytes is stored, so the database cannot give a working link away. Creating and
revoking a share are `share` entries in the tenant's log; each download is an `access` entry, which
the caller of `redeem` appends (it holds the document) before it sends the first byte.

Crash windows, each on the safe side:

- **create** appends the `share` entry, then inserts the share. A crash between the two leaves an
  entry describing a share that never existed and that no token opens; never a usable share without
  its entry.
- **revoke** revokes the share, then appends its entry. A crash between the two leaves a share that
  no longer opens without the entry recording why; never an entry claiming a revocation while the
  link still works.
- **redeem** counts the download in its own short transaction, which writes nothing else. A crash
  (or a failed `access` append) after it costs the recipient one download; it never lets a download
  through uncounted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ledger.appender import Appender, NewEntry
from ledger.connections import reading, writing
from ledger.errors import Conflict, Gone, InvalidInput, NotFound
from ledger.repository import shares as repo
from ledger.repository.documents import get_document
from ledger.tenants import Tenants
from verification.entry import format_time

__all__ = ["MAX_DOWNLOADS", "MAX_EXPIRES_IN", "MIN_EXPIRES_IN", "SHARE_ACTOR", "TOKEN_BYTES", "NewShare", "Redeemed",
           "ShareGone", "ShareInfo", "Shares"]

#: random bytes in a share's token
TOKEN_BYTES = 32
#: a share lasts from a minute to 90 days
MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 90 * 24 * 3600
#: a share allows 1 to 1000 downloads
MAX_DOWNLOADS = 1000
#: who downloads through a share, as an entry's actor: the link, not a user (the recipient is in meta)
SHARE_ACTOR = "service:share"

#: 43 base64url characters carry 32 bytes
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
#: a pseudonymous recipient id (anything with "@" is refused first, with its own reason)
_RECIPIENT_RE = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")
_PURPOSE_RE = re.compile(r"[A-Za-z0-9 _.:-]{1,64}")
#: document and share ids are entry ids and UUIDs: longer input names nothing
_MAX_ID = 36


class ShareGone(Gone):
    """The share exists but no longer opens: expired, revoked or used up (`state` says which)."""

    code = "gone"


@dataclass(frozen=True)
class ShareInfo:
    """A share as its creator may see it: never its token nor the token's hash."""

    share_id: str
    document_id: str
    recipient: str
    purpose: str | None
    created_by: str
    created_at: str
    #: RFC 3339 UTC with microseconds, as a header `time`
    expires_at: str
    max_downloads: int
    downloads: int
    downloads_left: int
    revoked_at: str | None
    revoked_by: str | None
    #: "active", "expired", "revoked" or "used-up"
    state: str

    @classmethod
    def of(cls, row: Any, now: float) -> ShareInfo:
        downloads, max_downloads, expires_at = int(row.downloads), int(row.max_downloads), float(row.expires_at)
        return cls(str(row.share_id), str(row.document_id), str(row.recipient), row.purpose, str(row.created_by),
                   str(row.created_at), _rfc3339(expires_at), max_downloads, downloads,
                   max(max_downloads - downloads, 0), row.revoked_at, row.revoked_by,
                   _state(row.revoked_at, downloads, max_downloads, expires_at, now))

    def as_dict(self) -> dict[str, Any]:
        return {"share_id": self.share_id, "document_id": self.document_id, "recipient": self.recipient,
                "purpose": self.purpose, "created_by": self.created_by, "created_at": self.created_at,
                "expires_at": self.expires_at, "max_downloads": self.max_downloads, "downloads": self.downloads,
                "downloads_left": self.downloads_left, "revoked_at": self.revoked_at, "revoked_by": self.revoked_by,
                "state": self.state}


@dataclass(frozen=True)
class NewShare:
    """A share just created, and its token: returned this once, stored nowhere."""

    share: ShareInfo
    token: str


@dataclass(frozen=True)
class Redeemed:
    """A download counted: the share after the count, and where its document is."""

    tenant: str
    share: ShareInfo
    document_id: str
    #: the document's case (None if it has none): the `access` entry belongs to it
    case: str | None

    def access_entry(self) -> NewEntry:
        """The `access` entry recording this download; the caller appends it before the first byte."""
        return NewEntry(kind="access", actor=SHARE_ACTOR, case=self.case, channel="api", meta={
            "action": "download", "share": self.share.share_id, "document": self.document_id,
            "recipient": self.share.recipient, "download": self.share.downloads})


class Shares:
    def __init__(self, engine: Engine, tenants: Tenants, appender: Appender, clock: Callable[[], str],
                 now: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._tenants = tenants
        self._appender = appender
        self._clock = clock
        self._now = now

    def create(self, tenant: str, document_id: str, *, actor: str, recipient: str, expires_in: int,
               max_downloads: int, purpose: str | None) -> NewShare:
        """Share a document of `tenant`'s log: its `share` entry is appended, then the share stored."""
        _check_recipient(recipient)
        _check_int("expires_in", expires_in, MIN_EXPIRES_IN, MAX_EXPIRES_IN, "seconds (1 minute to 90 days)")
        _check_int("max_downloads", max_downloads, 1, MAX_DOWNLOADS, "downloads")
        _check_purpose(purpose)
        context = self._tenants.get(tenant)
        document = self._document(context.log_id, document_id)
        raw = secrets.token_bytes(TOKEN_BYTES)
        token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        share_id = str(uuid.uuid4())
        expires_at = self._now() + expires_in
        appended = self._appender.append(tenant, NewEntry(
            kind="share", actor=actor, case=document.case_id, channel="api", meta={
                "action": "create", "share": share_id, "document": document_id, "expires_at": _rfc3339(expires_at),
                "max_downloads": max_downloads, "recipient": recipient, "purpose": purpose}))
        values = {"share_id": share_id, "document_id": document_id, "log_id": context.log_id,
                  "token_hash": hashlib.sha256(raw).digest(), "recipient": recipient, "purpose": purpose,
                  "created_by": actor, "created_at": str(appended.header["time"]), "expires_at": expires_at,
                  "max_downloads": max_downloads, "downloads": 0, "revoked_at": None, "revoked_by": None}
        with writing(self._engine) as conn, conn.begin():
            repo.insert_share(conn, values)
        return NewShare(self._get(context.log_id, share_id), token)

    def list(self, tenant: str, document_id: str) -> list[ShareInfo]:
        """The document's shares, oldest first; NotFound if the document is not in `tenant`'s log."""
        context = self._tenants.get(tenant)
        self._document(context.log_id, document_id)
        now = self._now()
        with reading(self._engine) as conn:
            rows = repo.shares_of_document(conn, context.log_id, document_id)
        return [ShareInfo.of(row, now) for row in rows]

    def get(self, tenant: str, share_id: str) -> ShareInfo:
        return self._get(self._tenants.get(tenant).log_id, share_id)

    def revoke(self, tenant: str, share_id: str, *, actor: str) -> ShareInfo:
        """Revoke a share (Conflict if it is revoked already), then append its `share` entry."""
        context = self._tenants.get(tenant)
        share = self._get(context.log_id, share_id)
        if share.revoked_at is not None:
            raise Conflict(f"share {share_id} was revoked already", share=share_id)
        document = self._document(context.log_id, share.document_id)
        entry = NewEntry(kind="share", actor=actor, case=document.case_id, channel="api",
                         meta={"action": "revoke", "share": share_id, "document": share.document_id})
        self._appender.check(entry)  # an entry that cannot be appended must not revoke either
        with writing(self._engine) as conn, conn.begin():
            revoked = repo.revoke_share(conn, context.log_id, share_id, self._clock(), actor)
        if not revoked:  # another request revoked it between our read and our update
            raise Conflict(f"share {share_id} was revoked already", share=share_id)
        self._appender.append(tenant, entry)
        return self._get(context.log_id, share_id)

    def redeem(self, token: str) -> Redeemed:
        """Count one download through `token`: NotFound for a token that opens no share, ShareGone
        for a share expired, revoked or used up.

        The count is one conditional UPDATE in a transaction of its own (nothing else is written in
        it), so concurrent redeems of a share's last download let exactly one through. The caller
        appends `Redeemed.access_entry()` and only then sends the document's first byte.
        """
        digest = _token_digest(token)
        if digest is None:
            raise NotFound("no such share")
        with reading(self._engine) as conn:  # an unknown token takes no write lock
            found = repo.share_by_token_hash(conn, digest)
        if found is None or not hmac.compare_digest(bytes(found.token_hash), digest):
            raise NotFound("no such share")
        now = self._now()
        with writing(self._engine) as conn, conn.begin():
            counted = repo.count_download(conn, str(found.share_id), digest, now)
            after = repo.get_share(conn, int(found.log_id), str(found.share_id))
        if after is None:
            raise NotFound("no such share")
        share = ShareInfo.of(after, now)
        if not counted:
            if share.state == "active":  # cannot be: the UPDATE's condition is exactly "active at now"
                raise Conflict("the share changed while its download was counted; retry")
            raise ShareGone(_GONE[share.state], state=share.state)
        return Redeemed(str(found.tenant), share, share.document_id, found.case_id)

    def peek(self, token: str) -> Redeemed:
        """The share `token` opens and its document, as they stand, counting nothing: NotFound for a
        token that opens no share (looked up and compared as in `redeem`). The share may be in any
        state; what it still allows is for the caller to decide (`ShareInfo.state`)."""
        digest = _token_digest(token)
        if digest is None:
            raise NotFound("no such share")
        with reading(self._engine) as conn:
            found = repo.share_by_token_hash(conn, digest)
        if found is None or not hmac.compare_digest(bytes(found.token_hash), digest):
            raise NotFound("no such share")
        share = ShareInfo.of(found, self._now())
        return Redeemed(str(found.tenant), share, share.document_id, found.case_id)

    def _document(self, log_id: int, document_id: str) -> Any:
        key = _short_id(document_id)
        row = None
        if key is not None:
            with reading(self._engine) as conn:
                row = get_document(conn, log_id, key)
        if row is None:
            raise NotFound("no such document", document=key)
        return row

    def _get(self, log_id: int, share_id: str) -> ShareInfo:
        key = _short_id(share_id)
        row = None
        if key is not None:
            with reading(self._engine) as conn:
                row = repo.get_share(conn, log_id, key)
        if row is None:
            raise NotFound("no such share", share=key)
        return ShareInfo.of(row, self._now())


_GONE = {"expired": "this share has expired", "revoked": "this share was revoked",
         "used-up": "this share is used up: it has no downloads left"}


def _state(revoked_at: str | None, downloads: int, max_downloads: int, expires_at: float, now: float) -> str:
    if revoked_at is not None:
        return "revoked"
    if downloads >= max_downloads:
        return "used-up"
    if now >= expires_at:
        return "expired"
    return "active"


def _rfc3339(seconds: float) -> str:
    return format_time(datetime.fromtimestamp(seconds, UTC))


def _short_id(value: object) -> str | None:
    """`value` if it may be an id at all (a string no longer than a UUID), else None: looked up as given."""
    return value if isinstance(value, str) and len(value) <= _MAX_ID else None


def _token_digest(token: object) -> bytes | None:
    """SHA-256 of the token's bytes, or None unless `token` is exactly the canonical base64url form
    of 32 bytes (43 characters, no padding, unused low bits zero): one link, one spelling."""
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode("ascii"):
        return None
    return hashlib.sha256(raw).digest()


def _check_recipient(recipient: object) -> None:
    if isinstance(recipient, str) and "@" in recipient:
        raise InvalidInput("recipient looks like an e-mail address: use a pseudonymous recipient id (it is "
                           "written in the clear into the log)")
    if not isinstance(recipient, str) or not _RECIPIENT_RE.fullmatch(recipient):
        raise InvalidInput("recipient must be a pseudonymous id: 1-128 of letters, digits and _ . : + -")


def _check_int(name: str, value: object, low: int, high: int, unit: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high} {unit}", limit=high)


def _check_purpose(purpose: object) -> None:
    if purpose is not None and (not isinstance(purpose, str) or not _PURPOSE_RE.fullmatch(purpose)):
        raise InvalidInput("purpose must be absent or 1-64 of letters, digits, spaces and _ . : -")
