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

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.analysis import flags, thresholds
from invigil.analysis.frames import FrameFacts, Previous, analyse_frame
from invigil.analysis.models import SnapshotAnalysis
from invigil.attempts.locking import locked_attempt
from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.config import Settings
from invigil.core.storage import blob_store
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


def _load(ctx: jobs.JobContext, snapshot_id: str) -> _Input | None:
    # Two queries: the snapshot with what it needs from its attempt, exam and candidate (and
    # whether it was analysed already) in one round trip, then the stream's previous detected
    # row. Read fresh each time rather than cached: an admin may re-enrol a photo or change an
    # exam's thresholds mid-exam, and one indexed join costs less than a cache's invalidation.
    with ctx.db.session() as read, read.begin():
        found = read.execute(
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
            .where(Snapshot.id == snapshot_id)
        ).first()
        if found is None or found.analysed is not None or found.kind not in ANALYSED_STREAMS:
            return None
        before = read.execute(
            select(*_PREVIOUS_COLUMNS)
            .where(
                SnapshotAnalysis.attempt_id == found.attempt_id,
                SnapshotAnalysis.stream == found.kind,
                SnapshotAnalysis.taken_at < found.taken_at,
                SnapshotAnalysis.readable.is_(True),
                SnapshotAnalysis.method != "unchanged",
            )
            .order_by(SnapshotAnalysis.taken_at.desc())
            .limit(1)
        ).first()
        return _Input(
            snapshot_id=found.id,
            attempt_id=found.attempt_id,
            stream=found.kind,
            taken_at=found.taken_at,
            blob_key=found.blob_key,
            exam_flags=found.flags,
            enrolled=found.face_embedding,
            previous=Previous(before.taken_at, facts_of(before)) if before else None,
        )


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
    )


def _facts(settings: Settings, job: _Input, rules: thresholds.Thresholds) -> FrameFacts | None:
    covered = rules["camera_covered"]
    try:
        image = blob_store(settings).get(job.blob_key)
        return analyse_frame(
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
    job = _load(ctx, str(payload["snapshot_id"]))
    if job is None:
        return None
    rules = thresholds.resolve(ctx.settings, job.exam_flags)
    return Prepared(job, rules, _facts(ctx.settings, job, rules))


def store(session: Session, prepared: Prepared | None, ctx: jobs.JobContext) -> None:
    """The row and the rules, in the job's transaction."""
    if prepared is None:
        return
    job, rules, facts = prepared.job, prepared.rules, prepared.facts
    # The attempt's row lock orders this evaluation after any other of the same attempt
    # (another worker, another stream). SQLite's transactions hold the database's one writer
    # lock from their start (BEGIN IMMEDIATE), which orders them already.
    if session.get_bind().dialect.name != "sqlite":
        session.scalars(locked_attempt(job.attempt_id)).one()
    if session.get(SnapshotAnalysis, job.snapshot_id) is not None:
        return  # a concurrent run of this job finished first
    row = SnapshotAnalysis(
        snapshot_id=job.snapshot_id,
        attempt_id=job.attempt_id,
        stream=job.stream,
        taken_at=job.taken_at,
        analysed_at=ctx.clock.now(),
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
    )
    session.add(row)
    session.flush()
    flags.evaluate(session, row, rules, ctx.clock.now())


@jobs.handler(ANALYSE_JOB, background=True)
def analyse_snapshot(session: Session, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    store(session, prepare(payload, ctx), ctx)


# A worker takes up to this many snapshots at once: one claim and one commit for all of them.
# Small, so a snapshot waits at most a few others' face work for its flag.
BATCH = 8


def _lock_order(prepared: Prepared | None) -> tuple[str, str]:
    # Attempts locked in id order by every worker; one attempt's snapshots oldest first.
    return ("", "") if prepared is None else (prepared.job.attempt_id, str(prepared.job.taken_at))


jobs.batched(ANALYSE_JOB, jobs.Batch(prepare=prepare, store=store, size=BATCH, order=_lock_order))
