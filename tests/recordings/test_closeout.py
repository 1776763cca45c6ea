"""Recordings whose browser was lost mid-exam: at upload close the server keeps what it holds,
playable, and says what is missing."""

from __future__ import annotations

import json
import random
import zipfile
from datetime import timedelta
from pathlib import Path

from conftest import T, bearer, both_backends, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from invigil.attempts.models import Attempt, Event
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.jobs import run_due_jobs
from invigil.evidence.package import export_package
from invigil.evidence.verify import verify_package
from invigil.recordings.models import Chunk, Recording
from recordings.conftest import (
    decode_check,
    entered,
    new_recording,
    put,
    sha,
    split,
    webm_bytes,
)

CLOSE = T + timedelta(minutes=50)  # the test exam: 20 min, then 30 min to upload


def _recording(ctx: AppContext, recording_id: str) -> Recording:
    with ctx.db.session() as session:
        rec = session.get(Recording, recording_id)
        assert rec is not None
        session.expunge(rec)
        return rec


def _closed_events(ctx: AppContext, attempt_id: str) -> list[dict[str, object]]:
    with ctx.db.session() as session:
        return [
            e.data
            for e in session.scalars(
                select(Event).where(
                    Event.attempt_id == attempt_id, Event.kind == "recording_closed"
                )
            )
        ]


@both_backends
def test_a_lost_browsers_recording_is_kept_playable_at_upload_close(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext, tmp_path: Path
) -> None:
    source, frames = webm_bytes(seconds=4)
    chunks = split(source, 12, random.Random(7))
    token, attempt_id = entered(client, clock, exam_id)
    lost = new_recording(client, token)
    # The browser sent chunks 0–7 and 10, then was gone (8 and 9 never arrived).
    for seq in [*range(8), 10]:
        assert put(client, token, lost, seq, chunks[seq]).status_code == 201
    # Its other stream it finished before that: the server leaves it alone.
    screen = new_recording(client, token, kind="screen")
    assert put(client, token, screen, 0, source).status_code == 201
    r = client.post(
        f"/api/v1/recordings/{screen}/finalize",
        json={"chunks": 1, "sha256": sha(source)},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text

    # Before uploads close the old browser could still come back: nothing is closed.
    clock.set(CLOSE - timedelta(seconds=1))
    run_due_jobs(app_ctx.job_context())
    assert _recording(app_ctx, lost).state == "open"

    clock.set(CLOSE)
    run_due_jobs(app_ctx.job_context())  # the close-out, then the assembly it queues
    run_due_jobs(app_ctx.job_context())
    rec = _recording(app_ctx, lost)
    assert (rec.state, rec.closed_by, rec.chunk_count) == ("finalized", "server", 8)
    assert rec.original_key is not None and rec.media_key is not None
    assert app_ctx.blobs.get(rec.original_key) == b"".join(chunks[:8])
    # What the reviewers and examiners play: real frames from the start, a duration.
    played = decode_check(app_ctx.blobs.get(rec.media_key))
    assert played["duration"] and played["duration"] > 0.5
    assert 0 < played["frames"] < frames
    # Chunk 10 is kept as it arrived, and the log says what was joined and what was not.
    with app_ctx.db.session() as session:
        seqs = session.scalars(select(Chunk.seq).where(Chunk.recording_id == lost)).all()
    assert sorted(seqs) == [*range(8), 10]
    assert _closed_events(app_ctx, attempt_id) == [
        {"recording_id": lost, "kind": "webcam", "received": 9, "joined": 8, "left_out": [10]}
    ]
    assert _recording(app_ctx, screen).closed_by is None

    # The exam office's report of incomplete uploads names it.
    rev = staff_token(client, "rev", "pw-rev")
    body = client.get(f"/api/v1/staff/exams/{exam_id}/missing-uploads", headers=bearer(rev)).json()
    (problem,) = body["attempts"][0]["problems"]
    assert problem["reason"] == "closed_by_server" and problem["recording_id"] == lost
    assert problem["received"] == 9 and problem["chunks"] == 8

    # A second run finds nothing more to do.
    run_due_jobs(app_ctx.job_context())
    assert len(_closed_events(app_ctx, attempt_id)) == 1

    # The evidence package holds both parts: the joined start and what came after the gap.
    out = export_package(
        app_ctx.db, app_ctx.blobs, app_ctx.settings, attempt_id, tmp_path / "e.zip", CLOSE
    ).path
    assert verify_package(out).ok
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        entry = next(r for r in manifest["recordings"] if r["id"] == lost)
        assert entry["closed_by"] == "server" and entry["chunk_count"] == 8
        assert zf.read(entry["original"]) == b"".join(chunks[:8])
        assert zf.read(entry["after_gap"]) == chunks[10]


def test_extra_time_after_the_recording_started_is_waited_for(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    source, _ = webm_bytes(seconds=4)
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    assert put(client, token, rec, 0, source[: len(source) // 2]).status_code == 201
    with app_ctx.db.session() as session, session.begin():  # 个别安排, granted later
        session.execute(update(Attempt).where(Attempt.id == attempt_id).values(extra_time_s=600))

    clock.set(CLOSE)
    run_due_jobs(app_ctx.job_context())
    assert _recording(app_ctx, rec).state == "open"  # this candidate uploads until +10 min
    clock.set(CLOSE + timedelta(minutes=10))
    run_due_jobs(app_ctx.job_context())
    assert (_recording(app_ctx, rec).state, _recording(app_ctx, rec).chunk_count) == (
        "finalized",
        1,
    )


def test_without_its_first_chunk_nothing_is_joined_but_the_log_says_so(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    source, _ = webm_bytes(seconds=4)
    chunks = split(source, 4, random.Random(3))
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    for seq in (1, 2):
        assert put(client, token, rec, seq, chunks[seq]).status_code == 201
    clock.set(CLOSE)
    run_due_jobs(app_ctx.job_context())
    closed = _recording(app_ctx, rec)
    assert (closed.state, closed.closed_by, closed.original_key) == ("open", "server", None)
    assert _closed_events(app_ctx, attempt_id) == [
        {"recording_id": rec, "kind": "webcam", "received": 2, "joined": 0, "left_out": [1, 2]}
    ]
