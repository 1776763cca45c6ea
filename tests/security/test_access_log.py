"""Credentials in query strings never reach the access log (issue 13 #10)."""

from __future__ import annotations

import httpx
import pytest
from conftest import staff_token
from fastapi import FastAPI
from fastapi.testclient import TestClient
from websockets.sync.client import connect

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
