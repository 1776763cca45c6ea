"""The review audit log: who looked at or decided what, when.

Rows are only ever inserted; migration 0007 installs triggers that make the database refuse
UPDATE and DELETE, so not even a bug (or an admin with SQL) can quietly rewrite it. Recording
reads keep going to the recordings' own append-only access log (``recordings/access.py``);
:func:`entries` merges both so reviewers read one log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts.models import Attempt
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.recordings.models import RecordingAccess
from invigil.review.models import AuditEntry
from invigil.staff.models import StaffUser

MAX_ENTRIES = 5000


def record(
    session: Session,
    ctx: AppContext,
    user: StaffUser | None,
    action: str,
    *,
    exam_id: str | None = None,
    attempt_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=ctx.clock.now(),
        staff_id=user.id if user else None,
        username=user.username if user else "system",
        action=action,
        exam_id=exam_id,
        attempt_id=attempt_id,
        detail=detail or {},
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session, *, attempt_id: str | None = None, exam_id: str | None = None
) -> list[dict[str, Any]]:
    """Review actions and recording reads, oldest first (the newest ``MAX_ENTRIES``)."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    reads = select(RecordingAccess).order_by(RecordingAccess.at.desc(), RecordingAccess.id.desc())
    if attempt_id:
        query = query.where(AuditEntry.attempt_id == attempt_id)
        reads = reads.where(RecordingAccess.attempt_id == attempt_id)
    if exam_id:
        attempts = select(Attempt.id).where(Attempt.exam_id == exam_id)
        query = query.where((AuditEntry.exam_id == exam_id) | AuditEntry.attempt_id.in_(attempts))
        reads = reads.where(RecordingAccess.attempt_id.in_(attempts))
    out: list[tuple[Any, int, dict[str, Any]]] = []
    for e in session.scalars(query.limit(MAX_ENTRIES)):
        out.append(
            (
                e.at,
                0,
                {
                    "at": iso(e.at),
                    "staff": e.username,
                    "action": e.action,
                    "exam_id": e.exam_id,
                    "attempt_id": e.attempt_id,
                    "detail": e.detail,
                },
            )
        )
    for r in session.scalars(reads.limit(MAX_ENTRIES)):
        out.append(
            (
                r.at,
                1,
                {
                    "at": iso(r.at),
                    "staff": r.username,
                    "action": f"recording_{r.what}",
                    "exam_id": None,
                    "attempt_id": r.attempt_id,
                    "detail": {"recording_id": r.recording_id, "range": r.byte_range},
                },
            )
        )
    out.sort(key=lambda t: (t[0], t[1]))
    return [row for _, _, row in out[-MAX_ENTRIES:]]
