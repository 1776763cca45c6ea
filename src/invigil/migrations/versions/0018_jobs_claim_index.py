"""jobs: the claim's index is (state, kind, run_at), not (state, run_at)

A claim reads the oldest due jobs of one kind. With (state, run_at) it walked every due job of
the backlog to find one of another kind, so a backlog of analysis made each claim slower
(docs/benchmarks.md, "Snapshot analysis").

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_claim", "jobs", ["state", "kind", "run_at"])
    op.drop_index("ix_jobs_due", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_due", "jobs", ["state", "run_at"])
    op.drop_index("ix_jobs_claim", table_name="jobs")
