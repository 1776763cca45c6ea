"""analysis: when each stream's frame was last detected whole

A detection may look only where the picture moved (analysis.frames, "region"); the time of the
stream's last whole-frame detection bounds how long that, or an unchanged frame, may stand in
for one. Rows from before were all whole-frame detections or copies of one: NULL reads as the
row's own time for a detection.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snapshot_analyses") as batch:
        batch.add_column(
            sa.Column("whole_at", invigil.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("snapshot_analyses") as batch:
        batch.drop_column("whole_at")
