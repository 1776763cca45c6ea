"""admin console: staff names and disabling, per-candidate extra time and late entry, re-sit decisions

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = invigil.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Staff accounts: a name for the office's lists, and disabling without deleting.
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("disabled_at", UTC, nullable=True))
    # Individual arrangements: extra time and a late entry per attempt.
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("extra_time_s", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("late_entry_until", UTC, nullable=True))
    # The re-sit rule of an exam (None: the defaults).
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resit_rule", sa.JSON(), nullable=True))
    op.create_table(
        "resit_decisions",
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", UTC, nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("outages", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("attempt_id"),
    )


def downgrade() -> None:
    op.drop_table("resit_decisions")
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.drop_column("resit_rule")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("late_entry_until")
        batch_op.drop_column("extra_time_s")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("name")
