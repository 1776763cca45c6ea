"""Retention: after an exam's deadline plus its retention period (``exam.rules.retention``,
default 180 days) its recordings, snapshots, login captures, candidate photos and face
embeddings are purged, because face data is sensitive personal information.

What stays: the event log (with one ``data_purged`` event per attempt), rulings, scores, the
rows that describe each recording and snapshot (times, sizes, SHA-256) and a purge record. A
durable job scheduled at import runs the purge (late, if the server was down then);
``invigil retention run`` does it by hand. Blobs are deleted before the transaction commits:
if it then fails, the keys are still recorded and the next run deletes again (missing files are
fine), so no blob is ever left behind unrecorded. Running it twice changes nothing the second
time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.clock import iso
from invigil.core.storage import BlobStore, blob_store
from invigil.evidence.models import DataPurge, ExamRetention
from invigil.exams.durations import parse_duration
from invigil.exams.models import Candidate, Exam
from invigil.proctoring.models import LoginHelpRequest
from invigil.recordings.models import Chunk, Recording, Snapshot

log = logging.getLogger(__name__)

RETENTION_JOB = "evidence.retention_purge"
DEFAULT_RETENTION = "180d"
PURGED_EVENT = "data_purged"


def default_retention_s() -> int:
    return parse_duration(DEFAULT_RETENTION)


def schedule(session: Session, exam: Exam, retention_s: int, now: datetime) -> ExamRetention:
    """Record the exam's retention and queue its purge (called by the exam import)."""
    row = ExamRetention(
        exam_id=exam.id,
        retention_s=retention_s,
        purge_at=exam.deadline + timedelta(seconds=retention_s),
    )
    session.add(row)
    jobs.enqueue(
        session,
        RETENTION_JOB,
        {"exam_id": exam.id},
        now=now,
        run_at=row.purge_at,
        dedupe_key=f"retention:{exam.id}",
    )
    return row


def purge_at(session: Session, exam: Exam) -> datetime:
    row = session.get(ExamRetention, exam.id)
    if row is not None:
        return row.purge_at
    # Exams imported before retention existed keep the default.
    return exam.deadline + timedelta(seconds=default_retention_s())


def status(session: Session, exam: Exam) -> dict[str, Any]:
    """For admin pages: the period, when the purge is due and whether (when) it ran."""
    row = session.get(ExamRetention, exam.id)
    first, count = session.execute(
        select(func.min(DataPurge.at), func.count(func.distinct(DataPurge.attempt_id))).where(
            DataPurge.exam_id == exam.id
        )
    ).one()
    return {
        "retention_s": row.retention_s if row is not None else default_retention_s(),
        "purge_at": iso(purge_at(session, exam)),
        "purged_at": iso(first) if first is not None else None,
        "attempts_purged": int(count or 0),
    }


@dataclass
class Tally:
    files: int = 0
    bytes: int = 0


@dataclass
class AttemptPurge:
    attempt_id: str
    ticket: str
    what: dict[str, Tally] = field(default_factory=dict)

    def count(self, category: str, size: int = 0, files: int = 1) -> None:
        tally = self.what.setdefault(category, Tally())
        tally.files += files
        tally.bytes += size

    @property
    def empty(self) -> bool:
        return not any(t.files for t in self.what.values())

    def summary(self) -> dict[str, Any]:
        return {k: {"files": t.files, "bytes": t.bytes} for k, t in sorted(self.what.items())}


@dataclass
class PurgeReport:
    exam_id: str
    at: datetime
    dry_run: bool
    attempts: list[AttemptPurge]

    @property
    def files(self) -> int:
        return sum(t.files for a in self.attempts for t in a.what.values())

    @property
    def bytes(self) -> int:
        return sum(t.bytes for a in self.attempts for t in a.what.values())


# Other domains that keep biometric data of their own (e.g. liveness frames) register a purger:
# it removes the attempt's data (unless dry_run) and counts it on the AttemptPurge.
Purger = Callable[[Session, BlobStore, Attempt, AttemptPurge, bool], None]
_purgers: list[Purger] = []


def register_purger(fn: Purger) -> Purger:
    _purgers.append(fn)
    return fn


