from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from invigil.core.db import Base, UTCDateTime, new_id

ROLES = ("proctor", "tech", "reviewer", "examiner", "admin")


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The person's name as the exam office lists it (optional).
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # A disabled account cannot log in and its sessions were revoked when it was disabled.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffRoom(Base):
    """Which rooms a staff member works in (proctors see only these)."""

    __tablename__ = "staff_rooms"

    staff_id: Mapped[str] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True, index=True
    )
