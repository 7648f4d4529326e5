"""Index of `assignment` entries by case: who works on a case is read under the log lock.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WHERE = sa.text("kind = 'assignment'")


def upgrade() -> None:
    op.create_index("ix_entries_assignments", "entries", ["log_id", "case_id", "seq"],
                    sqlite_where=_WHERE, postgresql_where=_WHERE)


def downgrade() -> None:
    op.drop_index("ix_entries_assignments", table_name="entries")