class _Remover:
    def __init__(self, blobs: BlobStore, dry_run: bool) -> None:
        self.blobs = blobs
        self.dry_run = dry_run

    def blob(self, key: str | None, tally: AttemptPurge, category: str) -> None:
        if not key:
            return
        try:
            size = self.blobs.size(key) if self.blobs.exists(key) else 0
        except ValueError:  # not a valid key: nothing stored under it
            return
        tally.count(category, size)
        if not self.dry_run:
            self.blobs.delete(key)

    def sweep(self, prefix: str, tally: AttemptPurge) -> None:
        """Blobs under an attempt's folders that no row points at (an upload whose batch
        failed, a finalize or remux that lost a race): purged too, on every backend."""
        for info in self.blobs.list_prefix(prefix):
            tally.count("unreferenced", info.size)
        if not self.dry_run:
            self.blobs.delete_prefix(prefix)


def _purge_attempt(
    session: Session, remove: _Remover, attempt: Attempt, candidate: Candidate
) -> AttemptPurge:
    tally = AttemptPurge(attempt.id, candidate.ticket)
    dry = remove.dry_run
    recordings = list(session.scalars(select(Recording).where(Recording.attempt_id == attempt.id)))
    for rec in recordings:
        for chunk in session.scalars(
            select(Chunk).where(Chunk.recording_id == rec.id, Chunk.blob_key != "")
        ):
            remove.blob(chunk.blob_key, tally, "chunks")
            if not dry:
                chunk.blob_key = ""  # purged; the row keeps seq, size and SHA-256
        remove.blob(rec.original_key, tally, "originals")
        remove.blob(rec.media_key, tally, "media")
        if not dry:
            rec.original_key = None
            rec.media_key = None
    for snap in session.scalars(
        select(Snapshot).where(Snapshot.attempt_id == attempt.id, Snapshot.blob_key != "")
    ):
        remove.blob(snap.blob_key, tally, "snapshots")
        if not dry:
            snap.blob_key = ""
    for req in session.scalars(
        select(LoginHelpRequest).where(
            LoginHelpRequest.attempt_id == attempt.id, LoginHelpRequest.face_key.is_not(None)
        )
    ):
        remove.blob(req.face_key, tally, "login_captures")
        if not dry:
            req.face_key = None
    remove.blob(candidate.photo_key, tally, "photos")
    if candidate.face_embedding is not None:
        tally.count("face_embeddings", len(candidate.face_embedding))
    if not dry:
        candidate.photo_key = None
        candidate.face_embedding = None
    for prefix in (
        f"recordings/{attempt.id}",
        f"snapshots/{attempt.id}",
        f"login-help/{attempt.id}",
    ):
        remove.sweep(prefix, tally)
    for purger in _purgers:
        purger(session, remove.blobs, attempt, tally, dry)
    return tally


def purge_exam(
    session: Session,
    blobs: BlobStore,
    exam_id: str,
    now: datetime,
    *,
    actor: str,
    dry_run: bool = False,
) -> PurgeReport:
    """Purge (or, with ``dry_run``, only count) the exam's media and biometric data."""
    rows = session.execute(
        select(Attempt, Candidate)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .where(Attempt.exam_id == exam_id)
        .order_by(Candidate.ticket)
    ).all()
    remove = _Remover(blobs, dry_run)
    report = PurgeReport(exam_id, now, dry_run, [])
    for attempt, candidate in rows:
        tally = _purge_attempt(session, remove, attempt, candidate)
        report.attempts.append(tally)
        if dry_run:
            continue
        before = session.scalar(select(DataPurge.id).where(DataPurge.attempt_id == attempt.id))
        if tally.empty and before is not None:
            continue  # already purged, nothing new: a rerun leaves no trace
        session.add(
            DataPurge(
                exam_id=exam_id, attempt_id=attempt.id, at=now, actor=actor, summary=tally.summary()
            )
        )
        events.append(
            session,
            attempt.id,
            PURGED_EVENT,
            at=now,
            actor=actor,
            data={"what": tally.summary(), "reason": "retention"},
        )
    session.flush()
    if not dry_run:
        log.info(
            "retention: exam %s purged %s files (%s bytes) at %s",
            exam_id,
            report.files,
            report.bytes,
            iso(now),
        )
    return report


@jobs.handler(RETENTION_JOB)
def retention_job(session: Session, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    exam = session.get(Exam, str(payload["exam_id"]))
    if exam is None:
        return
    now = ctx.clock.now()
    if now < purge_at(session, exam):
        return
    purge_exam(
        session,
        blob_store(ctx.settings),
        exam.id,
        now,
        actor="system:retention",
    )
