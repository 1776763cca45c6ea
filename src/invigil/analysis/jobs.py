"""The ``snapshot.analyse`` job: one snapshot's facts, then the flag rules of its stream.

Idempotent: the analysis row and the events it raises commit together with the job, and a run
that finds the row already there does nothing. The face work (from under a millisecond for an
unchanged frame to about 80 ms with an embedding) runs before the job's transaction touches the
database, so on SQLite (where every transaction takes the writer lock up front) it holds no
lock: reading what it needs, the previous detected frame of the stream included, is a short
transaction of its own. That previous row is all the state a stream has, so the jobs of one
stream may run in any worker process; two of them in flight at once only cost a detection or
an embedding more (the later one does not find the earlier one's row and starts afresh).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.orm import Session

from invigil.analysis import flags, offload, thresholds
from invigil.analysis.frames import FrameFacts, Previous
from invigil.analysis.models import FlagState, SnapshotAnalysis
from invigil.attempts.locking import locked_attempt
from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.storage import BlobStore, blob_store
from invigil.exams.models import Candidate, Exam
from invigil.identity import faces
from invigil.recordings.models import Snapshot

# recordings.snapshots.ANALYSE_JOB, which enqueues it; importing that module from here would close
# an import cycle (snapshots -> access -> staff -> attempts -> snapshots) when the app loads.
ANALYSE_JOB = "snapshot.analyse"

# The screen is not a camera: nothing to look for in it.
ANALYSED_STREAMS = frozenset(flags.STREAM_FLAGS)


@dataclass(frozen=True)
class _Input:
    snapshot_id: str
    attempt_id: str
    stream: str
    taken_at: Any
    blob_key: str
    exam_flags: dict[str, Any] | None
    enrolled: bytes | None
    previous: Previous | None


def _load(ctx: jobs.JobContext, snapshot_ids: list[str]) -> list[_Input | None]:
    """What the analysis of each snapshot needs (None: nothing to do), in one short read.

    Two queries for the whole batch: the snapshots with what they need from their attempts,
    exams and candidates (and whether each was analysed already), then each stream's previous
    detected row. Read fresh each time rather than cached: an admin may re-enrol a photo or
    change an exam's thresholds mid-exam, and an indexed join costs less than a cache's
    invalidation across processes."""
    with ctx.db.session() as read, read.begin():
        rows = read.execute(
            select(
                Snapshot.id,
                Snapshot.attempt_id,
                Snapshot.kind,
                Snapshot.taken_at,
                Snapshot.blob_key,
                Exam.flags,
                Candidate.face_embedding,
                SnapshotAnalysis.snapshot_id.label("analysed"),
            )
            .join(Attempt, Attempt.id == Snapshot.attempt_id)
            .join(Exam, Exam.id == Attempt.exam_id)
            .join(Candidate, Candidate.id == Attempt.candidate_id)
            .outerjoin(SnapshotAnalysis, SnapshotAnalysis.snapshot_id == Snapshot.id)
            .where(Snapshot.id.in_(snapshot_ids))
        ).all()
        found = {
            row.id: row for row in rows if row.analysed is None and row.kind in ANALYSED_STREAMS
        }
        # Each stream's previous detected row before its oldest snapshot in this batch; the
        # later ones of the same stream follow the batch's own results (see prepare_many).
        oldest: dict[tuple[str, str], Any] = {}
        for first in sorted(found.values(), key=lambda r: r.taken_at):
            oldest.setdefault((first.attempt_id, first.kind), first.taken_at)
        previous = _previous_rows(read, oldest)
    out: list[_Input | None] = []
    for snapshot_id in snapshot_ids:
        row = found.get(snapshot_id)
        if row is None:
            out.append(None)
            continue
        before = previous.get((row.attempt_id, row.kind))
        out.append(
            _Input(
                snapshot_id=row.id,
                attempt_id=row.attempt_id,
                stream=row.kind,
                taken_at=row.taken_at,
                blob_key=row.blob_key,
                exam_flags=row.flags,
                enrolled=row.face_embedding,
                previous=before if before and before.taken_at < row.taken_at else None,
            )
        )
    return out


def _previous_rows(
    read: Session, oldest: dict[tuple[str, str], Any]
) -> dict[tuple[str, str], Previous]:
    """Per (attempt, stream): its last readable, detected row before the given time, all in
    one statement (a UNION ALL of one indexed LIMIT 1 read each)."""
    if not oldest:
        return {}
    params: dict[str, Any] = {}
    for i, ((attempt_id, stream), before) in enumerate(oldest.items()):
        params |= {f"attempt_{i}": attempt_id, f"stream_{i}": stream, f"before_{i}": before}
    return {
        (row.attempt_id, row.stream): Previous(row.taken_at, facts_of(row))
        for row in read.execute(_previous_statement(len(oldest)), params)
    }


@functools.cache
def _previous_statement(streams: int) -> Any:
    # Built once per batch size with bound parameters: constructing the subqueries costs more
    # CPU than running them.
    parts = [
        select(
            *select(*_PREVIOUS_COLUMNS, SnapshotAnalysis.attempt_id, SnapshotAnalysis.stream)
            .where(
                SnapshotAnalysis.attempt_id == bindparam(f"attempt_{i}"),
                SnapshotAnalysis.stream == bindparam(f"stream_{i}"),
                SnapshotAnalysis.taken_at < bindparam(f"before_{i}"),
                SnapshotAnalysis.readable.is_(True),
                SnapshotAnalysis.method != "unchanged",
            )
            .order_by(SnapshotAnalysis.taken_at.desc())
            .limit(1)
            .subquery()
            .c
        )
        for i in range(streams)
    ]
    return parts[0] if streams == 1 else union_all(*parts)


# What facts_of reads: the columns alone, without the ORM's bookkeeping of a loaded row.
_PREVIOUS_COLUMNS = (
    SnapshotAnalysis.taken_at,
    SnapshotAnalysis.brightness,
    SnapshotAnalysis.contrast,
    SnapshotAnalysis.covered,
    SnapshotAnalysis.scores,
    SnapshotAnalysis.rejected_score,
    SnapshotAnalysis.distance,
    SnapshotAnalysis.method,
    SnapshotAnalysis.thumb,
    SnapshotAnalysis.boxes,
    SnapshotAnalysis.face_covered,
    SnapshotAnalysis.since_embedding,
    SnapshotAnalysis.whole_at,
)


def facts_of(row: Any) -> FrameFacts:
    """A stored row (or a row of _PREVIOUS_COLUMNS) as the facts it recorded."""
    return FrameFacts(
        brightness=row.brightness,
        contrast=row.contrast,
        covered=row.covered,
        scores=list(row.scores or []),
        rejected_score=row.rejected_score,
        distance=row.distance,
        method=row.method,
        thumb=row.thumb,
        boxes=[list(b) for b in row.boxes or []],
        face_covered=row.face_covered,
        since_embedding=row.since_embedding,
        whole_at=row.whole_at,
    )


def _facts(blobs: BlobStore, job: _Input, rules: thresholds.Thresholds) -> FrameFacts | None:
    covered = rules["camera_covered"]
    try:
        image = blobs.get(job.blob_key)
        return offload.analyse(
            image,
            taken_at=job.taken_at,
            previous=job.previous,
            embed_every=rules["face_mismatch"].embed_every,
            embed=job.stream == "webcam" and rules["face_mismatch"].enabled,
            # 512 bytes to decode: cheaper than any cache's bookkeeping across processes.
            enrolled=faces.embedding_from_bytes(job.enrolled) if job.enrolled else None,
            dark_below=covered.brightness,
            flat_below=covered.contrast,
        )
    except (faces.FaceError, FileNotFoundError):
        # A JPEG header over bytes that do not decode, or a snapshot already purged by the
        # retention job before its analysis ran: nothing to see, and nothing to retry.
        return None


@dataclass(frozen=True)
class Prepared:
    job: _Input
    rules: thresholds.Thresholds
    facts: FrameFacts | None


def prepare(payload: dict[str, Any], ctx: jobs.JobContext) -> Prepared | None:
    """The slow part, outside the job's transaction: read, decode, detect, embed."""
    return prepare_many([payload], ctx)[0]


