"""review: rulings, audit log, scores, publication

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invigil.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = invigil.core.db.UTCDateTime(timezone=True)
APPEND_ONLY = ("review_audit_log", "review_rulings")


def upgrade() -> None:
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "scoring_rule", sa.String(length=16), nullable=False, server_default="trimmed_mean"
            )
        )
        batch_op.add_column(sa.Column("scoring_min_examiners", sa.Integer(), nullable=True))
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("points", sa.Integer(), nullable=False, server_default="10"))

    op.create_table(
        "exam_staff",
        sa.Column("exam_id", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exam_id"], ["exams.id"], name=op.f("fk_exam_staff_exam_id_exams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_exam_staff_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("exam_id", "staff_id", name=op.f("pk_exam_staff")),
    )
    with op.batch_alter_table("exam_staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exam_staff_staff_id"), ["staff_id"], unique=False)

    op.create_table(
        "review_rulings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("violation", sa.Boolean(), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_review_rulings_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_review_rulings_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_rulings")),
    )
    with op.batch_alter_table("review_rulings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_rulings_attempt_seq", ["attempt_id", "event_seq", "id"], unique=False
        )

    op.create_table(
        "review_verdicts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("violation", sa.Boolean(), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("proposed_by_id", sa.String(length=32), nullable=False),
        sa.Column("proposed_by", sa.String(length=100), nullable=False),
        sa.Column("proposed_at", UTC, nullable=False),
        sa.Column("confirmed_by_id", sa.String(length=32), nullable=True),
        sa.Column("confirmed_by", sa.String(length=100), nullable=True),
        sa.Column("confirmed_at", UTC, nullable=True),
        sa.Column("confirm_reason", sa.Text(), nullable=True),
        sa.Column("superseded_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_review_verdicts_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"],
            ["staff_users.id"],
            name=op.f("fk_review_verdicts_confirmed_by_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by_id"],
            ["staff_users.id"],
            name=op.f("fk_review_verdicts_proposed_by_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_verdicts")),
    )
    with op.batch_alter_table("review_verdicts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_verdicts_attempt", ["attempt_id", "proposed_at"], unique=False
        )

    op.create_table(
        "review_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=True),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("exam_id", sa.String(length=32), nullable=True),
        sa.Column("attempt_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_audit_log")),
    )
    with op.batch_alter_table("review_audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_review_audit_log_attempt", ["attempt_id", "at"], unique=False)
        batch_op.create_index("ix_review_audit_log_exam", ["exam_id", "at"], unique=False)

    op.create_table(
        "score_sheets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("exam_id", sa.String(length=32), nullable=False),
        sa.Column("attempt_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_score_sheets_attempt_id_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["exam_id"],
            ["exams.id"],
            name=op.f("fk_score_sheets_exam_id_exams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_sheets")),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_score_sheets_attempt_id")),
    )
    with op.batch_alter_table("score_sheets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_score_sheets_exam_id"), ["exam_id"], unique=False)

    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sheet_id", sa.String(length=32), nullable=False),
        sa.Column("examiner_id", sa.String(length=32), nullable=False),
        sa.Column("marks", sa.JSON(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("submitted_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["examiner_id"],
            ["staff_users.id"],
            name=op.f("fk_scores_examiner_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sheet_id"],
            ["score_sheets.id"],
            name=op.f("fk_scores_sheet_id_score_sheets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.UniqueConstraint("sheet_id", "examiner_id", name=op.f("uq_scores_sheet_id_examiner_id")),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scores_sheet_id"), ["sheet_id"], unique=False)

    op.create_table(
        "publications",
        sa.Column("exam_id", sa.String(length=32), nullable=False),
        sa.Column("published_at", UTC, nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exam_id"],
            ["exams.id"],
            name=op.f("fk_publications_exam_id_exams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("exam_id", name=op.f("pk_publications")),
    )

    # The review audit log and the rulings are append-only: the database itself refuses edits
    # and deletions (a newer ruling supersedes an older one by being added, never by an edit).
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(
                f"CREATE FUNCTION {table}_append_only() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION '{table} is append-only'; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {table}_append_only "
                f"BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            )
        else:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} "
                    f"BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION {table}_append_only()")
        else:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{action}")
    op.drop_table("publications")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scores_sheet_id"))
    op.drop_table("scores")
    with op.batch_alter_table("score_sheets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_score_sheets_exam_id"))
    op.drop_table("score_sheets")
    with op.batch_alter_table("review_audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_review_audit_log_exam")
        batch_op.drop_index("ix_review_audit_log_attempt")
    op.drop_table("review_audit_log")
    with op.batch_alter_table("review_verdicts", schema=None) as batch_op:
        batch_op.drop_index("ix_review_verdicts_attempt")
    op.drop_table("review_verdicts")
    with op.batch_alter_table("review_rulings", schema=None) as batch_op:
        batch_op.drop_index("ix_review_rulings_attempt_seq")
    op.drop_table("review_rulings")
    with op.batch_alter_table("exam_staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exam_staff_staff_id"))
    op.drop_table("exam_staff")
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_column("points")
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.drop_column("scoring_min_examiners")
        batch_op.drop_column("scoring_rule")
