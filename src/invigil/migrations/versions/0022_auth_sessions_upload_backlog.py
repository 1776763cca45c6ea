"""auth_sessions: the exam computer's upload backlog, from its heartbeat (the proctor's tile)

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_sessions") as batch:
        batch.add_column(sa.Column("upload_backlog_chunks", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("upload_backlog_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions") as batch:
        batch.drop_column("upload_backlog_bytes")
        batch.drop_column("upload_backlog_chunks")
