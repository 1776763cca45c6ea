"""Snapshots, the candidate's upload status and the staff list of missing uploads."""

from __future__ import annotations

import io
from datetime import timedelta

from conftest import T, bearer, both_backends, staff_token
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.jobs import Job
from invigil.recordings import snapshots
from invigil.recordings.models import Snapshot
from recordings.conftest import entered, new_recording, phone_token, put, sha, stored_keys


def _jpeg(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG")
    return buf.getvalue()


def _post(client: TestClient, token: str, kind: str, data: bytes) -> object:
    return client.post(
        "/api/v1/snapshots",
        data={"kind": kind},
        files={"image": ("s.jpg", data, "image/jpeg")},
        headers=bearer(token),
    )


@both_backends
def test_snapshots_are_kept_and_the_latest_is_cheap(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, attempt_id = entered(client, clock, exam_id)
    phone = phone_token(app_ctx, attempt_id)
    first, second = _jpeg("red"), _jpeg("blue")
    r = _post(client, token, "webcam", first)
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    clock.advance(timedelta(seconds=5))
    r = _post(client, token, "webcam", second)
    assert r.status_code == 201  # type: ignore[attr-defined]
    assert _post(client, phone, "evidence", first).status_code == 201  # type: ignore[attr-defined]

    for who, kind, data, status, code in [
        (phone, "webcam", first, 403, "forbidden"),
        (token, "evidence", first, 403, "forbidden"),
        (token, "webcam", b"GIF89a" + b"\0" * 100, 422, "not_jpeg"),
        (token, "face", first, 422, "invalid_kind"),
        (
            token,
            "webcam",
            b"\xff\xd8\xff" + b"\0" * app_ctx.settings.max_photo_bytes,
            413,
            "too_large",
        ),
    ]:
        r = _post(client, who, kind, data)
        assert r.status_code == status, (kind, r.text)  # type: ignore[attr-defined]
        assert r.json()["error"]["code"] == code  # type: ignore[attr-defined]

    # Three blobs for three rows (the refused uploads stored nothing), no scratch file left.
    assert len(stored_keys(app_ctx.blobs, f"snapshots/{attempt_id}")) == 3
    assert not any(app_ctx.settings.scratch_dir.iterdir())
    with app_ctx.db.session() as s:
        assert s.query(Snapshot).count() == 3
        latest = snapshots.latest(s, [attempt_id])[attempt_id]
        assert sorted(latest) == ["evidence", "webcam"]
        assert app_ctx.blobs.get(latest["webcam"].blob_key) == second
        assert latest["webcam"].taken_at == T - timedelta(minutes=10) + timedelta(seconds=5)
        # Analysis is queued only once its handler exists (it comes with a later issue).
        assert snapshots.analysis_registered() == bool(
            list(s.scalars(select(Job).where(Job.kind == snapshots.ANALYSE_JOB)))
        )

    p1 = staff_token(client, "p1", "pw-p1")
    listing = client.get(f"/api/v1/staff/attempts/{attempt_id}/snapshots", headers=bearer(p1))
    assert listing.status_code == 200
    body = listing.json()
    assert len(body["snapshots"]) == 3
    image = client.get(body["latest"]["webcam"]["url"], headers=bearer(p1))
    assert image.status_code == 200 and image.content == second
    p2 = staff_token(client, "p2", "pw-p2")
    assert client.get(body["latest"]["webcam"]["url"], headers=bearer(p2)).status_code == 403


def test_upload_status_for_candidate_then_missing_uploads_for_staff(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    done_token, done_attempt = entered(client, clock, exam_id, "1001")
    gap_token, gap_attempt = entered(client, clock, exam_id, "2001")
    for token in (done_token, gap_token):
        for kind in ("webcam", "screen"):
            rec = new_recording(client, token, kind)
            put(client, token, rec, 0, b"chunk-0")
            if token == done_token:
                r = client.post(
                    f"/api/v1/recordings/{rec}/finalize",
                    json={"chunks": 1, "sha256": sha(b"chunk-0")},
                    headers=bearer(token),
                )
                assert r.status_code == 200
            elif kind == "screen":
                put(client, token, rec, 3, b"chunk-3")

    mine = client.get("/api/v1/candidate/uploads", headers=bearer(done_token)).json()
    assert mine["complete"] is True and len(mine["recordings"]) == 2
    theirs = client.get("/api/v1/candidate/uploads", headers=bearer(gap_token)).json()
    assert theirs["complete"] is False
    screen = next(p for p in theirs["problems"] if p["kind"] == "screen")
    assert screen["reason"] == "not_finalized" and screen["missing"] == [1, 2]
    state = client.get("/api/v1/candidate/state", headers=bearer(gap_token)).json()
    assert {r["kind"] for r in state["recordings"]} == {"webcam", "screen"}

    rev = staff_token(client, "rev", "pw-rev")
    p1 = staff_token(client, "p1", "pw-p1")
    p2 = staff_token(client, "p2", "pw-p2")
    url = f"/api/v1/staff/exams/{exam_id}/missing-uploads"
    r = client.get(url, headers=bearer(rev))
    assert r.status_code == 409 and r.json()["error"]["code"] == "uploads_open"

    clock.set(T + timedelta(minutes=50))  # deadline + 30 min grace
    r = client.get("/api/v1/candidate/uploads", headers=bearer(gap_token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "uploads_closed"
    body = client.get(url, headers=bearer(rev)).json()
    assert body["checked"] == 2
    assert [a["attempt_id"] for a in body["attempts"]] == [gap_attempt]
    assert {p["kind"] for p in body["attempts"][0]["problems"]} == {"webcam", "screen"}
    assert client.get(url, headers=bearer(p2)).json()["attempts"][0]["ticket"] == "2001"
    assert client.get(url, headers=bearer(p1)).json()["attempts"] == []  # R01 is complete
    exm = staff_token(client, "exm", "pw-exm")
    assert client.get(url, headers=bearer(exm)).status_code == 403
    assert done_attempt != gap_attempt
