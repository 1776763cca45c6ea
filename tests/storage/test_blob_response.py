"""Blobs served over HTTP with Range, streamed from either backend (core/blob_response.py)."""

from __future__ import annotations

import os

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from invigil.core.blob_response import BLOCK, Unsatisfiable, blob_response, parse_range

from .conftest import Backend


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 10)
    assert parse_range("bytes=90-500", 100) == (90, 10)  # clipped to the end
    assert parse_range("bytes=-30", 100) == (70, 30)
    assert parse_range("bytes=-500", 100) == (0, 100)
    assert parse_range("BYTES = 5 - 6", 100) == (5, 2)
    # Ignored: another unit, several ranges, garbage, last before first.
    for header in ("items=0-1", "bytes=0-1,5-6", "bytes=x-", "bytes=-", "bytes=9-3"):
        assert parse_range(header, 100) is None, header
    for header, size in (("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)):
        with pytest.raises(Unsatisfiable):
            parse_range(header, size)


def test_streams_whole_and_ranges_from_the_store(backend: Backend) -> None:
    data = os.urandom(3 * BLOCK + 1234)  # several blocks of the stream
    key = backend.key("media-x.webm")
    backend.store.put(key, data)
    app = FastAPI()

    @app.get("/blob")
    def blob(request: Request) -> Response:
        return blob_response(
            backend.store,
            key,
            request.headers.get("range"),
            media_type="video/webm",
            filename="webcam-媒体.webm",
            headers={"Cache-Control": "private, no-store"},
        )

    client = TestClient(app)
    whole = client.get("/blob")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-length"] == str(len(data))
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/webm"
    assert whole.headers["cache-control"] == "private, no-store"
    assert whole.headers["content-disposition"] == (
        "inline; filename*=utf-8''webcam-%E5%AA%92%E4%BD%93.webm"
    )
    seam = client.get("/blob", headers={"Range": f"bytes={BLOCK - 10}-{2 * BLOCK + 9}"})
    assert seam.status_code == 206
    assert seam.content == data[BLOCK - 10 : 2 * BLOCK + 10]
    assert seam.headers["content-range"] == f"bytes {BLOCK - 10}-{2 * BLOCK + 9}/{len(data)}"
    assert seam.headers["content-length"] == str(BLOCK + 20)
    tail = client.get("/blob", headers={"Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == data[-7:]
    past = client.get("/blob", headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416 and past.content == b""
    assert past.headers["content-range"] == f"bytes */{len(data)}"
    several = client.get("/blob", headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == data
