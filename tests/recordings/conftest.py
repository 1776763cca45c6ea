"""Helpers for the recording tests: entered candidates, phone tokens, real media files."""

from __future__ import annotations

import hashlib
import itertools
import random
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import T, bearer, login
from fastapi.testclient import TestClient
from httpx import Response

from invigil.attempts import sessions
from invigil.attempts.models import Attempt
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.storage import BlobStore

WEBM = "video/webm;codecs=vp8,opus"
FPS = 15


def stored_keys(blobs: BlobStore, prefix: str) -> list[str]:
    """Every key under a folder of the store, on either backend."""
    return sorted(info.key for info in blobs.list_prefix(prefix))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entered(
    client: TestClient, clock: FrozenClock, exam_id: str, ticket: str = "1001", photo: str = ""
) -> tuple[str, str]:
    """Log a candidate in, read the attachments, enter at T−10 min; (token, attempt_id)."""
    photo = photo or {"1001": "obama2.jpg", "1002": "biden.jpg", "2001": "tom_hanks.jpg"}[ticket]
    clock.set(T - timedelta(minutes=10))
    r = login(client, exam_id, ticket, photo=photo)
    assert r.status_code == 200, r.text
    token = str(r.json()["token"])
    state = client.get("/api/v1/candidate/state", headers=bearer(token)).json()
    for a in state["attachments"]:
        client.post(f"/api/v1/candidate/attachments/{a['id']}/read", headers=bearer(token))
    r = client.post("/api/v1/candidate/enter", headers=bearer(token))
    assert r.status_code == 200, r.text
    return token, str(r.json().get("attempt_id") or state["attempt_id"])


def phone_token(ctx: AppContext, attempt_id: str) -> str:
    with transaction(ctx.db) as session:
        return sessions.issue(session, ctx, "phone", ctx.clock.now(), attempt_id=attempt_id).token


def attempt_of(ctx: AppContext, ticket: str) -> Attempt:
    from sqlalchemy import select

    from invigil.exams.models import Candidate

    with ctx.db.session() as session:
        return session.scalars(
            select(Attempt).join(Candidate).where(Candidate.ticket == ticket)
        ).one()


def new_recording(
    client: TestClient, token: str, kind: str = "webcam", mime: str = WEBM, **extra: Any
) -> str:
    r = client.post(
        "/api/v1/recordings", json={"kind": kind, "mime": mime, **extra}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["recording_id"])


def put(
    client: TestClient,
    token: str,
    recording_id: str,
    seq: int | str,
    data: bytes,
    digest: str | None = None,
) -> Response:
    headers = {**bearer(token), "X-Chunk-SHA256": digest or sha(data)}
    return client.put(
        f"/api/v1/recordings/{recording_id}/chunks/{seq}", content=data, headers=headers
    )


def split(data: bytes, parts: int, rng: random.Random) -> list[bytes]:
    """Cut at arbitrary byte offsets, as MediaRecorder's timeslices do."""
    cuts = sorted(rng.sample(range(1, len(data)), parts - 1))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _frame(i: int, w: int, h: int) -> Any:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = (i * 7) % 255
    img[:, :, 2] = 255 - (i * 5) % 255
    img[(i * 3) % h, :, 1] = 255
    return av.VideoFrame.from_ndarray(img, format="rgb24")


def _encode(
    path: Path, fmt: str, vcodec: str, acodec: str, seconds: int, live: bool, w: int, h: int
) -> int:
    options = {"live": "1"} if live else {}
    with av.open(str(path), "w", format=fmt, options=options) as out:
        v = out.add_stream(vcodec, rate=FPS)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.codec_context.gop_size = FPS
        if vcodec == "libvpx":
            v.options = {"deadline": "realtime", "cpu-used": "8"}
        a = out.add_stream(acodec, rate=48000)
        a.layout = "mono"
        frames = seconds * FPS
        for i in range(frames):
            frame = _frame(i, w, h)
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        t = 0
        while t < 48000 * seconds:
            pcm = (np.sin(np.arange(t, t + 960) / 20) * 0.3).astype(np.float32).reshape(1, -1)
            af = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
            af.sample_rate, af.pts = 48000, t
            for p in a.encode(af):
                out.mux(p)
            t += 960
        for p in v.encode():
            out.mux(p)
        for p in a.encode():
            out.mux(p)
    return frames


@cache
def webm_bytes(seconds: int = 4, w: int = 320, h: int = 240) -> tuple[bytes, int]:
    """A WebM as Chrome's MediaRecorder writes it: VP8 + Opus, live mode (no duration, no cues).
    Returns the bytes and the number of video frames."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "src.webm"
        frames = _encode(path, "webm", "libvpx", "libopus", seconds, True, w, h)
        return path.read_bytes(), frames


@cache
def mp4_bytes(seconds: int = 3) -> tuple[bytes, int]:
    """An MP4 as Safari records: H.264 + AAC."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "src.mp4"
        frames = _encode(path, "mp4", "libx264", "aac", seconds, False, 320, 240)
        return path.read_bytes(), frames


def decode_check(path_or_bytes: Path | bytes) -> dict[str, Any]:
    """Decode every video frame, read the duration, seek to the middle."""
    import io

    src: Any = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with av.open(src) as c:
        duration = c.duration / 1_000_000 if c.duration else None
        frames = sum(1 for _ in c.decode(video=0))
    if isinstance(src, io.BytesIO):
        src.seek(0)
    with av.open(src) as c:
        v = c.streams.video[0]
        target = (duration or 0) / 2
        c.seek(int(target / v.time_base), stream=v)
        first = next(c.decode(video=0))
        seek_to = float(first.time or 0.0)
    return {"duration": duration, "frames": frames, "seek_to": seek_to, "seek_target": target}


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20260601)
