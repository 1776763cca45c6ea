"""Two logins of one candidate at the same moment, in two processes (here: two connections):
the second decides only after the first committed, so it sees the first's session."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import PG_URL
from sqlalchemy import select

from invigil.attempts import sessions
from invigil.attempts.models import Attempt
from invigil.core.context import AppContext
from invigil.exams.models import Candidate

from .conftest import SKIP_REASON

# SQLite has one writer at a time anyway (every transaction is BEGIN IMMEDIATE).
pytestmark = pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)


def test_a_login_waits_for_the_one_before_it(app_ctx: AppContext, exam_id: str) -> None:
    db = app_ctx.db
    now = app_ctx.clock.now()
    alive = timedelta(seconds=app_ctx.settings.session_alive_seconds)
    with db.session() as s:
        attempt_id = s.scalars(
            select(Attempt.id).join(Candidate).where(Candidate.ticket == "1001")
        ).one()

    first = db.session()
    first.begin()
    try:
        assert sessions.live_sessions(first, attempt_id, "candidate", now, alive) == []
        issued = sessions.issue(first, app_ctx, "candidate", now, attempt_id=attempt_id)

        seen: list[list[str]] = []

        def second_login() -> None:
            with db.session() as s, s.begin():
                live = sessions.live_sessions(s, attempt_id, "candidate", now, alive)
                seen.append([x.id for x in live])

        thread = threading.Thread(target=second_login)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the second login decided while the first was undecided"
        first.commit()
    finally:
        first.close()
    thread.join(10)
    assert seen == [[issued.session.id]]