def prepare_many(payloads: list[dict[str, Any]], ctx: jobs.JobContext) -> list[Prepared | None]:
    """``prepare`` for a batch: one read for all of it, then the face work stream by stream,
    oldest first, each frame compared with the one before it in the batch (as it would have
    been had they run one after another)."""
    inputs = _load(ctx, [str(p["snapshot_id"]) for p in payloads])
    blobs = blob_store(ctx.settings)
    # A batch's snapshots are mostly of one exam: its rules resolved once.
    resolved: dict[str, thresholds.Thresholds] = {}
    out: dict[int, Prepared] = {}
    latest: dict[tuple[str, str], Previous] = {}
    for i, job in sorted(
        ((i, job) for i, job in enumerate(inputs) if job is not None),
        key=lambda item: item[1].taken_at,
    ):
        stream = (job.attempt_id, job.stream)
        earlier = latest.get(stream)
        if earlier is not None and earlier.taken_at < job.taken_at:
            job = replace(job, previous=earlier)
        flags_key = json.dumps(job.exam_flags, sort_keys=True)
        if flags_key not in resolved:
            resolved[flags_key] = thresholds.resolve(ctx.settings, job.exam_flags)
        rules = resolved[flags_key]
        facts = _facts(blobs, job, rules)
        if facts is not None and facts.method != "unchanged":
            latest[stream] = Previous(job.taken_at, facts)
        out[i] = Prepared(job, rules, facts)
    return [out.get(i) for i in range(len(inputs))]


