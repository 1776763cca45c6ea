"""Whether each entered candidate's exam computer is still in contact, as the server sees it.

The desk reports its own network losses (``offline`` / ``online``) when it is back, but a
browser that crashed, a laptop that was shut or a candidate who walked away with it reports
nothing. Here the server notices: from entering until the deadline, a desk not heard from
(heartbeats, uploads) for ``silent_after`` gets a ``desk_silent`` event, a suspected violation
that reaches the room's consoles as an alert at once; when it is back (its next heartbeat, a
new login included) a ``desk_back`` event carries how long it was gone, which re-sit proposals
count as an outage (attempts/arrangements.py) — also when it never came back.

One sweep per exam every ``SWEEP_EVERY``, a job that queues its own successor while anyone of
the exam is still answering. The run times sit on a fixed grid, so the sweeps started by
different candidates' entering (in any process) fall on the same jobs and dedupe.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.models import Attempt, AuthSession
from invigil.core import jobs
from invigil.core.clock import ensure_utc, iso

SWEEP_JOB = "attempts.desk_presence"
SWEEP_EVERY = timedelta(seconds=10)
SILENT = "desk_silent"
BACK = "desk_back"


def silent_after(alive_seconds: int) -> timedelta:
    """Out of contact: well past the time after which a console tile shows 离线, so one late
    heartbeat on a slow network is not an alert."""
    return timedelta(seconds=max(30, 1.5 * alive_seconds))


def schedule(session: Session, exam_id: str, now: datetime) -> None:
    """Sweep the exam's desks from the next grid point on."""
    step = SWEEP_EVERY.total_seconds()
    at = datetime.fromtimestamp(math.floor(now.timestamp() / step + 1) * step, UTC)
    jobs.enqueue(
        session,
        SWEEP_JOB,
        {"exam_id": exam_id},
        now=now,
        run_at=at,
        dedupe_key=f"presence:{exam_id}:{iso(at)}",
    )


def heard_from(session: Session, attempt: Attempt, now: datetime) -> None:
    """The desk is in contact (a heartbeat): close an out-of-contact spell, if one is open."""
    since = attempt.desk_silent_since
    if since is None:
        return
    attempt.desk_silent_since = None
    gone_ms = int((now - ensure_utc(since)).total_seconds() * 1000)
    events.append(
        session, attempt.id, BACK, at=now, data={"since": iso(since), "duration_ms": gone_ms}
    )


@jobs.handler(SWEEP_JOB)
def sweep(session: Session, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    exam_id = str(payload["exam_id"])
    now = ctx.clock.now()
    quiet = silent_after(ctx.settings.session_alive_seconds)
    seen = (
        select(AuthSession.attempt_id, func.max(AuthSession.last_seen_at).label("last"))
        .where(
            AuthSession.kind == "candidate",
            AuthSession.attempt_id.in_(select(Attempt.id).where(Attempt.exam_id == exam_id)),
        )
        .group_by(AuthSession.attempt_id)
        .subquery()
    )
    answering = session.execute(
        select(Attempt, seen.c.last)
        .join(seen, seen.c.attempt_id == Attempt.id)
        .where(
            Attempt.exam_id == exam_id,
            Attempt.entered_at.is_not(None),
            Attempt.finished_at.is_(None),
        )
    ).all()
    running = False
    for attempt, last in answering:
        if now >= attempt.deadline:
            continue
        running = True
        last = ensure_utc(last)
        if attempt.desk_silent_since is None and now - last >= quiet:
            attempt.desk_silent_since = last
            events.append(
                session,
                attempt.id,
                SILENT,
                at=now,
                data={"last_seen_at": iso(last), "seconds": int((now - last).total_seconds())},
            )
    if running:
        schedule(session, exam_id, now)
