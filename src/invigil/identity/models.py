"""Tables of the identity domain: liveness challenges handed out before a face login."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from invigil.core.db import Base, UTCDateTime, new_id


class LivenessChallenge(Base):
    """A random head-turn sequence a candidate must perform in their next face login.

    Valid for one login attempt (``used_at`` is set whether it passes or not) and only until
    ``expires_at``, so frames recorded for one challenge cannot be replayed for another."""

    __tablename__ = "liveness_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), index=True
    )
    steps: Mapped[str] = mapped_column(String(64))  # comma-separated: "left,right"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
