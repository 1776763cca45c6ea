"""Rulings, verdicts, the review audit log, blind score sheets, scores and publication."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from invigil.core.db import Base, UTCDateTime, new_id


class ExamStaff(Base):
    """Which exam files list a staff member. Staff accounts are shared across exams, and
    examiners have no rooms, so this is how an examiner is tied to the exams they score."""

    __tablename__ = "exam_staff"

    exam_id: Mapped[str] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[str] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)


class Ruling(Base):
    """A reviewer's ruling on one flagged event. Never edited: a later row on the same event
    supersedes it, and both stay."""

    __tablename__ = "review_rulings"
    __table_args__ = (Index("ix_review_rulings_attempt_seq", "attempt_id", "event_seq", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    event_seq: Mapped[int] = mapped_column(Integer)
    violation: Mapped[bool] = mapped_column(Boolean)
    rule: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Verdict(Base):
    """A candidate's overall ruling. "Violation" needs a second, different reviewer's
    confirmation; a newer verdict replaces the current one (the old rows stay). A confirmed
    verdict is replaced only once a second reviewer confirms the new one: until then the new
    one is pending (``replaces_id`` set, state proposed) and the confirmed one stays current."""

    __tablename__ = "review_verdicts"
    __table_args__ = (Index("ix_review_verdicts_attempt", "attempt_id", "proposed_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    violation: Mapped[bool] = mapped_column(Boolean)
    rule: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # proposed | confirmed
    proposed_by_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    proposed_by: Mapped[str] = mapped_column(String(100))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_by_id: Mapped[str | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE")
    )
    confirmed_by: Mapped[str | None] = mapped_column(String(100))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirm_reason: Mapped[str | None] = mapped_column(Text)
    # Set when a newer verdict for the same attempt replaces this one.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The confirmed verdict this one would replace once confirmed (None: it replaced at once).
    replaces_id: Mapped[str | None] = mapped_column(String(32))


class AuditEntry(Base):
    """Append-only: every review view, ruling, verdict, scoring read and publication. The
    database refuses UPDATE and DELETE (triggers in migration 0007)."""

    __tablename__ = "review_audit_log"
    __table_args__ = (
        Index("ix_review_audit_log_attempt", "attempt_id", "at"),
        Index("ix_review_audit_log_exam", "exam_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    staff_id: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    exam_id: Mapped[str | None] = mapped_column(String(32))
    attempt_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ScoreSheet(Base):
    """What an examiner scores: an opaque random id standing for one attempt, so nothing an
    examiner holds leads back to the candidate."""

    __tablename__ = "score_sheets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Score(Base):
    """One examiner's scores for one sheet, submitted once."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("sheet_id", "examiner_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet_id: Mapped[str] = mapped_column(
        ForeignKey("score_sheets.id", ondelete="CASCADE"), index=True
    )
    examiner_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    marks: Mapped[list[float]] = mapped_column(JSON)
    total: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Publication(Base):
    """An exam's scores are published (and from then on frozen)."""

    __tablename__ = "publications"

    exam_id: Mapped[str] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), primary_key=True
    )
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[str] = mapped_column(String(100))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
