"""Share links (DESIGN §8); the document a share names is looked up in `ledger.repository.documents`.

Only `share_by_token_hash` reads a token's hash; every other query leaves it out, so nothing built
from their rows can expose it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ledger.repository.base import Record, tables

__all__ = ["count_download", "get_share", "insert_share", "revoke_share", "share_by_token_hash",
           "shares_of_document"]

_SH = tables.SH
_D = tables.D
_L = tables.L
_T = tables.T

#: a share's columns, its token hash left out
_PUBLIC = (_SH.c.share_id, _SH.c.document_id, _SH.c.log_id, _SH.c.recipient, _SH.c.purpose, _SH.c.created_by,
           _SH.c.created_at, _SH.c.expires_at, _SH.c.max_downloads, _SH.c.downloads, _SH.c.revoked_at,
           _SH.c.revoked_by)


def insert_share(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(_SH).values(**values))


def get_share(conn: Connection, log_id: int, share_id: str) -> Record | None:
    """The share `share_id` if it belongs to the log `log_id`."""
    return conn.execute(select(*_PUBLIC).where(_SH.c.share_id == share_id, _SH.c.log_id == log_id)).first()


def shares_of_document(conn: Connection, log_id: int, document_id: str) -> list[Record]:
    """The document's shares, oldest first."""
    query = (
        select(*_PUBLIC)
        .where(_SH.c.document_id == document_id, _SH.c.log_id == log_id)
        .order_by(_SH.c.created_at, _SH.c.share_id)
    )
    return list(conn.execute(query).all())


def share_by_token_hash(conn: Connection, token_hash: bytes) -> Record | None:
    """The share whose token hashes to `token_hash` (a unique index), with its token hash, its
    tenant's name and its document's case."""
    query = (
        select(*_PUBLIC, _SH.c.token_hash, _T.c.name.label("tenant"), _D.c.case_id)
        .join(_L, _L.c.id == _SH.c.log_id)
        .join(_T, _T.c.id == _L.c.tenant_id)
        .join(_D, _D.c.document_id == _SH.c.document_id)
        .where(_SH.c.token_hash == token_hash)
    )
    return conn.execute(query).first()


def count_download(conn: Connection, share_id: str, token_hash: bytes, now: float) -> bool:
    """Count one download of a share that is neither revoked, expired (at `now`) nor used up.

    One conditional UPDATE: of concurrent callers racing for the last download, exactly one sees a
    row changed (SQLite serialises writers; PostgreSQL re-checks the condition on the row version a
    concurrent transaction committed). False when the share could not be counted.
    """
    result = conn.execute(
        update(_SH)
        .where(_SH.c.share_id == share_id, _SH.c.token_hash == token_hash, _SH.c.revoked_at.is_(None),
               _SH.c.expires_at > now, _SH.c.downloads < _SH.c.max_downloads)
        .values(downloads=_SH.c.downloads + 1)
    )
    return result.rowcount == 1


def revoke_share(conn: Connection, log_id: int, share_id: str, revoked_at: str, revoked_by: str) -> bool:
    """Revoke a share of the log `log_id` not revoked yet; False if there is none such."""
    result = conn.execute(
        update(_SH)
        .where(_SH.c.share_id == share_id, _SH.c.log_id == log_id, _SH.c.revoked_at.is_(None))
        .values(revoked_at=revoked_at, revoked_by=revoked_by)
    )
    return result.rowcount == 1
