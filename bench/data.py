"""Data the load benchmarks share: an exam whose rules suit a long load test."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from invigil.exams.models import Exam


def load_test_exam(session: Session, now: datetime, *, title: str, starts_at: datetime) -> Exam:
    """A four-hour exam with the evidence camera required and no liveness step."""
    exam = Exam(
        title=title,
        starts_at=starts_at,
        utc_offset_minutes=480,
        duration_s=4 * 3600,
        login_opens_before_s=1800,
        entry_opens_before_s=600,
        entry_closes_after_s=180,
        lot_closes_before_s=600,
        upload_grace_after_s=1800,
        evidence_camera=True,
        liveness=False,
        practice=False,
        help_phone="",
        created_at=now,
    )
    session.add(exam)
    session.flush()
    return exam
