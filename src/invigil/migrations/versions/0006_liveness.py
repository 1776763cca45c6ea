"""identity: liveness challenges

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "liveness_challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.String(length=64), nullable=False),
        sa.Column("created_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", invigil.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_liveness_challenges_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_liveness_challenges")),
    )
    with op.batch_alter_table("liveness_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_liveness_challenges_attempt_id"), ["attempt_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("liveness_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_liveness_challenges_attempt_id"))
    op.drop_table("liveness_challenges")
