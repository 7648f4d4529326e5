"""Share links over the API (DESIGN §8): who may share a document, see its shares and revoke them;
what a download through a link records; and how guessing links is slowed down.

- **Share** (create): supervisors of the tenant, and agents on the cases they work on.
- **List**: the same, and auditors (read-only).
- **Revoke**: supervisors, and agents working on the shared document's case.

A document of another tenant, or of a case the agent does not work on, answers 404 exactly as a
document that does not exist; any other role is refused by the role table (403) whatever it asks for.

A download (`GET /v1/shared/{token}`) needs no account: the token is the capability. The download is
counted (`ledger.shares.redeem`), then its `access` entry is committed, and only then is a byte of the
file produced. The file is decrypted segment by segment and each segment is released only once the
next one has authenticated too (or the envelope ended cleanly): a blob altered, cut or extended
makes the stream raise before its last bytes, so the transfer breaks instead of completing.

The document receipt (`GET /v1/shared/{token}/receipt`) counts no download. It is refused (410) once
the share has expired or was revoked, but a share whose downloads are used up still gives it: the
recipient of a one-time link downloads the file, then fetches the receipt to keep beside it. The
receipt carries the file name and salt, which are personal data, so fetching it is an `access` entry
too.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain

from compliance.access import AccessService, Reader
from ledger.appender import NewEntry
from ledger.documents import DocumentInfo
from ledger.errors import NotFound, PolicyViolation, TooManyRequests
from ledger.service import Ledger
from ledger.shares import SHARE_ACTOR, NewShare, Redeemed, ShareGone, ShareInfo
from verification.document_receipt import DocumentReceipt

__all__ = ["LIST_ROLES", "SHARE_ROLES", "BadTokenLimiter", "Download", "ShareService"]

#: who may share a document and revoke its shares (agents only on the cases they work on)
SHARE_ROLES = frozenset({"agent", "supervisor"})
#: who may see a document's shares
LIST_ROLES = SHARE_ROLES | {"auditor"}


class BadTokenLimiter:
    """Slow down a client that tries tokens which open nothing: after `limit` misses within `window`
    seconds, it is refused — good tokens included — until the oldest of those misses is `window`
    seconds old.

    In-process: each worker process keeps its own counts, so with N workers a client may miss up to
    N × `limit` times per window, and behind a reverse proxy every client has the proxy's address
    unless the server is told to trust its X-Forwarded-For (uvicorn's ``--forwarded-allow-ips``). At
    most `max_clients` addresses are remembered; the least recently seen is forgotten first.
    """

    def __init__(self, limit: int = 20, window: float = 60.0, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0 or max_clients < 1:
            raise ValueError("limit and max_clients must be positive, window above zero")
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._clock = clock
        self._misses: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Seconds `client` must wait (at least 1), or None when it is not limited."""
        now = self._clock()
        with self._lock:
            misses = self._misses.get(client)
            if misses is None:
                return None
            self._expire(misses, now)
            if not misses:
                del self._misses[client]
                return None
            if len(misses) < self.limit:
                return None
            return max(1, math.ceil(misses[0] + self.window - now))

    def miss(self, client: str) -> None:
        """Count one bad token from `client`."""
        now = self._clock()
        with self._lock:
            misses = self._misses.get(client)
            if misses is None:
                misses = self._misses[client] = deque(maxlen=self.limit)
                while len(self._misses) > self.max_clients:
                    self._misses.popitem(last=False)
            else:
                self._misses.move_to_end(client)
            self._expire(misses, now)
            misses.append(now)

    def _expire(self, misses: deque[float], now: float) -> None:
        while misses and misses[0] <= now - self.window:
            misses.popleft()


@dataclass(frozen=True)
class Download:
    """A counted, logged download: what the file is, and its bytes to send (a one-shot iterator that
    raises `DecryptionError` before its end when the stored blob does not authenticate)."""

    document: DocumentInfo
    chunks: Iterator[bytes]


def _one_behind(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Yield each chunk once the next one was produced too, the last once `chunks` ended cleanly."""
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        held = chunk
    if held is not None:
        yield held


class ShareService:
    def __init__(self, ledger: Ledger, access: AccessService, limiter: BadTokenLimiter | None = None) -> None:
        self.ledger = ledger
        self._access = access
        self.limiter = limiter if limiter is not None else BadTokenLimiter()

    # ------------------------------------------------------------------ by the tenant's staff

    def create(self, tenant: str, reader: Reader, document_id: str, *, recipient: str, expires_in: int,
               max_downloads: int, purpose: str | None) -> NewShare:
        """Share a document: its `share` entry is appended (`ledger.shares.create`)."""
        self._check(tenant, reader, document_id, SHARE_ROLES, "share documents")
        return self.ledger.shares.create(tenant, document_id, actor=reader.actor, recipient=recipient,
                                         expires_in=expires_in, max_downloads=max_downloads, purpose=purpose)

    def list(self, tenant: str, reader: Reader, document_id: str) -> list[ShareInfo]:
        """A document's shares, oldest first; never their tokens."""
        self._check(tenant, reader, document_id, LIST_ROLES, "see a document's shares")
        return self.ledger.shares.list(tenant, document_id)

    def revoke(self, tenant: str, reader: Reader, share_id: str) -> ShareInfo:
        """Revoke a share (Conflict if it was revoked already); its `share` entry is appended."""
        if reader.role not in SHARE_ROLES:
            raise PolicyViolation(f"role {reader.role!r} may not revoke shares")
        share = self.ledger.shares.get(tenant, share_id)
        self._check(tenant, reader, share.document_id, SHARE_ROLES, "revoke shares",
                    NotFound("no such share", share=share_id))
        return self.ledger.shares.revoke(tenant, share_id, actor=reader.actor)

    def _check(self, tenant: str, reader: Reader, document_id: str, roles: frozenset[str], what: str,
               hidden: NotFound | None = None) -> None:
        """The role table, then, for agents, the document's case: 404 alike for a document of a case
        the agent does not work on and one that does not exist (another tenant's included)."""
        if reader.role not in roles:
            raise PolicyViolation(f"role {reader.role!r} may not {what}")
        if reader.role == "agent":
            # a document of another tenant is NotFound here already
            case = self.ledger.documents.locate(tenant, document_id).case
            if not self._access.works_on(tenant, reader, case):
                raise hidden if hidden is not None else NotFound("no such document", document=document_id)

    # ------------------------------------------------------------------ by whoever holds the link

    def download(self, token: str, client: str) -> Download:
        """Count a download through `token` and record it, then open the document.

        TooManyRequests (with ``retry_after``) while `client` is limited; NotFound for a token that
        opens nothing (counted against `client`); ShareGone for a share expired, revoked or used up.
        The `access` entry is committed before this returns, so before any byte is sent. A blob whose
        first segments do not authenticate raises `DecryptionError` here, before a response starts.
        """
        redeemed = self._open(token, client, self.ledger.shares.redeem)
        self.ledger.appender.append(redeemed.tenant, redeemed.access_entry())
        info, chunks = self.ledger.documents.stream(redeemed.tenant, redeemed.document_id)
        body = _one_behind(chunks)
        first = next(body, None)
        return Download(info, chain([first], body) if first is not None else iter(()))

    def receipt(self, token: str, client: str) -> DocumentReceipt:
        """The document receipt of the share's document, counting no download (see the module's
        docstring for why a used-up share still gives it); its `access` entry is committed first."""
        found = self._open(token, client, self.ledger.shares.peek)
        if found.share.state in ("expired", "revoked"):
            raise ShareGone(f"this share {'has expired' if found.share.state == 'expired' else 'was revoked'}",
                            state=found.share.state)
        self.ledger.appender.append(found.tenant, NewEntry(
            kind="access", actor=SHARE_ACTOR, case=found.case, channel="api", meta={
                "action": "receipt", "share": found.share.share_id, "document": found.document_id,
                "recipient": found.share.recipient}))
        return self.ledger.documents.receipt(found.tenant, found.document_id)

    def _open(self, token: str, client: str, lookup: Callable[[str], Redeemed]) -> Redeemed:
        wait = self.limiter.retry_after(client)
        if wait is not None:
            raise TooManyRequests("too many links that open nothing from this address: try again later",
                                  retry_after=wait)
        try:
            return lookup(token)
        except NotFound:
            self.limiter.miss(client)
            raise
