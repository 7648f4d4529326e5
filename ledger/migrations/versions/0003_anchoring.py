"""Anchoring rounds (DESIGN §6): the rounds' state machine, each round's logs, and leases.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anchor_rounds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("open", sa.Integer, unique=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("leaves", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("tx_hash", sa.String(66)),
        sa.Column("raw_tx", sa.LargeBinary),
        sa.Column("nonce", sa.BigInteger),
        sa.Column("max_fee", sa.BigInteger),
        sa.Column("priority_fee", sa.BigInteger),
        sa.Column("block", sa.BigInteger),
        sa.Column("block_hash", sa.String(66)),
        sa.Column("gas_used", sa.BigInteger),
        sa.Column("confirmed_at", sa.String(32)),
        sa.Column("reason", sa.Text),
        sa.CheckConstraint("state IN ('pending', 'submitted', 'confirmed', 'failed')", name="ck_anchor_rounds_state"),
        sa.CheckConstraint("(state IN ('pending', 'submitted') AND open = 1) OR "
                           "(state IN ('confirmed', 'failed') AND open IS NULL)", name="ck_anchor_rounds_open"),
    )
    op.create_table(
        "anchor_round_logs",
        sa.Column("round_id", sa.Integer, sa.ForeignKey("anchor_rounds.id"), primary_key=True),
        sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), primary_key=True),
        sa.Column("leaf_index", sa.Integer, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("checkpoint", sa.Text, nullable=False),
        sa.Column("receipt", sa.Text),
        sa.Column("entry_seq", sa.BigInteger),
    )
    op.create_index("ix_anchor_round_logs_log", "anchor_round_logs", ["log_id", "size"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_anchor_round_logs_log", table_name="anchor_round_logs")
    op.drop_table("anchor_round_logs")
    op.drop_table("anchor_rounds")
