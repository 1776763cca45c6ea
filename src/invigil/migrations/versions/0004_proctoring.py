"""proctoring: alert acknowledgements, face-login help requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:56:51.693588
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_acks",
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("acked_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_alert_acks_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_alert_acks_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("staff_id", "attempt_id", "seq", name=op.f("pk_alert_acks")),
    )
    op.create_table(
        "login_help_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("face_key", sa.String(length=300), nullable=True),
        sa.Column("poll_digest", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", invigil.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("token_issued_at", invigil.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_login_help_requests_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_login_help_requests_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_help_requests")),
        sa.UniqueConstraint("poll_digest", name=op.f("uq_login_help_requests_poll_digest")),
    )
    with op.batch_alter_table("login_help_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_help_requests_attempt_id"), ["attempt_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_login_help_requests_room_id"), ["room_id"], unique=False
        )
        batch_op.create_index(
            "ix_login_help_requests_status_created", ["status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("login_help_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_login_help_requests_status_created")
        batch_op.drop_index(batch_op.f("ix_login_help_requests_room_id"))
        batch_op.drop_index(batch_op.f("ix_login_help_requests_attempt_id"))

    op.drop_table("login_help_requests")
    op.drop_table("alert_acks")
