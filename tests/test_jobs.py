"""The durable job queue: a backlog of background jobs (snapshot analysis) never holds up the
other kinds."""

from __future__ import annotations

from datetime import timedelta

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.jobs import claim, enqueue
from invigil.exams.lots import LOT_AUTO_ASSIGN
from invigil.recordings.snapshots import ANALYSE_JOB


def test_other_jobs_are_claimed_before_a_background_backlog(
    app_ctx: AppContext, clock: FrozenClock
) -> None:
    now = clock.now()
    with transaction(app_ctx.db) as session:
        for i in range(50):  # queued first, due first
            enqueue(session, ANALYSE_JOB, {"snapshot_id": f"s{i}"}, now=now - timedelta(minutes=5))
        enqueue(session, LOT_AUTO_ASSIGN, {"room_id": "r"}, now=now, run_at=now)
    lease = timedelta(minutes=5)
    first = claim(app_ctx.db, now, lease)
    assert first is not None and first.kind == LOT_AUTO_ASSIGN
    # Then the backlog, oldest first.
    second = claim(app_ctx.db, now, lease)
    assert second is not None and second.kind == ANALYSE_JOB
    assert second.payload == {"snapshot_id": "s0"}
