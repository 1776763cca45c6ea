"""Backpressure: a loaded process defers snapshots, then heartbeats and client events, with
503 + Retry-After; chunk uploads and finalize are never refused for load."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from conftest import bearer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from invigil.core.backpressure import BUSY, OVERLOADED, Load
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from recordings.conftest import entered, new_recording, phone_token, put


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buf, "JPEG")
    return buf.getvalue()


def _snapshot(client: TestClient, token: str, kind: str = "webcam") -> Any:
    return client.post(
        "/api/v1/snapshots",
        data={"kind": kind},
        files={"image": ("s.jpg", _jpeg(), "image/jpeg")},
        headers=bearer(token),
    )


def _busy(r: Any, load: Load) -> None:
    assert r.status_code == 503, r.text
    seconds = int(r.headers["retry-after"])
    assert load.retry_after <= seconds <= 2 * load.retry_after
    error = r.json()["error"]
    assert error["code"] == "server_busy" and error["retry_after"] == seconds
    assert "繁忙" in error["message"]


def test_forced_load_defers_signals_never_chunks(
    app: FastAPI, client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    load: Load = app.state.load
    token, attempt_id = entered(client, clock, exam_id)
    phone = phone_token(app_ctx, attempt_id)
    rec = new_recording(client, token)
    beat = "/api/v1/candidate/heartbeat"

    load.forced = BUSY  # snapshots first; heartbeats and events still go through
    _busy(_snapshot(client, token), load)
    _busy(_snapshot(client, phone, "evidence"), load)
    assert client.post(beat, headers=bearer(token)).status_code == 200
    r = client.post(
        "/api/v1/candidate/events", json={"kind": "focus_lost", "data": {}}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text

    load.forced = OVERLOADED
    _busy(client.post(beat, headers=bearer(token)), load)
    _busy(
        client.post("/api/v1/phone/status", json={"state": "recording"}, headers=bearer(phone)),
        load,
    )
    _busy(
        client.post(
            "/api/v1/candidate/events",
            json={"kind": "focus_lost", "data": {}},
            headers=bearer(token),
        ),
        load,
    )
    # The recording itself is never refused: chunks, a repeated chunk, finalize.
    chunks = [b"\x1a\x45\xdf\xa3" + bytes([i]) * 5000 for i in range(3)]
    for seq, data in enumerate(chunks):
        r = put(client, token, rec, seq, data)
        assert r.status_code == 201, r.text
    assert put(client, token, rec, 1, chunks[1]).status_code == 200
    whole = hashlib.sha256(b"".join(chunks)).hexdigest()
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 3, "sha256": whole},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/candidate/state", headers=bearer(token)).status_code == 200
    assert load.deferred["/api/v1/snapshots"] == 2

    load.forced = 0  # measured again, and under every threshold: nothing is deferred
    load.enabled, load.max_loop_lag, load.max_inflight = True, 1e9, 10**9
    assert _snapshot(client, token).status_code == 201
    assert client.post(beat, headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("inflight", "queue", "lag", "level"),
    [(0, 0, 0.0, 0), (200, 0, 0.0, BUSY), (0, 300, 0.0, BUSY), (0, 0, 0.45, OVERLOADED)],
)
def test_level_from_measures(
    monkeypatch: pytest.MonkeyPatch, inflight: int, queue: int, lag: float, level: int
) -> None:
    from invigil.core import backpressure

    monkeypatch.setattr(backpressure, "_commit_queue_depth", lambda: queue)
    load = Load(max_inflight=200, max_commit_queue=256, max_loop_lag=0.2, retry_after=5)
    load.inflight, load.loop_lag = inflight, lag
    assert load.level() == level
    load.enabled = False
    assert load.level() == 0
