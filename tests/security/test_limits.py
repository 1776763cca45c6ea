"""Request size limits (issue 13 #9): oversized bodies and heads are refused before they are
buffered, over a real server configured as ``invigil serve`` configures it."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import time

from conftest import bearer, staff_token
from fastapi import FastAPI
from fastapi.testclient import TestClient

from invigil.core.limits import DEFAULT_BODY_BYTES, MAX_HEADER_BYTES
from tests.security.conftest import live, read_response, status_of

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
