"""The group commit under lock contention: a transaction PostgreSQL rolled back as a deadlock
victim is run again, and the attempt locks that order events and analyses never block the
foreign-key lock of an upload's insert (the deadlock bench/ingest.py found under load)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PG_URL
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import OperationalError

from invigil.attempts import events, sessions
from invigil.attempts.models import Attempt, AuthSession
from invigil.core.clock import ensure_utc
from invigil.core.context import AppContext
from invigil.core.db import STEADY_APPLICATION_NAME, Database, transaction
from invigil.recordings import access, batch
from invigil.recordings.models import Snapshot


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _failing(times: int, sqlstate: str, calls: list[int]) -> batch.Work:
    def work(b: batch.Batch) -> str:
        calls.append(1)
        b.session.execute(text("select 1"))
        if len(calls) <= times:
            raise OperationalError("insert …", {}, _PgError(sqlstate))
        return "stored"

    return work


def test_a_deadlock_victim_batch_is_run_again(db: Database) -> None:
    calls: list[int] = []
    assert batch.submit(db, _failing(2, "40P01", calls)).result(timeout=10) == "stored"
    assert len(calls) == 3


def test_retries_are_bounded_and_other_errors_are_not_retried(db: Database) -> None:
    calls: list[int] = []
    with pytest.raises(OperationalError):
        batch.submit(db, _failing(10, "40001", calls)).result(timeout=10)
    assert len(calls) == batch.RETRIES
    calls.clear()
    with pytest.raises(OperationalError):  # e.g. a constraint violated: fails at once
        batch.submit(db, _failing(1, "23505", calls)).result(timeout=10)
    assert len(calls) == 1


def test_an_upload_that_stopped_waiting_leaves_the_committer_working(db: Database) -> None:
    """A request cancelled while its upload waited for the batch (``asyncio.wrap_future``
    cancels the future then): the committer goes on; answering the cancelled future had raised
    in its thread and ended it, and every later upload of the process waited forever."""
    batch.submit(db, lambda b: "lost").cancel()
    assert batch.submit(db, lambda b: "next").result(timeout=10) == "next"


@pytest.mark.skipif(not PG_URL, reason="the steady pool is PostgreSQL's (SQLite pings nothing)")
@pytest.mark.parametrize("first", ["lookup", "work"])
def test_a_batch_whose_connection_broke_since_the_last_is_run_again(
    db: Database, first: str
) -> None:
    """The group commit's connections are not pinged before each batch (a round trip each):
    after the database dropped them (a restart, say), the next batch fails on its first
    statement and runs again on a new connection, and its uploads never see the error. The
    first statement is one of the batch's lookups or the work's own."""
    assert batch.submit(db, lambda b: b.session.execute(text("select 1")).scalar()).result(10)
    with db.session() as s:
        killed = s.scalars(
            text(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = :name and datname = current_database()"
            ),
            {"name": STEADY_APPLICATION_NAME},
        ).all()
    assert killed and all(killed)
    calls: list[int] = []
    looked: list[int] = []

    def work(b: batch.Batch) -> int:
        calls.append(1)
        return int(b.session.execute(text("select 2")).scalar_one())

    def tokens(conn: Connection, digests: list[str]) -> dict[str, Any]:
        looked.append(1)
        return access.writers(conn, digests)

    needs = [(tokens, "0" * 64)] if first == "lookup" else []
    assert batch.submit(db, work, needs).result(timeout=10) == 2
    # The first try met the dead connection: in the lookup, before the work, or in the work.
    assert (len(looked), len(calls)) == ((2, 1) if first == "lookup" else (0, 2))


@pytest.mark.skipif(not PG_URL, reason="row locks: PostgreSQL (SQLite has one writer lock)")
def test_an_event_append_does_not_block_an_upload_of_the_same_attempt(
    app_ctx: AppContext, exam_id: str
) -> None:
    with app_ctx.db.session() as s:
        attempt_id = s.scalars(select(Attempt.id).where(Attempt.exam_id == exam_id)).first()
    assert attempt_id is not None
    now = app_ctx.clock.now()
    with app_ctx.db.session() as holder, holder.begin():
        events.append(holder, attempt_id, "focus_lost", at=now)  # holds the attempt's lock
        with app_ctx.db.session() as upload, upload.begin():
            # A FOR UPDATE in append made this insert wait for the holder (here: time out).
            upload.execute(text("SET LOCAL lock_timeout = '2s'"))
            row: dict[str, Any] = dict(attempt_id=attempt_id, kind="webcam", taken_at=now)
            upload.add(Snapshot(**row, blob_key="k", size=1, sha256="0" * 64))
            upload.flush()


def test_a_touch_marks_the_session_seen(app_ctx: AppContext, exam_id: str) -> None:
    auth_id = _a_session(app_ctx, exam_id)
    later = app_ctx.clock.now() + sessions.TOUCH_EVERY
    with transaction(app_ctx.db) as s:
        sessions.touch(s, [auth_id], later)
    with app_ctx.db.session() as s:
        seen = s.get(AuthSession, auth_id)
        assert seen is not None and ensure_utc(seen.last_seen_at) == later


@pytest.mark.skipif(not PG_URL, reason="row locks: PostgreSQL (SQLite has one writer lock)")
def test_a_touch_skips_a_session_row_another_commit_holds(
    app_ctx: AppContext, exam_id: str
) -> None:
    """Two processes' group commits touching the same sessions in another order deadlocked."""
    auth_id = _a_session(app_ctx, exam_id)
    start = app_ctx.clock.now()
    later = start + sessions.TOUCH_EVERY
    with app_ctx.db.session() as holder, holder.begin():
        sessions.touch(holder, [auth_id], start)  # holds the row until it ends
        with app_ctx.db.session() as other, other.begin():
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            sessions.touch(other, [auth_id], later)  # skipped, not waited for
    with app_ctx.db.session() as s:
        seen = s.get(AuthSession, auth_id)
        assert seen is not None and ensure_utc(seen.last_seen_at) == start


def _a_session(ctx: AppContext, exam_id: str) -> str:
    with transaction(ctx.db) as s:
        attempt_id = s.scalars(select(Attempt.id).where(Attempt.exam_id == exam_id)).first()
        assert attempt_id is not None
        return sessions.issue(
            s, ctx, "candidate", ctx.clock.now(), attempt_id=attempt_id
        ).session.id