def store(session: Session, prepared: list[Prepared | None], ctx: jobs.JobContext) -> None:
    """The rows and the rules, in the jobs' transaction (``prepared`` in lock order)."""
    items = [p for p in prepared if p is not None]
    if not items:
        return
    # The attempt's row lock orders this evaluation after any other of the same attempt
    # (another worker, another stream). SQLite's transactions hold the database's one writer
    # lock from their start (BEGIN IMMEDIATE), which orders them already.
    if session.get_bind().dialect.name != "sqlite":
        for attempt_id in dict.fromkeys(p.job.attempt_id for p in items):
            session.scalars(locked_attempt(attempt_id)).one()
    # A concurrent run of a job may have finished first; and the streams' flag states are read
    # in one query, so the rules find them in the session.
    done = set(
        session.scalars(
            select(SnapshotAnalysis.snapshot_id).where(
                SnapshotAnalysis.snapshot_id.in_([p.job.snapshot_id for p in items])
            )
        )
    )
    # Held here: the session's identity map keeps unmodified rows only while referenced.
    states = session.scalars(
        select(FlagState).where(FlagState.attempt_id.in_({p.job.attempt_id for p in items}))
    ).all()
    now = ctx.clock.now()
    for item in items:
        if item.job.snapshot_id not in done:
            done.add(item.job.snapshot_id)
            row = _row(item, now)
            session.add(row)
            flags.evaluate(session, row, item.rules, now)
    del states


def _row(prepared: Prepared, now: datetime) -> SnapshotAnalysis:
    job, facts = prepared.job, prepared.facts
    return SnapshotAnalysis(
        snapshot_id=job.snapshot_id,
        attempt_id=job.attempt_id,
        stream=job.stream,
        taken_at=job.taken_at,
        analysed_at=now,
        readable=facts is not None,
        brightness=facts.brightness if facts else 0.0,
        contrast=facts.contrast if facts else 0.0,
        covered=facts.covered if facts else False,
        faces=facts.faces if facts else 0,
        scores=[round(s, 4) for s in facts.scores] if facts else [],
        rejected_score=facts.rejected_score if facts else None,
        distance=facts.distance if facts else None,
        elapsed_ms=round(facts.elapsed_ms) if facts else 0,
        method=facts.method if facts else "light",
        thumb=facts.thumb if facts else None,
        boxes=facts.boxes if facts else [],
        face_covered=facts.face_covered if facts else False,
        since_embedding=facts.since_embedding if facts else None,
        whole_at=facts.whole_at if facts else None,
    )


@jobs.handler(ANALYSE_JOB, background=True)
def analyse_snapshot(session: Session, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    store(session, [prepare(payload, ctx)], ctx)


# A worker takes up to this many due snapshots at once: one claim and one commit for all of
# them. 16 rather than 8 took about 1 ms of CPU off each snapshot on the exam mix
# (docs/benchmarks.md); a batch is only as large as what is due, and its last snapshot waits
# for the others' face work (about 0.2 s at most), well inside a flag's seconds.
BATCH = 16


def _lock_order(prepared: Prepared | None) -> tuple[str, str]:
    # Attempts locked in id order by every worker; one attempt's snapshots oldest first.
    return ("", "") if prepared is None else (prepared.job.attempt_id, str(prepared.job.taken_at))


jobs.batched(
    ANALYSE_JOB,
    jobs.Batch(
        prepare=prepare, store=store, size=BATCH, order=_lock_order, prepare_many=prepare_many
    ),
)
