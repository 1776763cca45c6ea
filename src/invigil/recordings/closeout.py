"""Closing out recordings that no client will finish: what the server holds becomes playable.

A desk or phone finalizes its own recordings. When its browser is lost mid-exam (a crash, a
flat battery, a different computer for the rest of the exam), the recordings it started stay
open: the server holds every chunk that arrived, but without a finalize nothing was joined,
assembled or shown to reviewers and examiners, and the candidate's upload page waited for
them. The old browser may still come back and upload the rest until uploads close, so only
then does the server close them itself:

- the chunks from 0 up to the first missing one are joined, stored and assembled as a finalize
  would (``closed_by = "server"``); a WebM or MP4 needs its start, so a later chunk alone
  cannot be played, and chunks after a gap are kept as they are (the evidence package and the
  event list them);
- a ``recording_closed`` event in the candidate's log says how many chunks arrived, how many
  were joined and which were left out, for reviewers and for a re-sit decision.

One job per exam and upload close time, queued when a recording is created; it also covers
attempts whose uploads close later (extra time) by queueing itself again for them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.db import Database
from invigil.core.storage import BlobStore, blob_store
from invigil.recordings import keys
from invigil.recordings.models import OPEN, Chunk, Recording
from invigil.recordings.service import (
    CLOSE_OUT_JOB,
    join_chunks,
    lock,
    mark_finalized,
    schedule_close_out,
)
from invigil.recordings.tx import transaction

log = logging.getLogger(__name__)

MAX_LISTED = 200  # chunk numbers listed in the event


def close_out(
    db: Database, blobs: BlobStore, scratch: Path, recording_id: str, now: datetime
) -> bool:
    """Close one open recording with what the server holds; False if the client finalized it
    meanwhile (or someone else closed it)."""
    with transaction(db) as session:
        rec = session.get(Recording, recording_id)
        if rec is None or rec.state != OPEN or rec.closed_by is not None:
            return False
        attempt_id, kind = rec.attempt_id, rec.kind
        held: dict[int, str] = dict(
            session.execute(
                select(Chunk.seq, Chunk.blob_key).where(Chunk.recording_id == recording_id)
            ).all()
        )
    joined = 0
    while joined in held:
        joined += 1
    stored: tuple[str, str, int] | None = None  # key, sha256, size
    if joined:
        tmp, sha256 = join_chunks(blobs, scratch, [held[i] for i in range(joined)])
        try:
            key = keys.original_key(attempt_id, recording_id, sha256)
            size = tmp.stat().st_size
            blobs.put_file(key, tmp)  # stored before the row names it
            stored = (key, sha256, size)
        finally:
            tmp.unlink(missing_ok=True)
    with transaction(db) as session:
        locked = lock(session, recording_id)
        if locked.state != OPEN or locked.closed_by is not None:
            return False  # the client's finalize won; an unneeded join is the orphan sweep's
        locked.closed_by = "server"
        if stored is not None:
            key, sha256, size = stored
            mark_finalized(session, locked, joined, sha256, size, key, now)
        left_out = sorted(seq for seq in held if seq >= joined)
        events.append(
            session,
            attempt_id,
            "recording_closed",
            at=now,
            data={
                "recording_id": recording_id,
                "kind": kind,
                "received": len(held),
                "joined": joined,
                "left_out": left_out[:MAX_LISTED],
            },
        )
    log.info("closed out recording %s: %d of %d chunks joined", recording_id, joined, len(held))
    return True


@jobs.handler(CLOSE_OUT_JOB)
def close_out_job(session: Session, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    # The job's own session stays unused until the end, and each close-out commits on its own:
    # on SQLite a write in it would hold the writer lock through the joins.
    exam_id = str(payload["exam_id"])
    now = ctx.clock.now()
    with transaction(ctx.db) as reading:
        rows = reading.execute(
            select(Recording.id, Attempt)
            .join(Attempt, Attempt.id == Recording.attempt_id)
            .where(
                Attempt.exam_id == exam_id, Recording.state == OPEN, Recording.closed_by.is_(None)
            )
        ).all()
        due = [rid for rid, attempt in rows if attempt.uploads_close_at <= now]
        later = [a.uploads_close_at for _, a in rows if a.uploads_close_at > now]
    blobs = blob_store(ctx.settings)
    for recording_id in due:
        close_out(ctx.db, blobs, ctx.settings.scratch_dir, recording_id, now)
    if later:  # extra time: those attempts' uploads close later
        schedule_close_out(session, exam_id, min(later), now)
