"""recordings: chunks, snapshots, the staff access log (append-only)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:28:53.950438
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("mime", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("client_started_at", invigil.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=16), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("finalized_at", invigil.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("original_key", sa.String(length=300), nullable=True),
        sa.Column("media_key", sa.String(length=300), nullable=True),
        sa.Column("media_mime", sa.String(length=100), nullable=True),
        sa.Column("media_size", sa.BigInteger(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("assembled_at", invigil.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_recordings_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recordings_attempt_kind", ["attempt_id", "kind", "created_at"], unique=False
        )

    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("taken_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blob_key", sa.String(length=300), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_snapshots_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_snapshots_attempt_kind_at", ["attempt_id", "kind", "taken_at"], unique=False
        )

    op.create_table(
        "recording_access_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("what", sa.String(length=16), nullable=False),
        sa.Column("byte_range", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_access_log_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_recording_access_log_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_access_log")),
    )
    with op.batch_alter_table("recording_access_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recording_access_log_recording", ["recording_id", "at"], unique=False
        )

    op.create_table(
        "recording_chunks",
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=300), nullable=False),
        sa.Column("received_at", invigil.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_chunks_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("recording_id", "seq", name=op.f("pk_recording_chunks")),
    )

    # The access log is append-only: the database itself refuses edits and deletions.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION recording_access_log_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'recording_access_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER recording_access_log_append_only "
            "BEFORE UPDATE OR DELETE ON recording_access_log "
            "FOR EACH ROW EXECUTE FUNCTION recording_access_log_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER recording_access_log_no_{action.lower()} "
                f"BEFORE {action} ON recording_access_log "
                "BEGIN SELECT RAISE(ABORT, 'recording_access_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER recording_access_log_append_only ON recording_access_log")
        op.execute("DROP FUNCTION recording_access_log_append_only()")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER recording_access_log_no_{action}")
    op.drop_table("recording_chunks")
    with op.batch_alter_table("recording_access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_recording_access_log_recording")

    op.drop_table("recording_access_log")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshots_attempt_kind_at")

    op.drop_table("snapshots")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_attempt_kind")

    op.drop_table("recordings")
