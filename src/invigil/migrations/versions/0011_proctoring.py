"""proctoring: face-login help requests remember the client address

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Face-login help requests remember the asking client's address (per-address limits, and
    # no cancelling of another client's pending request).
    with op.batch_alter_table("login_help_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_ip", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("login_help_requests", schema=None) as batch_op:
        batch_op.drop_column("client_ip")
