"""analysis: fast detector state

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snapshot_analyses") as batch:
        batch.add_column(
            sa.Column("method", sa.String(16), nullable=False, server_default="detected")
        )
        batch.add_column(sa.Column("thumb", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("boxes", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("face_covered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("since_embedding", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshot_analyses") as batch:
        for column in ("since_embedding", "face_covered", "boxes", "thumb", "method"):
            batch.drop_column(column)
