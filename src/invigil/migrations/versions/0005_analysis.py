"""analysis: snapshot analysis results, flag states, per-exam flag overrides

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = invigil.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flags", sa.JSON(), nullable=True))

    op.create_table(
        "snapshot_analyses",
        sa.Column("snapshot_id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("taken_at", UTC, nullable=False),
        sa.Column("analysed_at", UTC, nullable=False),
        sa.Column("readable", sa.Boolean(), nullable=False),
        sa.Column("brightness", sa.Float(), nullable=False),
        sa.Column("contrast", sa.Float(), nullable=False),
        sa.Column("covered", sa.Boolean(), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("rejected_score", sa.Float(), nullable=True),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_snapshot_analyses_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_snapshot_analyses_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", name=op.f("pk_snapshot_analyses")),
    )
    with op.batch_alter_table("snapshot_analyses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_snapshot_analyses_stream_at", ["attempt_id", "stream", "taken_at"], unique=False
        )

    op.create_table(
        "analysis_flag_states",
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("last_at", UTC, nullable=False),
        sa.Column("active", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_analysis_flag_states_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attempt_id", "stream", name=op.f("pk_analysis_flag_states")),
    )


def downgrade() -> None:
    op.drop_table("analysis_flag_states")
    with op.batch_alter_table("snapshot_analyses", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshot_analyses_stream_at")
    op.drop_table("snapshot_analyses")
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.drop_column("flags")
