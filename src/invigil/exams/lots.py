"""Lot drawing (抽签): a random unused number per room, never two alike.

The room row is locked for the draw, so concurrent clicks in one room queue up; each sees the
numbers the previous ones took. Numbers come from the OS CSPRNG.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.exams.models import Room

LOT_AUTO_ASSIGN = "exams.lot_auto_assign"


def draw(session: Session, attempt_id: str, now: datetime, *, by: str) -> int:
    """The attempt's lot number, drawn now if it has none. ``by`` is candidate or auto."""
    room_id = session.scalar(select(Attempt.room_id).where(Attempt.id == attempt_id))
    session.execute(select(Room.id).where(Room.id == room_id).with_for_update())
    attempt = session.scalars(
        select(Attempt).where(Attempt.id == attempt_id).execution_options(populate_existing=True)
    ).one()
    if attempt.lot_number is not None:
        return attempt.lot_number
    used = set(
        session.scalars(
            select(Attempt.lot_number).where(
                Attempt.room_id == room_id, Attempt.lot_number.is_not(None)
            )
        )
    )
    size = session.scalar(select(func.count()).where(Attempt.room_id == room_id)) or 0
    free = [n for n in range(1, size + 1) if n not in used]
    number = secrets.choice(free)
    attempt.lot_number = number
    attempt.lot_drawn_at = now
    events.append(
        session,
        attempt.id,
        "lot_drawn",
        at=now,
        actor="candidate" if by == "candidate" else "system",
        data={"number": number, "by": by, "room_size": size},
    )
    return number


@jobs.handler(LOT_AUTO_ASSIGN)
def auto_assign(session: Session, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    """When drawing closes, everyone who has no number gets one. Safe to run again."""
    now = ctx.clock.now()
    pending = list(
        session.scalars(
            select(Attempt.id).where(
                Attempt.exam_id == payload["exam_id"], Attempt.lot_number.is_(None)
            )
        )
    )
    secrets.SystemRandom().shuffle(pending)
    for attempt_id in pending:
        draw(session, attempt_id, now, by="auto")
