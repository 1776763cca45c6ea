"""A finished attempt built through the real API: a webcam recording uploaded in chunks,
finalized and remuxed, snapshots, client events, a help message; and a second candidate in the
same room with data of their own that must never leak into the first one's package."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T, bearer, staff_token
from fastapi.testclient import TestClient
from PIL import Image
from recordings.conftest import entered, new_recording, put, sha, split, webm_bytes
from s3_server import blob_env
from sqlalchemy import select

from invigil.attempts.models import Event
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.jobs import run_due_jobs

INVIGIL = [sys.executable, "-m", "invigil"]


def jpeg(color: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


@dataclass
class Built:
    exam_id: str
    attempt_id: str
    recording_id: str
    source: bytes
    snapshots: list[bytes]
    other_attempt_id: str
    other_recording_id: str
    other_snapshot: bytes
    partial: bytes


def _record(client: TestClient, token: str, source: bytes, parts: int, seed: int) -> str:
    rec = new_recording(client, token)
    for seq, chunk in enumerate(split(source, parts, random.Random(seed))):
        assert put(client, token, rec, seq, chunk).status_code == 201
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": parts, "sha256": sha(source)},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    return rec


def _snapshot(client: TestClient, token: str, data: bytes) -> None:
    r = client.post(
        "/api/v1/snapshots",
        data={"kind": "webcam"},
        files={"image": ("s.jpg", data, "image/jpeg")},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text


def build_finished(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> Built:
    source, _ = webm_bytes(2, 160, 120)
    other_token, other_attempt = entered(client, clock, exam_id, "1002")
    token, attempt_id = entered(client, clock, exam_id, "1001")
    rec = _record(client, token, source, 5, 1)
    # A screen recording the desk never finalized (a crash): two chunks arrived.
    partial = split(source, 4, random.Random(3))[:2]
    screen = new_recording(client, token, "screen")
    for seq, chunk in enumerate(partial):
        assert put(client, token, screen, seq, chunk).status_code == 201
    other_rec = _record(client, other_token, source, 3, 2)
    snaps = [jpeg("red"), jpeg("green")]
    other_snap = jpeg("purple", (50, 50))
    _snapshot(client, token, snaps[0])
    _snapshot(client, other_token, other_snap)
    clock.advance(timedelta(seconds=5))
    _snapshot(client, token, snaps[1])
    for t, kind in ((token, "focus_lost"), (other_token, "fullscreen_exit")):
        r = client.post("/api/v1/candidate/events", headers=bearer(t), json={"kind": kind})
        assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/candidate/help", headers=bearer(token), json={"text": "麦克风没有声音"}
    )
    assert r.status_code == 201, r.text
    clock.set(T + timedelta(minutes=5))
    for t in (token, other_token):
        assert client.post("/api/v1/candidate/finish", headers=bearer(t)).status_code == 200
    run_due_jobs(app_ctx.job_context())  # assembly (remux) of both recordings
    clock.set(T + timedelta(minutes=25))
    with app_ctx.db.session() as s:
        seq = s.scalar(
            select(Event.seq).where(Event.attempt_id == attempt_id, Event.kind == "focus_lost")
        )
    r = client.post(
        f"/api/v1/review/attempts/{attempt_id}/rulings",
        json={"event_seq": seq, "violation": False, "rule": None, "reason": "RULING-REASON 误触"},
        headers=bearer(staff_token(client, "rev", "pw-rev")),
    )
    assert r.status_code == 201, r.text
    return Built(
        exam_id,
        attempt_id,
        rec,
        source,
        snaps,
        other_attempt,
        other_rec,
        other_snap,
        partial=b"".join(partial),
    )


@pytest.fixture
def built(client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext) -> Built:
    return build_finished(client, clock, exam_id, app_ctx)


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVIGIL_")}
    env.update(
        INVIGIL_DATA_DIR=str(settings.data_dir),
        INVIGIL_DATABASE_URL=settings.sqlalchemy_url,
        INVIGIL_SECRET_KEY=settings.effective_secret(),
    )
    env.update(blob_env(settings))  # the test's blob store: its folder, or its S3 bucket
    return env


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INVIGIL, *args], env=cli_env(settings), capture_output=True, text=True, timeout=120
    )


def is_file(path: Path) -> bool:
    return path.is_file()
