"""The fast upload routes answer exactly as the routed endpoints: the same status, body and
headers for a stored chunk and for every refusal."""

from __future__ import annotations

from typing import Any

from conftest import bearer
from fastapi.testclient import TestClient

from invigil.app import create_app
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.db import Database
from recordings.conftest import entered, new_recording, put, sha


def _answer(r: Any) -> tuple[int, Any, str | None]:
    return r.status_code, r.json(), r.headers.get("www-authenticate")


def test_fast_routes_answer_like_the_router(
    client: TestClient, settings: Settings, db: Database, clock: FrozenClock, exam_id: str
) -> None:
    routed_app = create_app(
        settings.model_copy(update={"fast_upload_routes": False}),
        clock=clock,
        db=db,
        start_worker=False,
    )
    token, _ = entered(client, clock, exam_id)
    with TestClient(routed_app) as routed:
        for seq, c in enumerate((client, routed)):
            rec = new_recording(c, token)
            data = b"\x1a\x45\xdf\xa3" + bytes([seq]) * 4000
            first = put(c, token, rec, 0, data)
            assert first.status_code == 201 and first.json()["stored"] == "created"
        cases: list[tuple[str, dict[str, Any]]] = [
            ("/api/v1/recordings/x/chunks/0", {"content": b"abc"}),  # no token
            ("/api/v1/recordings/x/chunks/0", {"content": b"abc", "headers": bearer("nope")}),
            (f"/api/v1/recordings/{rec}/chunks/0", {"content": b"abc", "headers": bearer(token)}),
            (
                f"/api/v1/recordings/{rec}/chunks/zz",
                {"content": b"abc", "headers": {**bearer(token), "X-Chunk-SHA256": sha(b"abc")}},
            ),
            (
                f"/api/v1/recordings/{rec}/chunks/1",
                {"content": b"abc", "headers": {**bearer(token), "X-Chunk-SHA256": "0" * 64}},
            ),
            (
                f"/api/v1/recordings/{rec}/chunks/1",
                {
                    "content": b"\0" * (settings.max_upload_bytes + 1),
                    "headers": {**bearer(token), "X-Chunk-SHA256": "0" * 64},
                },
            ),
        ]
        for path, kw in cases:
            assert _answer(client.put(path, **kw)) == _answer(routed.put(path, **kw)), path
        for kw in (
            {},
            {"headers": bearer(token)},
            {"headers": bearer(token), "data": {"kind": "x"}},
        ):
            fast, slow = (
                client.post("/api/v1/snapshots", **kw),
                routed.post("/api/v1/snapshots", **kw),
            )
            assert _answer(fast) == _answer(slow), kw
