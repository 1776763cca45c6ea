"""A demo run again replaces the previous one even after its recordings were watched: the logs
the database keeps append-only are emptied with their guards lifted for that alone, on SQLite
and on PostgreSQL, and the guards hold again afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError

from invigil.attempts.models import Attempt
from invigil.core.db import Database, transaction
from invigil.core.migrate import upgrade
from invigil.demo import create_demo_exams, demo_settings
from invigil.recordings.models import Recording, RecordingAccess
from invigil.review.models import AuditEntry
from invigil.staff.models import StaffUser


def _watched(db: Database) -> None:
    """What a reviewer leaves on a demo exam: a recording read and a review view."""
    now = datetime.now(UTC)
    with transaction(db) as session:
        attempt = session.scalars(select(Attempt).limit(1)).one()
        staff = session.scalars(select(StaffUser).where(StaffUser.username == "reviewer1")).one()
        rec = Recording(
            attempt_id=attempt.id, kind="webcam", mime="video/webm", created_at=now,
            created_by="candidate",
        )  # fmt: skip
        session.add(rec)
        session.flush()
        session.add(
            RecordingAccess(
                at=now, staff_id=staff.id, username=staff.username, recording_id=rec.id,
                attempt_id=attempt.id, what="media",
            )
        )  # fmt: skip
        session.add(
            AuditEntry(
                at=now, staff_id=staff.id, username=staff.username, action="view",
                exam_id=attempt.exam_id, attempt_id=attempt.id, detail={},
            )
        )  # fmt: skip


def test_a_second_demo_replaces_a_watched_one_and_the_logs_stay_guarded(
    database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url)
    settings = demo_settings(tmp_path / "demo", database_url)
    first = create_demo_exams(settings, timedelta(minutes=5))
    db = Database(database_url)
    try:
        _watched(db)
        second = create_demo_exams(settings, timedelta(minutes=5))
        assert second.replaced == 2
        assert not {e.exam_id for e in first.exams} & {e.exam_id for e in second.exams}
        with transaction(db) as session:
            for table in (RecordingAccess, AuditEntry, Recording):
                assert session.scalar(select(func.count()).select_from(table)) == 0
        # The guards are back: a log row of the new demo cannot be deleted.
        _watched(db)
        with pytest.raises(DBAPIError, match="append-only"), transaction(db) as session:
            session.execute(delete(RecordingAccess))
        with pytest.raises(DBAPIError, match="append-only"), transaction(db) as session:
            session.execute(delete(AuditEntry))
    finally:
        db.dispose()
