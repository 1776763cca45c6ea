"""evidence: retention and purges

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exam_retention",
        sa.Column("exam_id", sa.String(length=32), nullable=False),
        sa.Column("retention_s", sa.Integer(), nullable=False),
        sa.Column("purge_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["exam_id"],
            ["exams.id"],
            name=op.f("fk_exam_retention_exam_id_exams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("exam_id", name=op.f("pk_exam_retention")),
    )
    op.create_table(
        "data_purges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("exam_id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_data_purges_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["exam_id"],
            ["exams.id"],
            name=op.f("fk_data_purges_exam_id_exams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_purges")),
    )
    op.create_index("ix_data_purges_attempt_at", "data_purges", ["attempt_id", "at"])
    op.create_index(op.f("ix_data_purges_exam_id"), "data_purges", ["exam_id"])
    # Exams imported before this revision have no row: retention.purge_at gives them the
    # default period, and `invigil retention run` purges them when it is over.


def downgrade() -> None:
    op.drop_index(op.f("ix_data_purges_exam_id"), table_name="data_purges")
    op.drop_index("ix_data_purges_attempt_at", table_name="data_purges")
    op.drop_table("data_purges")
    op.drop_table("exam_retention")
