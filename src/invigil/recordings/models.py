"""Recordings, their chunks, snapshots and the staff access log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from invigil.core.db import Base, UTCDateTime, new_id

KINDS = ("webcam", "screen", "evidence")
OPEN, FINALIZED = "open", "finalized"


class Recording(Base):
    """One continuous MediaRecorder run of one stream. After a crash or reload the client starts
    a new one of the same kind, so several per kind and attempt are normal."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_attempt_kind", "attempt_id", "kind", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # webcam | screen | evidence
    mime: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=OPEN)
    # Server time at creation (what review lines recordings up by) and what the client claimed.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    client_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(16))  # candidate | phone
    # Set by finalize: the count and sha256 of the exact in-order join, kept as original_key.
    chunk_count: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    original_key: Mapped[str | None] = mapped_column(String(300))
    # "server" when uploads closed before the client finalized (its browser lost, say): the
    # server then kept what it held (recordings/closeout.py). None: finalized by the client.
    closed_by: Mapped[str | None] = mapped_column(String(16))
    # Set by assembly: the remuxed, seekable file.
    media_key: Mapped[str | None] = mapped_column(String(300))
    media_mime: Mapped[str | None] = mapped_column(String(100))
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    duration_s: Mapped[float | None] = mapped_column()
    assembled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Chunk(Base):
    """A stored chunk. Rows are never updated: a chunk, once acknowledged, is what it is."""

    __tablename__ = "recording_chunks"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Snapshot(Base):
    """A JPEG of one stream at a server time; all are kept, the newest per kind is live."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_attempt_kind_at", "attempt_id", "kind", "taken_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blob_key: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class RecordingAccess(Base):
    """Append-only: every staff read of a recording (status, media, original), with its range."""

    __tablename__ = "recording_access_log"
    __table_args__ = (Index("ix_recording_access_log_recording", "recording_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(100))
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    attempt_id: Mapped[str] = mapped_column(String(32))
    what: Mapped[str] = mapped_column(String(16))  # status | media | original
    byte_range: Mapped[str | None] = mapped_column(String(200))
