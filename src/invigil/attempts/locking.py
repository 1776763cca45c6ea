"""The one lock that orders work on an attempt: event appends, analyses, logins, verdicts."""

from __future__ import annotations

from sqlalchemy import Select, select

from invigil.attempts.models import Attempt


def locked_attempt(attempt_id: str) -> Select[Attempt]:
    """The attempt's row, locked ``FOR NO KEY UPDATE`` (``key_share=True``) and re-read.

    That lock orders these holders among themselves but not against the ``KEY SHARE`` lock
    PostgreSQL takes on the attempt for each row inserted with a foreign key to it. A plain
    ``FOR UPDATE`` would: the group commit inserting snapshots of many attempts and an analysis
    batch locking several attempts then deadlocked (seen under load, bench/ingest.py)."""
    return (
        select(Attempt)
        .where(Attempt.id == attempt_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
