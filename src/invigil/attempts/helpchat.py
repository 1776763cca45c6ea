"""Help requests (求助) between a candidate and the staff of their room.

The conversation lives in the candidate's event log (kind ``help_message``), so it is kept,
ordered and tamper-evident with everything else that happened.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.models import Attempt, Event
from invigil.core.clock import iso
from invigil.core.context import AppContext

KIND = "help_message"


def post(
    session: Session, ctx: AppContext, attempt: Attempt, text: str, *, staff: str | None = None
) -> dict[str, Any]:
    sender = "staff" if staff else "candidate"
    event = events.append(
        session,
        attempt.id,
        KIND,
        at=ctx.clock.now(),
        actor=f"staff:{staff}" if staff else "candidate",
        data={"from": sender, "text": text.strip()},
        severity="warning" if sender == "candidate" else "info",
    )
    return {"seq": event.seq, "at": iso(event.at)}


def messages(session: Session, attempt: Attempt) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Event).where(Event.attempt_id == attempt.id, Event.kind == KIND).order_by(Event.seq)
    )
    return [
        {"seq": e.seq, "from": e.data.get("from"), "text": e.data.get("text"), "at": iso(e.at)}
        for e in rows
    ]
