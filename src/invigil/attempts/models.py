from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from invigil.core.db import Base, UTCDateTime, new_id
from invigil.exams.models import Candidate, Exam

GENESIS_HASH = "0" * 64


class Attempt(Base):
    """A candidate's one sitting of an exam, created with the roster."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("room_id", "lot_number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[str] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), unique=True
    )
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    lot_number: Mapped[int | None] = mapped_column(Integer)
    lot_drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    face_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the bound phone last reported (bound | sweeping | recording | stopped).
    evidence_state: Mapped[str | None] = mapped_column(String(16))
    evidence_state_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Head of the hash-chained event log; the row is locked while an event is appended.
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_event_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    # Individual arrangements by the exam office (attempts.arrangements): extra answering time,
    # and entry allowed until this moment although the exam's entry has closed.
    extra_time_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    late_entry_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the exam computer was last heard from, while the server holds it out of contact
    # (attempts/presence.py); None while it is in contact.
    desk_silent_since: Mapped[datetime | None] = mapped_column(UTCDateTime())

    exam: Mapped[Exam] = relationship()
    candidate: Mapped[Candidate] = relationship()

    # This candidate's own windows: the exam's, moved by their arrangements. Every decision
    # about one candidate (stage, questions, finish, uploads, login) reads these.
    @property
    def deadline(self) -> datetime:
        return self.exam.deadline + timedelta(seconds=self.extra_time_s or 0)

    @property
    def uploads_close_at(self) -> datetime:
        return self.deadline + timedelta(seconds=self.exam.upload_grace_after_s)

    @property
    def entry_closes_at(self) -> datetime:
        closes = self.exam.entry_closes_at
        if self.late_entry_until is not None and self.late_entry_until > closes:
            return self.late_entry_until
        return closes


class AuthSession(Base):
    """A bearer token's server side. The token itself is never stored, only its keyed digest."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_attempt_live", "attempt_id", "revoked_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # candidate | staff | phone
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    staff_id: Mapped[str | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    client_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the exam computer still holds to upload, as its last heartbeat said (the proctor's
    # tile): the server alone sees only the gaps between chunks it has, never a late tail.
    upload_backlog_chunks: Mapped[int | None] = mapped_column(Integer)
    upload_backlog_bytes: Mapped[int | None] = mapped_column(BigInteger)


class AttachmentRead(Base):
    __tablename__ = "attachment_reads"

    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True
    )
    attachment_id: Mapped[str] = mapped_column(
        ForeignKey("attachments.id", ondelete="CASCADE"), primary_key=True
    )
    read_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Event(Base):
    """One entry of an attempt's append-only log; ``hash`` covers ``prev_hash`` and the entry."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("attempt_id", "seq"),
        Index("ix_events_attempt_kind_at", "attempt_id", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | violation
    actor: Mapped[str] = mapped_column(String(120))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class PhoneBindingOffer(Base):
    """A one-time way for a phone to become a candidate's evidence camera: the QR code carries
    the token, the typed binding code is the fallback. Both are stored only as digests."""

    __tablename__ = "phone_binding_offers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), index=True
    )
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    code_digest: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ResitDecision(Base):
    """The exam office's decision on a re-sit proposal (attempts.arrangements): proposals are
    computed from the recorded outages; only the decision is stored."""

    __tablename__ = "resit_decisions"

    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))  # confirmed | dismissed
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    # The outages the office saw when deciding.
    outages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
