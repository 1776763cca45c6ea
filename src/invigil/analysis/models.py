"""What snapshot analysis stores: the facts of each analysed frame and the flags in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from invigil.core.db import Base, UTCDateTime


class SnapshotAnalysis(Base):
    """One analysed snapshot (webcam or evidence; screens are not analysed).

    Facts, not verdicts: the rules read these rows with the thresholds in force, so a changed
    threshold re-reads the same measurements.
    """

    __tablename__ = "snapshot_analyses"
    __table_args__ = (Index("ix_snapshot_analyses_stream_at", "attempt_id", "stream", "taken_at"),)

    snapshot_id: Mapped[str] = mapped_column(
        ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(16))  # webcam | evidence
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    analysed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # False when the JPEG did not decode: kept so the job is not retried, counted as nothing.
    readable: Mapped[bool] = mapped_column(Boolean, default=True)
    brightness: Mapped[float] = mapped_column(Float, default=0.0)
    contrast: Mapped[float] = mapped_column(Float, default=0.0)
    covered: Mapped[bool] = mapped_column(Boolean, default=False)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    scores: Mapped[list[float]] = mapped_column(JSON, default=list)  # counted faces, best first
    rejected_score: Mapped[float | None] = mapped_column(Float)
    distance: Mapped[float | None] = mapped_column(Float)  # to the enrolled face
    elapsed_ms: Mapped[int] = mapped_column(Integer, default=0)
    # How the facts were obtained (analysis.frames): "detected", "region" (detected where the
    # picture moved and around the last detected frame's faces), "embedded" (detected and the
    # face embedded), "unchanged" (the picture matched the last detected frame of the stream,
    # whose facts were copied), "light" (a uniform frame: light only).
    method: Mapped[str] = mapped_column(String(16), default="detected")
    # The frame's 32x24 grey thumbnail: what the next snapshot of the stream is compared with.
    # This row is the per-stream state, so any worker process can analyse the next snapshot.
    thumb: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Counted faces' boxes (left, top, right, bottom) in the snapshot's pixels, best first.
    boxes: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    # The one counted face has its nose and mouth covered (a mask): see flags.condition.
    face_covered: Mapped[bool] = mapped_column(Boolean, default=False)
    # Detected frames since the distance was last computed (0: this frame embedded it); None
    # when no embedding lies behind this row's distance.
    since_embedding: Mapped[int | None] = mapped_column(Integer)
    # When the stream's last whole-frame detection behind these facts was taken: a "region"
    # detection or an "unchanged" copy stands in for one for at most MAX_SKIP_SECONDS after it.
    # None on rows from before regions were detected (a detection then was always whole).
    whole_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FlagState(Base):
    """The flags currently raised for one attempt's stream, so a lasting condition is one event.

    ``active`` maps a flag to when it started, its snapshot and the event's seq; ``last_at`` is
    the newest snapshot the rules have seen (an older one analysed late changes no flag).
    """

    __tablename__ = "analysis_flag_states"

    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
