"""Durable background jobs in a database table.

A job is inserted in the same transaction as the data that needs it, so it exists exactly when
that data does. Workers claim one job at a time with a single atomic UPDATE (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite's writer lock serializes it) and hold it under a lease: if a
worker dies, the lease expires and another worker runs the job again. Handlers must therefore be
idempotent. A handler's writes and the job's completion commit together.
"""

from __future__ import annotations

import functools
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import BindParameter

from invigil.core.clock import Clock
from invigil.core.db import Base, Database, UTCDateTime, new_id

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


class Job(Base):
    __tablename__ = "jobs"
    # What a claim reads (see _statements): the oldest due jobs of one kind, in order.
    __table_args__ = (Index("ix_jobs_claim", "state", "kind", "run_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A job with a key exists at most once (e.g. one lot auto-assignment per exam).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=10)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class JobContext:
    db: Database
    clock: Clock
    settings: Any


Handler = Callable[[Session, dict[str, Any], JobContext], None]
_handlers: dict[str, Handler] = {}
# Kinds that may queue up by the thousand (one per snapshot): a worker takes every other due
# job first, so a backlog of analysis never delays a lot assignment, an assembly or a purge.
_background: set[str] = set()


def handler(kind: str, *, background: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _handlers[kind] = fn
        if background:
            _background.add(kind)
        return fn

    return register


def has_handler(kind: str) -> bool:
    return kind in _handlers


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> Job | None:
    """Add a job to the caller's transaction. With a ``dedupe_key`` an existing job wins."""
    if dedupe_key is not None:
        existing = session.scalar(select(Job).where(Job.dedupe_key == dedupe_key))
        if existing is not None:
            return None
    job = Job(
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
        run_at=run_at or now,
        created_at=now,
        state=PENDING,
        attempts=0,
    )
    if dedupe_key is None:
        session.add(job)
        return job
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        return None  # a concurrent transaction queued it first
    return job


JOBS = cast(Table, Job.__table__)


def new_row(kind: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A job due now as a row for a Core insert (the group commit inserts them in bulk);
    what ``enqueue`` adds without a dedupe key."""
    return {
        "id": new_id(),
        "kind": kind,
        "payload": payload,
        "dedupe_key": None,
        "run_at": now,
        "created_at": now,
        "state": PENDING,
        "attempts": 0,
    }


@dataclass(frozen=True)
class Claimed:
    """A job leased to this worker: what running it needs, without an ORM object's
    bookkeeping."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime


_jobs = cast(Table, Job.__table__)
_CLAIMED = (_jobs.c.id, _jobs.c.kind, _jobs.c.payload, _jobs.c.attempts, _jobs.c.max_attempts)


@functools.cache
def _statements() -> dict[str, Any]:
    """The claim's statements, built once with bound parameters: building and caching them on
    every claim cost more CPU than running them (a worker claims several times a second).

    Each reads ix_jobs_claim (state, kind, run_at) in order and stops at its limit, so a claim
    costs the same behind a backlog of ten thousand snapshots as behind none; a claim that
    took "any due job by run_at" had to collect and sort the whole backlog first."""
    now = bindparam("now", type_=UTCDateTime())
    ids: BindParameter[list[str]] = bindparam("ids", expanding=True)
    kinds: BindParameter[list[str]] = bindparam("kinds", expanding=True)
    pending = (_jobs.c.state == PENDING) & (_jobs.c.run_at <= now)

    def oldest(*where: Any) -> Any:
        return (
            select(_jobs.c.id, _jobs.c.kind, _jobs.c.run_at)
            .where(*where)
            .order_by(_jobs.c.run_at)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )

    return {
        # A lease that ran out: its worker died. Few rows (the jobs being run right now).
        "expired": oldest(_jobs.c.state == RUNNING, _jobs.c.lease_expires_at < now).add_columns(
            _jobs.c.attempts, _jobs.c.max_attempts
        ),
        "abandon": update(_jobs)
        .where(_jobs.c.id == bindparam("job"))
        .values(state=FAILED, lease_expires_at=None, last_error=bindparam("error")),
        "of_kinds": oldest(pending, _jobs.c.kind.in_(kinds)),
        "of_kind": oldest(
            pending, _jobs.c.kind == bindparam("kind"), _jobs.c.id != bindparam("not")
        ),
        # No second look at the state: the rows were read in this transaction, locked (FOR
        # UPDATE on PostgreSQL, the writer lock on SQLite). With one, SQLite's planner left the
        # primary key for the state index and scanned the backlog.
        "lease": update(_jobs)
        .where(_jobs.c.id.in_(ids))
        .values(
            state=RUNNING,
            lease_expires_at=bindparam("until", type_=UTCDateTime()),
            attempts=_jobs.c.attempts + 1,
        )
        .returning(*_CLAIMED, _jobs.c.run_at),
        "done": update(_jobs)
        .where(_jobs.c.id.in_(ids))
        .values(state=DONE, finished_at=now, last_error=None),
    }


def claim(db: Database, now: datetime, lease: timedelta) -> Claimed | None:
    """The next due job, leased to the caller (background kinds only when no other is due)."""
    claimed = _claim(db, now, lease, batches=False)
    return claimed[0] if claimed else None


def _first(conn: Connection, now: datetime) -> Any:
    """The job to run next: the oldest due job of a kind that is not background, else of the
    background kinds (read kind by kind, so each read is a range of the index). A job whose
    lease ran out (its worker died) counts as due from its ``run_at``, after the pending jobs
    due as early: it does not jump ahead of the jobs queued with it. A job of a kind no
    handler is registered for is never claimed."""
    sql = _statements()
    expired = conn.execute(sql["expired"], {"now": now, "limit": 1}).first()
    while expired is not None and expired.attempts >= expired.max_attempts:
        # Its worker died on every attempt (a crash, the OOM killer): failed for good rather
        # than taken first each time its lease runs out, ahead of every job queued after it.
        log.error(
            "job %s (%s) abandoned: its worker died %s times",
            expired.id,
            expired.kind,
            expired.attempts,
        )
        error = f"worker died during each of its {expired.attempts} attempts"
        conn.execute(sql["abandon"], {"job": expired.id, "error": error})
        expired = conn.execute(sql["expired"], {"now": now, "limit": 1}).first()

    def before(pending: Any) -> bool:
        return expired is not None and (pending is None or expired.run_at < pending.run_at)

    others = sorted(set(_handlers) - _background)
    other = None
    if others:
        other = conn.execute(sql["of_kinds"], {"now": now, "kinds": others, "limit": 1}).first()
    if expired is not None and expired.kind not in _background and before(other):
        return expired
    if other is not None:
        return other
    oldest = [
        conn.execute(sql["of_kind"], {"now": now, "kind": kind, "not": "", "limit": 1}).first()
        for kind in sorted(_background)
    ]
    background = min(
        (row for row in oldest if row is not None), key=lambda r: r.run_at, default=None
    )
    return expired if before(background) else background


def _claim(db: Database, now: datetime, lease: timedelta, *, batches: bool = True) -> list[Claimed]:
    """The next due job; when its kind is batched (and ``batches``), with up to the batch's size
    of that kind's other due jobs, claimed in the same transaction."""
    sql = _statements()
    with db.engine.begin() as conn:
        first = _first(conn, now)
        if first is None:
            return []
        ids = [first.id]
        batch = _batches.get(first.kind) if batches else None
        if batch is not None and batch.size > 1:
            more = {"now": now, "kind": first.kind, "not": first.id, "limit": batch.size - 1}
            ids += [row.id for row in conn.execute(sql["of_kind"], more)]
        leased = conn.execute(sql["lease"], {"ids": ids, "until": now + lease})
        return sorted((Claimed(*row) for row in leased), key=lambda job: (job.run_at, job.id))


def run_one(ctx: JobContext, lease: timedelta = timedelta(minutes=2)) -> bool:
    """Claim and run one due job (or a batch of a batched kind). False when nothing was due."""
    return _run_some(ctx, lease) > 0


def _run_some(ctx: JobContext, lease: timedelta) -> int:
    """Like run_one; the number of jobs run."""
    claimed = _claim(ctx.db, ctx.clock.now(), lease)
    if not claimed:
        return 0
    job = claimed[0]
    if job.kind in _batches:
        return _run_batch(ctx, claimed, _batches[job.kind])
    fn = _handlers.get(job.kind)
    try:
        if fn is None:
            raise LookupError(f"no handler for job kind {job.kind!r}")
        with ctx.db.session() as session, session.begin():
            fn(session, job.payload, ctx)
            _complete(session, [job.id], ctx.clock.now())
    except Exception:
        _failed(ctx, job)
    return 1


def _failed(ctx: JobContext, job: Claimed) -> None:
    """Record the exception being handled on ``job``: retried later, or failed for good."""
    error = traceback.format_exc(limit=5)
    log.warning("job %s (%s) failed, attempt %s", job.id, job.kind, job.attempts)
    backoff = timedelta(seconds=min(300, 2**job.attempts))
    final = job.attempts >= job.max_attempts
    with ctx.db.session() as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(
                state=FAILED if final else PENDING,
                run_at=ctx.clock.now() + backoff,
                lease_expires_at=None,
                last_error=error[-4000:],
            )
        )


# --- batched kinds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """How a kind's jobs run several at a time: ``prepare`` each (outside any transaction: the
    slow, read-only part), then ``store`` the list of them and complete them in one
    transaction."""

    prepare: Callable[[dict[str, Any], JobContext], Any]
    store: Callable[[Session, list[Any], JobContext], None]
    size: int
    # The order to store the prepared jobs in: on PostgreSQL, rows locked in one order by
    # every worker cannot deadlock.
    order: Callable[[Any], Any] | None = None
    # Optional: prepare the whole batch at once (one read for all of it), one result per payload
    # in order. If it raises, the jobs are prepared one by one, so only a bad one fails.
    prepare_many: Callable[[list[dict[str, Any]], JobContext], list[Any]] | None = None


_batches: dict[str, Batch] = {}


def batched(kind: str, batch: Batch) -> None:
    """Let a worker that claims a job of ``kind`` claim up to ``batch.size`` of them at once:
    one claim and one commit for the batch instead of two transactions per job. The kind's
    plain handler (``store(session, [prepare(...)], ...)``) must be registered as well."""
    _batches[kind] = batch


def _complete(session: Session, ids: list[str], now: datetime) -> None:
    session.connection().execute(_statements()["done"], {"ids": ids, "now": now})


def _prepare(ctx: JobContext, jobs: list[Claimed], batch: Batch) -> list[tuple[Claimed, Any]]:
    if batch.prepare_many is not None and len(jobs) > 1:
        try:
            return list(zip(jobs, batch.prepare_many([j.payload for j in jobs], ctx), strict=True))
        except Exception:
            log.warning("preparing a batch of %s jobs failed; one by one", jobs[0].kind)
    prepared: list[tuple[Claimed, Any]] = []
    for job in jobs:
        try:
            prepared.append((job, batch.prepare(job.payload, ctx)))
        except Exception:
            _failed(ctx, job)
    return prepared


def _run_batch(ctx: JobContext, jobs: list[Claimed], batch: Batch) -> int:
    prepared = _prepare(ctx, jobs, batch)
    if not prepared:
        return len(jobs)
    if batch.order is not None:
        order = batch.order
        prepared.sort(key=lambda item: order(item[1]))
    try:
        with ctx.db.session() as session, session.begin():
            batch.store(session, [data for _, data in prepared], ctx)
            _complete(session, [job.id for job, _ in prepared], ctx.clock.now())
        return len(jobs)
    except Exception:
        log.warning("a batch of %s jobs failed; storing them one by one", jobs[0].kind)
    # One job spoiled the batch's transaction: each alone, so only that one is retried.
    for job, data in prepared:
        try:
            with ctx.db.session() as session, session.begin():
                batch.store(session, [data], ctx)
                _complete(session, [job.id], ctx.clock.now())
        except Exception:
            _failed(ctx, job)
    return len(jobs)


def run_due_jobs(ctx: JobContext, limit: int = 1000) -> int:
    """Run jobs until none is due (tests and the CLI use this)."""
    count = 0
    while count < limit:
        ran = _run_some(ctx, timedelta(minutes=2))
        if not ran:
            break
        count += ran
    return count


class WorkerThread(threading.Thread):
    """The embedded worker: one loop inside each server process (``--workers N`` gives N; the
    claim's row lock keeps them from running a job twice)."""

    def __init__(self, ctx: JobContext, poll_seconds: float, lease: timedelta) -> None:
        super().__init__(name="invigil-worker", daemon=True)
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.lease = lease
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                worked = run_one(self.ctx, self.lease)
            except Exception:
                log.exception("worker loop error")
                worked = False
            if not worked:
                self._stop_event.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop_event.set()
