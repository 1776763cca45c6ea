"""review: verdict re-opening after publication

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A verdict that would replace a confirmed one waits for a second reviewer.
    with op.batch_alter_table("review_verdicts") as batch:
        batch.add_column(sa.Column("replaces_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_verdicts") as batch:
        batch.drop_column("replaces_id")
