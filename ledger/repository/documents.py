"""The index of `document` entries by id (DESIGN §8)."""

from __future__ import annotations

from sqlalchemy import and_, exists, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ledger.db import is_sqlite
from ledger.repository.base import Record, tables

__all__ = ["document_exists", "get_document", "insert_document", "unindexed_documents"]

_D = tables.D
_E = tables.E


def insert_document(conn: Connection, document_id: str, log_id: int, seq: int, case: str | None, size: int,
                    created_at: str) -> None:
    """Index a document; a row already there (another process recovering the same crash) is kept."""
    dialect = sqlite if is_sqlite(conn) else postgresql
    conn.execute(dialect.insert(_D).values(document_id=document_id, log_id=log_id, seq=seq, case_id=case, size=size,
                                           created_at=created_at).on_conflict_do_nothing())


def get_document(conn: Connection, log_id: int, document_id: str) -> Record | None:
    """A document of this log (another log's document is not found)."""
    return conn.execute(select(_D).where(_D.c.document_id == document_id, _D.c.log_id == log_id)).first()


def document_exists(conn: Connection, document_id: str) -> bool:
    return conn.execute(select(literal(1)).where(_D.c.document_id == document_id)).first() is not None


def unindexed_documents(conn: Connection) -> list[Record]:
    """`document` entries without an index row (a crash between the entry's commit and its row)."""
    indexed = exists().where(and_(_D.c.log_id == _E.c.log_id, _D.c.seq == _E.c.seq))
    query = select(_E.c.log_id, _E.c.seq, _E.c.header).where(_E.c.kind == "document", ~indexed)
    return list(conn.execute(query).all())
