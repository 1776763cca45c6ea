"""Chunk upload: idempotent PUTs, conflicts, corrupted bodies, bad input, authorization."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from conftest import T, bearer, both_backends, staff_token
from fastapi.testclient import TestClient

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.recordings.models import Recording
from recordings.conftest import entered, new_recording, phone_token, put, sha, stored_keys

DATA = b"\x1aE\xdf\xa3" + os.urandom(3000)


def _files(ctx: AppContext, attempt_id: str) -> list[str]:
    return stored_keys(ctx.blobs, f"recordings/{attempt_id}")


def _tmp_empty(ctx: AppContext) -> bool:
    scratch = ctx.settings.scratch_dir
    return not scratch.exists() or not any(scratch.iterdir())


@both_backends
def test_chunk_put_is_idempotent_and_never_overwritten(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)

    r = put(client, token, rec, 0, DATA)
    assert r.status_code == 201, r.text
    assert r.json()["stored"] == "created"
    assert put(client, token, rec, 0, DATA).status_code == 200

    other = os.urandom(2000)
    r = put(client, token, rec, 0, other)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "chunk_conflict"

    r = put(client, token, rec, 1, other, digest=sha(b"something else"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "hash_mismatch"

    files = _files(app_ctx, attempt_id)
    assert len(files) == 1 and app_ctx.blobs.get(files[0]) == DATA
    assert _tmp_empty(app_ctx)
    listing = client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()
    assert listing["state"] == "open"
    assert listing["received"] == [0]
    assert listing["bytes"] == len(DATA)


def test_out_of_order_listing_shows_gaps(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    token, _ = entered(client, clock, exam_id)
    rec = new_recording(client, token, started_at="2030-06-01T00:50:00.123Z")
    for seq in (5, 2, 0):
        assert put(client, token, rec, seq, bytes([seq]) * 100).status_code == 201
    body = client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()
    assert body["received"] == [0, 2, 5]
    assert body["missing"] == [1, 3, 4]
    assert body["bytes"] == 300
    assert body["client_started_at"] == "2030-06-01T00:50:00.123000Z"
    assert body["created_at"] == "2030-06-01T00:50:00Z"


@both_backends
def test_bad_input_is_refused_and_nothing_is_stored(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    limit = app_ctx.settings.max_upload_bytes

    cases = [
        (put(client, token, rec, 0, b"x" * (limit + 1)), 413, "too_large"),
        (put(client, token, rec, 0, b"", digest=sha(b"")), 422, "empty_chunk"),
        (put(client, token, rec, "abc", DATA), 422, "invalid_seq"),
        (put(client, token, rec, "-1", DATA), 422, "invalid_seq"),
        (put(client, token, rec, "1.5", DATA), 422, "invalid_seq"),
        (put(client, token, rec, "99999999999", DATA), 422, "invalid_seq"),
        (put(client, token, rec, 0, DATA, digest="nothex"), 422, "invalid_hash"),
        (put(client, token, "0" * 32, 0, DATA), 404, "not_found"),
        (put(client, token, "..abc", 0, DATA), 404, "not_found"),
    ]
    r = client.put(f"/api/v1/recordings/{rec}/chunks/0", content=DATA, headers=bearer(token))
    cases.append((r, 422, "missing_hash"))
    r = client.put(
        f"/api/v1/recordings/{rec}/chunks/0", content=DATA, headers={"X-Chunk-SHA256": sha(DATA)}
    )
    cases.append((r, 401, "unauthorized"))
    for response, status, code in cases:
        assert response.status_code == status, (code, response.text)
        assert response.json()["error"]["code"] == code

    # A body larger than the limit without a Content-Length is cut off while streaming.
    def body() -> object:
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    r = client.put(
        f"/api/v1/recordings/{rec}/chunks/0",
        content=body(),  # type: ignore[arg-type]
        headers={**bearer(token), "X-Chunk-SHA256": sha(b"y")},
    )
    assert r.status_code == 413

    assert _files(app_ctx, attempt_id) == []
    assert _tmp_empty(app_ctx)
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()["received"] == []


@both_backends
def test_finalize_before_any_chunk_and_with_gaps(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, _ = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 3, "sha256": sha(b"")},
        headers=bearer(token),
    )
    assert r.status_code == 409
    assert r.json()["error"] == {
        "code": "chunks_missing",
        "message": r.json()["error"]["message"],
        "missing": [0, 1, 2],
    }
    parts = [b"a" * 10, b"b" * 10, b"c" * 10]
    put(client, token, rec, 0, parts[0])
    put(client, token, rec, 2, parts[2])
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 3, "sha256": sha(b"".join(parts))},
        headers=bearer(token),
    )
    assert r.status_code == 409 and r.json()["error"]["missing"] == [1]
    put(client, token, rec, 1, parts[1])
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 3, "sha256": sha(b"wrong")},
        headers=bearer(token),
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "hash_mismatch"
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 2, "sha256": sha(b"".join(parts[:2]))},
        headers=bearer(token),
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "chunk_count_mismatch"
    body = {"chunks": 3, "sha256": sha(b"".join(parts))}
    r = client.post(f"/api/v1/recordings/{rec}/finalize", json=body, headers=bearer(token))
    assert r.status_code == 200 and r.json()["state"] == "finalized"
    r = client.post(f"/api/v1/recordings/{rec}/finalize", json=body, headers=bearer(token))
    assert r.status_code == 200 and r.json()["state"] == "finalized"
    other = {"chunks": 2, "sha256": sha(b"".join(parts[:2]))}
    r = client.post(f"/api/v1/recordings/{rec}/finalize", json=other, headers=bearer(token))
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_finalized"
    # After finalize: a retried chunk is still acknowledged, a new one is refused.
    assert put(client, token, rec, 1, parts[1]).status_code == 200
    r = put(client, token, rec, 3, b"d")
    assert r.status_code == 409 and r.json()["error"]["code"] == "recording_finalized"
    listing = client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()
    assert listing["state"] == "finalized" and listing["received"] == [0, 1, 2]
    # The exact join is stored under a key that carries its SHA-256; the scratch file is gone.
    with app_ctx.db.session() as s:
        stored = s.get(Recording, rec)
        assert stored is not None and stored.original_key is not None
    assert stored.original_key.endswith(f"/original-{body['sha256']}")
    assert app_ctx.blobs.get(stored.original_key) == b"".join(parts)
    assert _tmp_empty(app_ctx)


@both_backends
def test_a_failed_blob_write_fails_the_batch_and_acknowledges_nothing(
    client: TestClient,
    clock: FrozenClock,
    exam_id: str,
    app_ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    assert put(client, token, rec, 0, b"first").status_code == 201
    real = app_ctx.blobs.put_files

    def failing(items: Any) -> None:
        raise OSError("the store refused the write")

    monkeypatch.setattr(app_ctx.blobs, "put_files", failing)
    with TestClient(client.app, raise_server_exceptions=False) as other:
        assert put(other, token, rec, 1, b"second").status_code == 500
    # No row without its bytes: the chunk is not listed, and its retry is a fresh 201.
    listing = client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()
    assert listing["received"] == [0]
    monkeypatch.setattr(app_ctx.blobs, "put_files", real)
    assert put(client, token, rec, 1, b"second").status_code == 201
    assert [app_ctx.blobs.get(k) for k in _files(app_ctx, attempt_id)] in (
        [b"first", b"second"],
        [b"second", b"first"],
    )
    assert _tmp_empty(app_ctx)


def test_authorization_between_candidates_phone_and_staff(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    mine, attempt = entered(client, clock, exam_id, "1001")
    theirs, _ = entered(client, clock, exam_id, "1002")
    rec = new_recording(client, mine)
    assert put(client, mine, rec, 0, DATA).status_code == 201

    # Another candidate: the recording does not exist for them.
    for r in (
        client.get(f"/api/v1/recordings/{rec}", headers=bearer(theirs)),
        put(client, theirs, rec, 1, DATA),
        client.post(
            f"/api/v1/recordings/{rec}/finalize",
            json={"chunks": 1, "sha256": sha(DATA)},
            headers=bearer(theirs),
        ),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"

    # The phone writes only evidence, the desk never evidence.
    phone = phone_token(app_ctx, attempt)
    r = client.post(
        "/api/v1/recordings", json={"kind": "webcam", "mime": "video/webm"}, headers=bearer(phone)
    )
    assert r.status_code == 403
    r = client.post(
        "/api/v1/recordings", json={"kind": "evidence", "mime": "video/webm"}, headers=bearer(mine)
    )
    assert r.status_code == 403
    assert put(client, phone, rec, 1, DATA).status_code == 403
    evidence = new_recording(client, phone, "evidence", "video/mp4")
    assert put(client, phone, evidence, 0, DATA).status_code == 201
    assert put(client, mine, evidence, 1, DATA).status_code == 403
    other_phone = phone_token(app_ctx, entered(client, clock, exam_id, "2001")[1])
    assert put(client, other_phone, evidence, 1, DATA).status_code == 404

    # Staff: their rooms only, read only, every read logged.
    p1 = staff_token(client, "p1", "pw-p1")
    p2 = staff_token(client, "p2", "pw-p2")
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(p1)).status_code == 200
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(p2)).status_code == 403
    assert put(client, p1, rec, 1, DATA).status_code == 403
    from sqlalchemy import select

    from invigil.recordings.models import RecordingAccess

    with app_ctx.db.session() as s:
        log = list(s.scalars(select(RecordingAccess)))
    assert [(a.username, a.what, a.recording_id) for a in log] == [("p1", "status", rec)]

    # Unknown kind, bad MIME.
    r = client.post(
        "/api/v1/recordings", json={"kind": "audio", "mime": "video/webm"}, headers=bearer(mine)
    )
    assert r.status_code == 422
    r = client.post(
        "/api/v1/recordings", json={"kind": "webcam", "mime": "text/html"}, headers=bearer(mine)
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_mime"


def test_windows_and_expired_tokens(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, _ = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    assert put(client, token, rec, 0, DATA).status_code == 201

    # Not yet entered: no desk recording.
    clock.set(T - timedelta(minutes=10))
    from conftest import login

    late = login(client, exam_id, "1002", photo="biden.jpg").json()["token"]
    r = client.post(
        "/api/v1/recordings", json={"kind": "webcam", "mime": "video/webm"}, headers=bearer(late)
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_entered"

    # Uploads close 30 min after the deadline (20 min exam).
    clock.set(T + timedelta(minutes=50) - timedelta(seconds=1))
    assert put(client, token, rec, 1, DATA).status_code == 201
    clock.set(T + timedelta(minutes=50))
    r = put(client, token, rec, 2, DATA)
    assert r.status_code == 403 and r.json()["error"]["code"] == "uploads_closed"

    # An expired token: 401 that says so, nothing stored.
    clock.set(T + timedelta(hours=13))
    r = put(client, token, rec, 3, DATA)
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
    r = client.get(f"/api/v1/recordings/{rec}", headers=bearer(token))
    assert r.status_code == 401
    clock.set(T)
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()["received"] == [
        0,
        1,
    ]
