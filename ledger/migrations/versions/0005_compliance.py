"""Compliance records (DESIGN §10): retention policy versions, legal holds, erasure requests, exports;
and an index of entries by subject.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_WITH_SUBJECT = sa.text("subject IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("set_at", sa.String(32), nullable=False),
        sa.Column("set_by", sa.String(128), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("locked", sa.Integer, nullable=False),
    )
    op.create_table(
        "legal_holds",
        sa.Column("hold_id", sa.String(36), primary_key=True),
        sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("case_id", sa.String(128)),
        sa.Column("subject", sa.String(64)),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("placed_by", sa.String(128), nullable=False),
        sa.Column("placed_at", sa.String(32), nullable=False),
        sa.Column("place_seq", sa.BigInteger, nullable=False),
        sa.Column("released_by", sa.String(128)),
        sa.Column("released_at", sa.String(32)),
        sa.Column("release_seq", sa.BigInteger),
        sa.CheckConstraint("(case_id IS NULL) <> (subject IS NULL)", name="ck_legal_holds_target"),
    )
    op.create_index("ix_legal_holds_log", "legal_holds", ["log_id"])
    op.create_table(
        "erasure_requests",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("subject_digest", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("not_before", sa.String(32)),
        sa.Column("held_by", sa.String(36)),
        sa.Column("decision_seq", sa.BigInteger, nullable=False),
        sa.Column("erased_seq", sa.BigInteger),
        sa.Column("erased_at", sa.String(32)),
        sa.Column("certificate", sa.Text),
    )
    op.create_index("ix_erasure_requests_log", "erasure_requests", ["log_id", "status"])
    op.create_table(
        "exports",
        sa.Column("export_id", sa.String(36), primary_key=True),
        sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("export_seq", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("error", sa.String(512)),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
    )
    op.create_index("ix_exports_log", "exports", ["log_id"])
    op.create_index("ix_entries_subject", "entries", ["log_id", "subject", "seq"], sqlite_where=_WITH_SUBJECT,
                    postgresql_where=_WITH_SUBJECT)


def downgrade() -> None:
    op.drop_index("ix_entries_subject", table_name="entries")
    op.drop_index("ix_exports_log", table_name="exports")
    op.drop_table("exports")
    op.drop_index("ix_erasure_requests_log", table_name="erasure_requests")
    op.drop_table("erasure_requests")
    op.drop_index("ix_legal_holds_log", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_table("retention_policies")
