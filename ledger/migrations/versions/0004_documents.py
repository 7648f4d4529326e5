"""Documents and shares (DESIGN §8): an index of `document` entries by id, and share links.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_DOCUMENTS = sa.text("kind = 'document'")


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("document_id", sa.String(36), primary_key=True),
        sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("case_id", sa.String(128)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("log_id", "seq", name="uq_documents_entry"),
    )
    op.create_table(
        "shares",
        sa.Column("share_id", sa.String(36), primary_key=True),
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.document_id"), nullable=False),
        sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(64)),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("max_downloads", sa.Integer, nullable=False),
        sa.Column("downloads", sa.Integer, nullable=False, server_default="0"),
        sa.Column("revoked_at", sa.String(32)),
        sa.Column("revoked_by", sa.String(128)),
        sa.CheckConstraint("downloads >= 0 AND downloads <= max_downloads", name="ck_shares_downloads"),
    )
    op.create_index("ix_shares_document", "shares", ["document_id"])
    # `document` entries without an index row are found after a crash by this partial index
    op.create_index("ix_entries_documents", "entries", ["log_id", "seq"], sqlite_where=_DOCUMENTS,
                    postgresql_where=_DOCUMENTS)


def downgrade() -> None:
    op.drop_index("ix_entries_documents", table_name="entries")
    op.drop_index("ix_shares_document", table_name="shares")
    op.drop_table("shares")
    op.drop_table("documents")
