"""Tables of the proctor console: per-staff alert acknowledgements and face-login help
requests. Warnings and notes are events in the candidate's log, not tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from invigil.core.db import Base, UTCDateTime, new_id

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
# Replaced by a newer request from the same client, or another request of the candidate was
# approved.
CANCELLED = "cancelled"


class AlertAck(Base):
    """A staff member acknowledged one alert (a violation event ``seq`` of an attempt)."""

    __tablename__ = "alert_acks"

    staff_id: Mapped[str] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    acked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginHelpRequest(Base):
    """A candidate whose face login kept failing asks tech support to let them in by hand.

    The candidate has no token yet; they poll with ``poll_token`` (stored as a digest). Once
    approved, the first poll issues the candidate session (``token_issued_at``), once.
    """

    __tablename__ = "login_help_requests"
    __table_args__ = (Index("ix_login_help_requests_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), index=True
    )
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text, default="")
    face_key: Mapped[str | None] = mapped_column(String(300))
    # The asking client's address: limits count per address, and a request from one address
    # never cancels another address's pending request (tech support sees both).
    client_ip: Mapped[str | None] = mapped_column(String(64))
    poll_digest: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    token_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
