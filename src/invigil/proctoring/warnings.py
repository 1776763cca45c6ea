"""Warnings a proctor sent to a candidate, as the desk shows them (``state()["warnings"]``).

Kept free of other domains' services so the candidate's state can import it without a cycle.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts.models import Event
from invigil.core.clock import iso

WARNING_KIND = "warning"


def warnings_for(session: Session, attempt_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Event)
        .where(Event.attempt_id == attempt_id, Event.kind == WARNING_KIND)
        .order_by(Event.seq)
    )
    return [{"seq": e.seq, "text": e.data.get("text", ""), "at": iso(e.at)} for e in rows]
