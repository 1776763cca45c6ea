"""Finding an exam imported twice, and removing an exam that is replaced.

An exam file imported again (same title, same start) would otherwise create a twin that shows
up beside the first in every list; the admin chooses to replace the first or keep both. Only an
exam that no candidate has used yet can be replaced: once anyone logged in, its records are
evidence. The demo replaces its own practice exams the same way, activity or not
(``force=True``): they live in the demo's own database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.storage import BlobStore
from invigil.evidence import retention
from invigil.exams.models import Attachment, Candidate, Exam


def twins(session: Session, title: str, starts_at: datetime) -> list[Exam]:
    """Existing exams with this title and start."""
    return list(
        session.scalars(
            select(Exam)
            .where(Exam.title == title, Exam.starts_at == starts_at)
            .order_by(Exam.created_at)
        )
    )


def used(session: Session, exam_id: str) -> int:
    """How many candidates of the exam have done anything (logged in, an event)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Attempt)
            .where(
                Attempt.exam_id == exam_id,
                or_(Attempt.last_event_seq > 0, Attempt.face_verified_at.is_not(None)),
            )
        )
        or 0
    )


def remove_exam(session: Session, blobs: BlobStore, exam_id: str, now: datetime) -> None:
    """Delete the exam, its rows (every table cascades from exams) and its stored files."""
    retention.purge_exam(session, blobs, exam_id, now, actor="replace")
    keys = list(session.scalars(select(Attachment.blob_key).where(Attachment.exam_id == exam_id)))
    keys += [
        k
        for k in session.scalars(select(Candidate.photo_key).where(Candidate.exam_id == exam_id))
        if k
    ]
    session.execute(
        delete(jobs.Job).where(
            jobs.Job.dedupe_key.in_([f"lot-auto:{exam_id}", f"retention:{exam_id}"])
        )
    )
    session.execute(delete(Exam).where(Exam.id == exam_id))
    session.flush()
    session.expunge_all()
    for key in keys:
        blobs.delete(key)  # a missing blob is no error on any backend
    blobs.delete_prefix(f"exams/{exam_id}")  # anything else under the exam (local: its folders)
