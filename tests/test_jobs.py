"""The durable job queue: a backlog of background jobs (snapshot analysis) never holds up the
other kinds; batched kinds are claimed and stored together."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from invigil.analysis.jobs import BATCH
from invigil.core import jobs
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.jobs import Job, JobContext, claim, enqueue
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


def test_a_batch_is_claimed_at_once_and_a_job_that_spoils_its_preparation_fails_alone(
    app_ctx: AppContext, clock: FrozenClock
) -> None:
    """A batched kind's due jobs are leased together (up to the batch size); when preparing
    them together raises, each is prepared alone, so only the bad one is retried."""
    kind = "test.batched"
    stored: list[list[str]] = []

    def prepare_one(payload: dict[str, Any], ctx: JobContext) -> str:
        if payload["n"] == 2:
            raise ValueError("a bad payload")
        return str(payload["n"])

    def prepare_many(payloads: list[dict[str, Any]], ctx: JobContext) -> list[str]:
        return [prepare_one(p, ctx) for p in payloads]

    def store(session: Session, prepared: list[str], ctx: JobContext) -> None:
        stored.append(prepared)

    jobs.handler(kind)(lambda s, p, c: store(s, [prepare_one(p, c)], c))
    jobs.batched(kind, jobs.Batch(prepare_one, store, size=3, prepare_many=prepare_many))
    try:
        now = clock.now()
        with transaction(app_ctx.db) as session:
            for n in range(5):
                enqueue(session, kind, {"n": n}, now=now + timedelta(seconds=n))
        clock.advance(timedelta(seconds=10))
        ctx = app_ctx.job_context()
        assert jobs.run_one(ctx)
        # One claim took the three oldest; preparing them together failed on n=2, so 0 and 1
        # were prepared one by one and stored together.
        assert stored == [["0", "1"]]
        with app_ctx.db.session() as session:
            states = dict(session.execute(select(Job.payload["n"].as_integer(), Job.state)).all())
        assert states == {0: "done", 1: "done", 2: "pending", 3: "pending", 4: "pending"}
        assert jobs.run_one(ctx)
        assert stored == [["0", "1"], ["3", "4"]]
    finally:
        jobs._batches.pop(kind, None)
        jobs._handlers.pop(kind, None)


def test_a_claim_reads_the_index_and_not_the_backlog(
    app_ctx: AppContext, clock: FrozenClock
) -> None:
    """Behind a backlog of analysis, a claim still finds the one job of another kind first,
    then the backlog oldest first; and every statement it runs reads a range of an index
    (on SQLite, checked on the plans): a claim that sorted the whole backlog cost 17 ms of CPU
    behind 10,000 snapshots, 2.5 ms now (docs/benchmarks.md)."""
    now = clock.now()
    with transaction(app_ctx.db) as session:
        for i in range(2000):
            queued = now - timedelta(seconds=3000 - i)
            enqueue(session, ANALYSE_JOB, {"snapshot_id": f"s{i}"}, now=queued)
        enqueue(session, LOT_AUTO_ASSIGN, {"room_id": "r"}, now=now, run_at=now)
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        ran.append((statement, parameters))

    event.listen(app_ctx.db.engine, "before_cursor_execute", record)
    try:
        lease = timedelta(minutes=5)
        first = jobs._claim(app_ctx.db, now, lease)
        batch = jobs._claim(app_ctx.db, now, lease)
    finally:
        event.remove(app_ctx.db.engine, "before_cursor_execute", record)
    assert [j.kind for j in first] == [LOT_AUTO_ASSIGN]
    assert [j.payload["snapshot_id"] for j in batch] == [f"s{i}" for i in range(BATCH)]
    assert all(j.attempts == 1 for j in first + batch)
    if app_ctx.db.is_postgres:
        return  # its plans follow the table's statistics; the claims above are the check
    with app_ctx.db.engine.connect() as conn:
        for statement, parameters in ran:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
                continue
            plan = " | ".join(
                row[3]
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
            assert "SCAN" not in plan and "MULTI-INDEX OR" not in plan, (statement, plan)
            if statement.lstrip().upper().startswith("UPDATE"):
                assert "sqlite_autoindex_jobs_1 (id=?)" in plan, (statement, plan)


def test_a_job_whose_worker_died_on_every_attempt_is_failed_not_retried_forever(
    app_ctx: AppContext, clock: FrozenClock
) -> None:
    """A job that kills its worker (a crash, the OOM killer) never reaches the code that counts
    failures: at its last attempt, its expired lease fails it for good, and the claim goes on
    to the next job instead of taking the poison one first every time."""
    now = clock.now()
    with transaction(app_ctx.db) as session:
        poison = enqueue(session, LOT_AUTO_ASSIGN, {"room_id": "a"}, now=now - timedelta(hours=1))
        again = enqueue(session, LOT_AUTO_ASSIGN, {"room_id": "b"}, now=now - timedelta(hours=1))
        enqueue(session, LOT_AUTO_ASSIGN, {"room_id": "c"}, now=now - timedelta(minutes=5))
        assert poison is not None and again is not None
        for job, attempts in ((poison, 10), (again, 1)):
            job.state, job.attempts, job.max_attempts = "running", attempts, 10
            job.lease_expires_at = now - timedelta(seconds=1)
    lease = timedelta(minutes=5)
    first = claim(app_ctx.db, now, lease)
    assert first is not None and first.payload == {"room_id": "b"} and first.attempts == 2
    second = claim(app_ctx.db, now, lease)
    assert second is not None and second.payload == {"room_id": "c"}
    with app_ctx.db.session() as session:
        dead = session.get(Job, poison.id)
        assert dead is not None and dead.state == "failed" and dead.lease_expires_at is None
        assert dead.last_error is not None and "worker died" in dead.last_error
