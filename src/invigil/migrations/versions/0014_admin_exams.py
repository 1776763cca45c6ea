"""admin console: exam editing and the roster import staging table

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from invigil.core.db import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # --- roster import (branch admin-roster: exams/roster_jobs.py) ---
    op.create_table(
        "roster_imports",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column(
            "exam_id",
            sa.String(length=32),
            sa.ForeignKey("exams.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("staff_id", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("roster_name", sa.String(length=300), nullable=False),
        sa.Column("photos_name", sa.String(length=300), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("basis", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_roster_imports_exam_id", "roster_imports", ["exam_id"])
    # --- end roster import ---


def downgrade() -> None:
    # --- roster import (branch admin-roster) ---
    op.drop_index("ix_roster_imports_exam_id", table_name="roster_imports")
    op.drop_table("roster_imports")
    # --- end roster import ---
