"""security: login throttles and revoked links

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_hits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_hits")),
    )
    with op.batch_alter_table("rate_hits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_hits_bucket_at", ["bucket", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rate_hits_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rate_hits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_hits_at"))
        batch_op.drop_index("ix_rate_hits_bucket_at")
    op.drop_table("rate_hits")
