"""Tables of the evidence domain: each exam's retention period and the log of purges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from invigil.core.db import Base, UTCDateTime, new_id


class ExamRetention(Base):
    """How long an exam's recordings, snapshots and face data are kept after its deadline."""

    __tablename__ = "exam_retention"

    exam_id: Mapped[str] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), primary_key=True
    )
    retention_s: Mapped[int] = mapped_column(Integer)
    purge_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DataPurge(Base):
    """One attempt's purge: when, by whom (the job or an admin's CLI run) and what went."""

    __tablename__ = "data_purges"
    __table_args__ = (Index("ix_data_purges_attempt_at", "attempt_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(120))
    # Counts and bytes per category: chunks, originals, media, snapshots, photos, embeddings …
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
