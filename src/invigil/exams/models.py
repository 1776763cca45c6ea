from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from invigil.core.db import Base, UTCDateTime, new_id


class Exam(Base):
    __tablename__ = "exams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(300))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The offset the exam file gave, so pages can show local exam time as the admin wrote it.
    utc_offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[int] = mapped_column(Integer)
    login_opens_before_s: Mapped[int] = mapped_column(Integer)
    entry_opens_before_s: Mapped[int] = mapped_column(Integer)
    entry_closes_after_s: Mapped[int] = mapped_column(Integer)
    lot_closes_before_s: Mapped[int] = mapped_column(Integer)
    upload_grace_after_s: Mapped[int] = mapped_column(Integer)
    evidence_camera: Mapped[bool] = mapped_column(Boolean, default=True)
    liveness: Mapped[bool] = mapped_column(Boolean, default=True)
    # 模拟考试: no enrolment photos; a candidate's first successful login face becomes the reference.
    practice: Mapped[bool] = mapped_column(Boolean, default=False)
    help_phone: Mapped[str] = mapped_column(String(64), default="")
    # How examiners' totals become the final score (review.scoring): trimmed_mean | mean, and
    # how many examiners each candidate needs before publishing (None: as many as listed).
    scoring_rule: Mapped[str] = mapped_column(String(16), default="trimmed_mean")
    scoring_min_examiners: Mapped[int | None] = mapped_column(Integer)
    # The exam file's `exam.flags`: per-exam overrides of the snapshot-flag thresholds
    # (invigil.analysis.thresholds), validated on import.
    flags: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The exam file's `exam.rules.resit` in seconds (attempts.arrangements); None: the defaults.
    resit_rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    rooms: Mapped[list[Room]] = relationship(back_populates="exam", order_by="Room.code")
    questions: Mapped[list[Question]] = relationship(order_by="Question.position")
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.position")

    # The exam day's windows, all decided on the server clock.
    @property
    def login_opens_at(self) -> datetime:
        return self.starts_at - timedelta(seconds=self.login_opens_before_s)

    @property
    def entry_opens_at(self) -> datetime:
        return self.starts_at - timedelta(seconds=self.entry_opens_before_s)

    @property
    def entry_closes_at(self) -> datetime:
        return self.starts_at + timedelta(seconds=self.entry_closes_after_s)

    @property
    def lot_closes_at(self) -> datetime:
        return self.starts_at - timedelta(seconds=self.lot_closes_before_s)

    @property
    def deadline(self) -> datetime:
        return self.starts_at + timedelta(seconds=self.duration_s)

    @property
    def uploads_close_at(self) -> datetime:
        return self.deadline + timedelta(seconds=self.upload_grace_after_s)


class Room(Base):
    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("exam_id", "code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # the id the exam file gives, e.g. R01
    name: Mapped[str] = mapped_column(String(200))

    exam: Mapped[Exam] = relationship(back_populates="rooms")


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("exam_id", "ticket"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    ticket: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    photo_key: Mapped[str | None] = mapped_column(String(300))
    face_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)

    room: Mapped[Room] = relationship()


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("exam_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(Integer, default=10)  # the examiners' scale: 0..points


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("exam_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(100))
    blob_key: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
