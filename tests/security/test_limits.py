"""Request size limits (issue 13 #9): oversized bodies and heads are refused before they are
buffered, over a real server configured as ``invigil serve`` configures it."""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import socket
import time

import httpx
import pytest
from conftest import bearer, staff_token
from fastapi import FastAPI
from fastapi.testclient import TestClient

from invigil.app import create_app
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.db import Database
from invigil.core.limits import DEFAULT_BODY_BYTES, MAX_HEADER_BYTES

from .conftest import live, read_response, status_of

MB = 1024 * 1024


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, in MB (Linux: KB)


def test_declared_300_mb_login_body_is_refused_at_once(app: FastAPI, exam_id: str) -> None:
    with live(app) as (host, port), socket.create_connection((host, port)) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /api/v1/staff/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 314572800\r\n\r\n"
            + b'{"username": "'
            + b"a" * 60000
        )
        response = read_response(sock)
        elapsed = time.monotonic() - started
    assert status_of(response) == 413
    body = json.loads(response.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "too_large"
    assert body["error"]["limit"] == 8 * 1024
    assert elapsed < 3, elapsed


def test_chunked_300_mb_login_body_is_cut_off_while_streaming(app: FastAPI, exam_id: str) -> None:
    piece = b"a" * (256 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    peak_before = _rss_mb()
    sent = 0
    with live(app) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(
            b"POST /api/v1/staff/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.settimeout(5)
        started = time.monotonic()
        try:
            while sent < 300 * MB:
                sock.sendall(chunk)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server answered and closed while we were still sending
        response = read_response(sock)
        elapsed = time.monotonic() - started
    assert status_of(response) == 413, response[:200]
    assert b"too_large" in response
    # The server stopped reading long before 300 MB: at most what sockets buffer past the limit.
    assert sent < 40 * MB, sent
    assert elapsed < 10, elapsed
    assert _rss_mb() - peak_before < 60


def test_huge_header_is_refused_with_431(app: FastAPI, exam_id: str) -> None:
    with live(app) as (host, port), socket.create_connection((host, port)) as sock:
        sock.settimeout(5)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(
                b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: "
                + b"b" * (50 * MB // 10)
                + b"\r\n\r\n"
            )
        response = read_response(sock)
    assert status_of(response) == 431
    with live(app) as (host, port), socket.create_connection((host, port)) as sock:
        # Just under the cap still works: browsers' cookies and tokens fit easily.
        sock.sendall(
            b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"b" * (MAX_HEADER_BYTES - 200)
            + b"\r\nConnection: close\r\n\r\n"
        )
        response = read_response(sock)
    assert status_of(response) == 200
    assert response.endswith(b'{"status":"ok"}')


def test_chunk_put_with_a_bad_token_is_refused_before_its_body(app: FastAPI, exam_id: str) -> None:
    rec = "0" * 32
    with live(app) as (host, port), socket.create_connection((host, port)) as sock:
        # Only the head goes out: an answer proves the server did not wait for the body.
        sock.sendall(
            f"PUT /api/v1/recordings/{rec}/chunks/0 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer not-a-real-token\r\nX-Chunk-SHA256: {'a' * 64}\r\n"
            f"Content-Length: {8 * MB}\r\n\r\n".encode()
        )
        response = read_response(sock, timeout=5)
    assert status_of(response) == 401
    assert b"unauthorized" in response


def test_json_routes_have_a_default_body_cap(client: TestClient, exam_id: str) -> None:
    token = staff_token(client, "p1", "pw-p1")
    big = {"text": "x" * (DEFAULT_BODY_BYTES + 10)}
    r = client.post("/api/v1/staff/attempts/nope/help", json=big, headers=bearer(token))
    assert r.status_code == 413
    assert r.json()["error"] == {
        "code": "too_large",
        "message": "请求内容过大。",
        "limit": DEFAULT_BODY_BYTES,
    }
    # A body without a declared length is counted as it streams.
    payload = json.dumps(big).encode()

    def stream() -> object:
        yield payload[: len(payload) // 2]
        yield payload[len(payload) // 2 :]

    r = client.post(
        "/api/v1/staff/attempts/nope/help",
        content=stream(),  # type: ignore[arg-type]
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_the_server_ignores_forwarded_headers_by_default(
    app: FastAPI, exam_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Without INVIGIL_TRUSTED_PROXIES a client cannot choose its address or scheme."""
    caplog.set_level(logging.INFO, logger="invigil.staff.service")
    spoof = {"X-Forwarded-For": "198.51.100.66", "X-Forwarded-Proto": "https"}
    with live(app) as (host, port):
        base = f"http://{host}:{port}"
        r = httpx.post(
            f"{base}/api/v1/staff/login", json={"username": "p1", "password": "x"}, headers=spoof
        )
        assert r.status_code == 401
        health = httpx.get(f"{base}/api/v1/health", headers=spoof)
    assert "staff login failed: user='p1' address=127.0.0.1" in caplog.text
    assert "198.51.100.66" not in caplog.text
    assert "strict-transport-security" not in health.headers


def test_a_trusted_proxy_names_the_client_and_the_scheme(
    settings: Settings,
    clock: FrozenClock,
    db: Database,
    exam_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="invigil.staff.service")
    proxied = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    app = create_app(proxied, clock=clock, db=db, start_worker=False)
    spoof = {"X-Forwarded-For": "198.51.100.66", "X-Forwarded-Proto": "https"}
    with live(app) as (host, port):
        base = f"http://{host}:{port}"
        r = httpx.post(
            f"{base}/api/v1/staff/login", json={"username": "p1", "password": "x"}, headers=spoof
        )
        assert r.status_code == 401
        health = httpx.get(f"{base}/api/v1/health", headers=spoof)
    assert "staff login failed: user='p1' address=198.51.100.66" in caplog.text
    assert health.headers["strict-transport-security"] == "max-age=31536000"
