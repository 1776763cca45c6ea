"""Face login against real enrolment photos, one live session per candidate, rate limits."""

from __future__ import annotations

from datetime import timedelta

from conftest import T, bearer, login, staff_token
from fastapi.testclient import TestClient

from invigil.core.clock import FrozenClock


def _events(client: TestClient, attempt_id: str) -> list[dict]:  # type: ignore[type-arg]
    token = staff_token(client, "rev", "pw-rev")
    r = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(token))
    assert r.status_code == 200
    return r.json()["events"]  # type: ignore[no-any-return]


def test_real_photos(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=20))
    # 1001 is enrolled with obama.jpg: a different photo of him logs in.
    ok = login(client, exam_id, "1001", photo="obama2.jpg")
    assert ok.status_code == 200, ok.text
    attempt_id = ok.json()["attempt_id"]

    # A different person, an empty frame and a group photo on 1002 (enrolled as Biden).
    cases = {
        "obama.jpg": (403, "face_mismatch"),
        "empty.jpg": (422, "no_face"),
        "group_t1.jpg": (422, "multiple_faces"),
    }
    for photo, (status, code) in cases.items():
        r = login(client, exam_id, "1002", photo=photo)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), photo
        assert r.json()["error"]["message"]  # a sentence the candidate can act on
        assert "token" not in r.json()

    ok_events = _events(client, attempt_id)
    assert [e["kind"] for e in ok_events] == ["login"]
    assert ok_events[0]["data"]["distance"] < 0.5

    biden = client.get(
        "/api/v1/staff/rooms/R01", headers=bearer(staff_token(client, "p1", "pw-p1"))
    ).json()["candidates"]
    biden_attempt = next(c for c in biden if c["ticket"] == "1002")["attempt_id"]
    failed = _events(client, biden_attempt)
    assert [e["data"]["code"] for e in failed] == ["face_mismatch", "no_face", "multiple_faces"]
    assert all(e["kind"] == "login_failed" for e in failed)


def test_practice_exam_enrols_first_login_face(
    client: TestClient, clock: FrozenClock, app_ctx, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from conftest import exam_doc, import_exam

    doc = exam_doc()
    doc["exam"]["practice"] = True
    for c in doc["candidates"]:
        c.pop("photo")
    exam = import_exam(app_ctx, tmp_path / "practice", doc)
    clock.set(T - timedelta(minutes=20))
    first = login(client, exam, "1001", photo="tom_hanks.jpg")
    assert first.status_code == 200, first.text
    # From now on the reference is that face: someone else is refused.
    clock.advance(timedelta(minutes=1))
    r = login(client, exam, "1001", photo="obama.jpg")
    assert r.json()["error"]["code"] == "face_mismatch"


def test_second_login_while_alive_is_refused_then_takes_over(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    first = login(client, exam_id, "1001").json()["token"]
    clock.advance(timedelta(seconds=10))
    assert client.post("/api/v1/candidate/heartbeat", headers=bearer(first)).status_code == 200

    clock.advance(timedelta(seconds=19))  # 19 s since the heartbeat: still alive
    r = login(client, exam_id, "1001", photo="obama3.jpg")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "session_active_elsewhere"

    # The same device presenting its own token may log in again (a page reload).
    again = login(client, exam_id, "1001", headers=bearer(first))
    assert again.status_code == 200
    second = again.json()["token"]
    r = client.get("/api/v1/candidate/state", headers=bearer(first))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_revoked"

    clock.advance(timedelta(seconds=20))  # the second device went silent
    third = login(client, exam_id, "1001", photo="obama3.jpg")
    assert third.status_code == 200, third.text
    r = client.get("/api/v1/candidate/state", headers=bearer(second))
    assert r.status_code == 401 and r.json()["error"]["reason"] == "replaced"

    events = _events(client, third.json()["attempt_id"])
    kinds = [e["kind"] for e in events]
    assert kinds == ["login", "session_active_elsewhere", "login", "login"]
    refused = events[1]
    assert refused["severity"] == "violation"


def test_login_attempts_rate_limited_per_address(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    # Images without a face count against the client's address, not the ticket
    # (tests/security/test_face_login_limits.py covers the rest of the limits).
    clock.set(T - timedelta(minutes=20))
    for _ in range(20):
        assert login(client, exam_id, "1002", photo="empty.jpg").status_code == 422
    r = login(client, exam_id, "1002", photo="biden.jpg")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "too_many_attempts"
    assert r.headers["Retry-After"]
    # After the window the candidate may try again.
    clock.advance(timedelta(minutes=10, seconds=1))
    assert login(client, exam_id, "1002", photo="biden.jpg").status_code == 200


def test_bad_face_uploads(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=20))
    r = client.post(
        "/api/v1/candidate/login",
        data={"exam_id": exam_id, "ticket": "1001"},
        files={"face": ("face.jpg", b"not a jpeg at all", "image/jpeg")},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_image"
    r = client.post("/api/v1/candidate/login", data={"exam_id": exam_id, "ticket": "1001"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    big = b"\xff\xd8" + b"0" * (8 * 1024 * 1024 + 10)
    r = client.post(
        "/api/v1/candidate/login",
        data={"exam_id": exam_id, "ticket": "1001"},
        files={"face": ("face.jpg", big, "image/jpeg")},
    )
    assert r.status_code == 413


def test_tokens_are_checked(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=20))
    assert client.get("/api/v1/candidate/state").status_code == 401
    r = client.get("/api/v1/candidate/state", headers=bearer("forged-token"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    staff = staff_token(client, "p1", "pw-p1")
    assert client.get("/api/v1/candidate/state", headers=bearer(staff)).status_code == 401
    token = login(client, exam_id, "1001").json()["token"]
    clock.advance(timedelta(hours=13))  # past the session lifetime
    r = client.get("/api/v1/candidate/state", headers=bearer(token))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
