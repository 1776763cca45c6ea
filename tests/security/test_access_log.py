"""Credentials in query strings never reach the access log (issue 13 #10)."""

from __future__ import annotations

import io

import httpx
import pytest
from conftest import bearer, staff_token
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from recordings.conftest import entered, new_recording, sha
from websockets.sync.client import connect

from invigil.core.clock import FrozenClock
from invigil.core.serving import redact

from .conftest import live


def test_poll_sig_and_token_are_redacted_in_a_real_servers_log(
    app: FastAPI, client: TestClient, exam_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    token = staff_token(client, "rev", "pw-rev")
    with live(app, log_level="info", access_log=True) as (host, port):
        base = f"http://{host}:{port}"
        httpx.get(f"{base}/api/v1/candidate/login-help/abc?poll=SECRET-POLL-1")
        httpx.get(f"{base}/api/v1/recordings/{'0' * 32}/media?original=1&sig=SECRET-SIG-2")
        with connect(f"ws://{host}:{port}/api/v1/staff/ws?token={token}") as ws:
            hello = ws.recv(timeout=10)
        assert "hello" in str(hello)
    out, err = capfd.readouterr()  # uvicorn's own handlers write the log to stdout/stderr
    text = out + err
    assert "SECRET-POLL-1" not in text and "SECRET-SIG-2" not in text and token not in text
    # The lines are still there, useful, with the values replaced.
    assert "/api/v1/candidate/login-help/abc?poll=[redacted]" in text
    assert f"/api/v1/recordings/{'0' * 32}/media?original=1&sig=[redacted]" in text
    assert "/api/v1/staff/ws?token=[redacted]" in text


def test_redact_keeps_other_parameters() -> None:
    assert redact("/x?a=1&token=abc&b=2") == "/x?a=1&token=[redacted]&b=2"
    assert redact("/x?poll=p&sig=s") == "/x?poll=[redacted]&sig=[redacted]"
    # Only whole parameter names: "notoken=" and a path segment stay as they are.
    assert redact("/token=1/x?notoken=2") == "/token=1/x?notoken=2"


@pytest.mark.parametrize("log_uploads", [False, True])
def test_successful_uploads_leave_the_access_log_unless_asked(
    app: FastAPI,
    client: TestClient,
    clock: FrozenClock,
    exam_id: str,
    capfd: pytest.CaptureFixture[str],
    log_uploads: bool,
) -> None:
    """A line per chunk and snapshot is thousands a second on an exam day: by default only the
    refused ones are logged (INVIGIL_ACCESS_LOG_UPLOADS=true logs them all)."""
    app.state.ctx.settings.access_log_uploads = log_uploads
    token, _ = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    chunks = f"/api/v1/recordings/{rec}/chunks"
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(jpeg, "JPEG")
    with live(app, log_level="info", access_log=True) as (host, port):
        base, auth = f"http://{host}:{port}", bearer(token)
        ok = httpx.put(
            f"{base}{chunks}/0", content=b"x", headers={**auth, "X-Chunk-SHA256": sha(b"x")}
        )
        bad = httpx.put(
            f"{base}{chunks}/1", content=b"y", headers={**auth, "X-Chunk-SHA256": sha(b"z")}
        )
        snap = httpx.post(
            f"{base}/api/v1/snapshots",
            data={"kind": "webcam"},
            files={"image": ("s.jpg", jpeg.getvalue(), "image/jpeg")},
            headers=auth,
        )
        listing = httpx.get(f"{base}/api/v1/recordings/{rec}", headers=auth)
    assert (ok.status_code, bad.status_code, snap.status_code) == (201, 422, 201)
    out, err = capfd.readouterr()
    text = out + err
    assert f'"PUT {chunks}/1 HTTP/1.1" 422' in text  # a refusal is always logged
    assert f'"GET /api/v1/recordings/{rec} HTTP/1.1" 200' in text and listing.status_code == 200
    assert (f'"PUT {chunks}/0 HTTP/1.1" 201' in text) is log_uploads
    assert ('"POST /api/v1/snapshots HTTP/1.1" 201' in text) is log_uploads
