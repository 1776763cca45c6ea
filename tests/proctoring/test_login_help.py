"""Face-login help: a candidate whose face login failed asks tech support, who approve or reject
by hand; the approval lets the candidate in once, under the login window rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import T, bearer, exam_doc, face, import_exam, login, staff_token
from fastapi.testclient import TestClient
from httpx import Response

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext


def _exam(ctx: AppContext, folder: Path) -> str:
    doc = exam_doc()
    doc["staff"] += [
        {"username": "t1", "password": "pw-t1", "roles": ["tech"], "rooms": ["R01"]},
        {"username": "t2", "password": "pw-t2", "roles": ["tech"], "rooms": ["R02"]},
        {"username": "adm", "password": "pw-adm", "roles": ["admin"]},
    ]
    return import_exam(ctx, folder, doc)


def ask(client: TestClient, exam: str, ticket: str, text: str = "刷脸一直失败") -> Response:
    r: Response = client.post(
        "/api/v1/candidate/login-help",
        data={"exam_id": exam, "ticket": ticket, "text": text},
        files={"face": ("face.jpg", face("biden.jpg"), "image/jpeg")},
    )
    return r


def fail_logins(
    client: TestClient, exam: str, ticket: str, n: int, photo: str = "biden.jpg"
) -> None:
    for _ in range(n):
        r = login(client, exam, ticket, photo)
        assert r.json()["error"]["code"] == "face_mismatch"


def poll(client: TestClient, request_id: str, token: str) -> Response:
    r: Response = client.get(f"/api/v1/candidate/login-help/{request_id}", params={"poll": token})
    return r


def kinds(client: TestClient, staff: str, attempt: str) -> list[str]:
    body: dict[str, Any] = client.get(
        f"/api/v1/staff/attempts/{attempt}/events", headers=bearer(staff)
    ).json()
    return [e["kind"] for e in body["events"]]


def test_approval_lets_the_candidate_in_once(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    exam = _exam(app_ctx, tmp_path / "e")
    clock.set(T - timedelta(minutes=40))
    r = ask(client, exam, "1001")
    assert r.status_code == 403 and r.json()["error"]["code"] == "login_not_open"
    clock.set(T - timedelta(minutes=20))
    assert ask(client, exam, "9999").status_code == 404
    fail_logins(client, exam, "1001", 2)
    r = ask(client, exam, "1001")
    assert r.status_code == 409 and r.json()["error"]["code"] == "login_help_too_early"
    fail_logins(client, exam, "1001", 1)
    r = ask(client, exam, "1001")
    assert r.status_code == 201, r.text
    request_id, token = r.json()["request_id"], r.json()["poll_token"]
    assert poll(client, request_id, token).json() == {
        "request_id": request_id,
        "status": "pending",
        "reason": None,
    }
    assert poll(client, request_id, "guess").status_code == 404

    # Tech support of the room sees it with both photos; others do not.
    t1 = staff_token(client, "t1", "pw-t1")
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    assert [(x["request_id"], x["ticket"], x["name"], x["text"]) for x in listed] == [
        (request_id, "1001", "奥巴马", "刷脸一直失败")
    ]
    assert [f["code"] for f in listed[0]["recent_failures"]] == ["face_mismatch"] * 3
    capture = client.get(listed[0]["face_url"], headers=bearer(t1))
    assert capture.status_code == 200 and capture.content == face("biden.jpg")
    enrolment = client.get(listed[0]["photo_url"], headers=bearer(t1))
    assert enrolment.status_code == 200 and enrolment.content == face("obama.jpg")
    assert client.get(listed[0]["face_url"]).status_code == 401
    t2 = staff_token(client, "t2", "pw-t2")
    assert client.get("/api/v1/staff/login-help", headers=bearer(t2)).json()["requests"] == []
    assert client.get(listed[0]["face_url"], headers=bearer(t2)).status_code == 403
    r = client.post(
        f"/api/v1/staff/login-help/{request_id}/approve", headers=bearer(t2), json={"reason": "x"}
    )
    assert r.status_code == 403
    p1 = staff_token(client, "p1", "pw-p1")  # a proctor, not tech support
    assert client.get("/api/v1/staff/login-help", headers=bearer(p1)).status_code == 403
    adm = staff_token(client, "adm", "pw-adm")
    assert len(client.get("/api/v1/staff/login-help", headers=bearer(adm)).json()["requests"]) == 1

    # Approve with a reason.
    r = client.post(
        f"/api/v1/staff/login-help/{request_id}/approve", headers=bearer(t1), json={"reason": ""}
    )
    assert r.status_code == 422
    clock.advance(timedelta(seconds=40))
    r = client.post(
        f"/api/v1/staff/login-help/{request_id}/approve",
        headers=bearer(t1),
        json={"reason": "视频核对身份证，本人无误"},
    )
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = client.post(
        f"/api/v1/staff/login-help/{request_id}/reject", headers=bearer(t1), json={"reason": "x"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_decided"
    assert client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"] == []

    # The first poll carries the session, once.
    first = poll(client, request_id, token).json()
    assert first["status"] == "approved" and first["reason"] == "视频核对身份证，本人无误"
    assert first["stage"] == "lot" and first["token"]
    state = client.get("/api/v1/candidate/state", headers=bearer(first["token"])).json()
    assert state["candidate"]["ticket"] == "1001"
    again = poll(client, request_id, token).json()
    assert again["status"] == "approved" and "token" not in again and again["token_issued"]

    attempt = first["attempt_id"]
    log = kinds(client, t1, attempt)
    assert log[-3:] == ["login_help_requested", "login_approved_manually", "login"]
    events = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=bearer(t1)).json()
    approved = next(e for e in events["events"] if e["kind"] == "login_approved_manually")
    assert approved["actor"] == "staff:t1"
    assert approved["data"]["reason"] == "视频核对身份证，本人无误"
    detail = client.get(f"/api/v1/staff/attempts/{attempt}", headers=bearer(t1)).json()
    assert detail["face_verified_at"] == "2030-06-01T00:40:40Z"  # verified at the approval


def test_rejection_and_a_newer_request_replacing_a_pending_one(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    exam = _exam(app_ctx, tmp_path / "e")
    clock.set(T - timedelta(minutes=20))
    fail_logins(client, exam, "1001", 3)
    old = ask(client, exam, "1001").json()
    new = ask(client, exam, "1001", text="第二次申请").json()
    assert poll(client, old["request_id"], old["poll_token"]).json()["status"] == "cancelled"
    t1 = staff_token(client, "t1", "pw-t1")
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    assert [x["request_id"] for x in listed] == [new["request_id"]]
    r = client.post(
        f"/api/v1/staff/login-help/{old['request_id']}/approve",
        headers=bearer(t1),
        json={"reason": "x"},
    )
    assert r.status_code == 409

    r = client.post(
        f"/api/v1/staff/login-help/{new['request_id']}/reject",
        headers=bearer(t1),
        json={"reason": "现场照片不是本人"},
    )
    assert r.status_code == 200
    body = poll(client, new["request_id"], new["poll_token"]).json()
    assert body == {
        "request_id": new["request_id"],
        "status": "rejected",
        "reason": "现场照片不是本人",
    }
    attempt = listed[0]["attempt_id"]
    assert kinds(client, t1, attempt)[-1] == "login_help_rejected"
    detail = client.get(f"/api/v1/staff/attempts/{attempt}", headers=bearer(t1)).json()
    assert detail["face_verified_at"] is None and detail["stage"] == "not_logged_in"


def test_window_and_one_live_session_rules(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    exam = _exam(app_ctx, tmp_path / "e")
    t1 = staff_token(client, "t1", "pw-t1")

    # Approved too late: the exam is over for a candidate who never entered.
    clock.set(T - timedelta(minutes=20))
    fail_logins(client, exam, "1002", 3, photo="obama2.jpg")  # 1002 is Biden
    late = ask(client, exam, "1002").json()
    clock.set(T + timedelta(minutes=21))
    r = client.post(
        f"/api/v1/staff/login-help/{late['request_id']}/approve",
        headers=bearer(t1),
        json={"reason": "ok"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "exam_over"
    assert ask(client, exam, "1002").json()["error"]["code"] == "exam_over"

    # Approved in time, but another device holds a live session: refused and logged.
    clock.set(T - timedelta(minutes=20))
    live = login(client, exam, "1001", "obama2.jpg").json()["token"]
    fail_logins(client, exam, "1001", 3)
    req = ask(client, exam, "1001").json()
    client.post(
        f"/api/v1/staff/login-help/{req['request_id']}/approve",
        headers=bearer(t1),
        json={"reason": "ok"},
    )
    r = poll(client, req["request_id"], req["poll_token"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "session_active_elsewhere"
    # Once the other device has gone quiet, the approval logs in and replaces it.
    clock.advance(timedelta(seconds=25))
    body = poll(client, req["request_id"], req["poll_token"]).json()
    assert body["token"]
    r = client.get("/api/v1/candidate/state", headers=bearer(live))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_revoked"
    attempt = body["attempt_id"]
    assert "session_active_elsewhere" in kinds(client, t1, attempt)

    # Not a JPEG.
    r = client.post(
        "/api/v1/candidate/login-help",
        data={"exam_id": exam, "ticket": "1001", "text": "x"},
        files={"face": ("face.jpg", b"GIF89a", "image/jpeg")},
    )
    assert r.status_code == 422


def test_requests_are_limited_in_a_window_per_address_and_never_cancel_another_client(
    client: TestClient, app: Any, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    """Issue 13 #7: an attacker asking for a candidate from another address neither uses up the
    candidate's own budget nor cancels the candidate's pending request, and every limit ends
    after a window instead of lasting the attempt's whole life."""
    exam = _exam(app_ctx, tmp_path / "e")
    clock.set(T - timedelta(minutes=20))
    fail_logins(client, exam, "1001", 3)
    attacker = TestClient(app, client=("203.0.113.66", 40000))

    # The attacker's five requests in the window replace one another; the sixth is refused.
    theirs = [ask(attacker, exam, "1001", text=f"attacker {i}") for i in range(5)]
    assert [r.status_code for r in theirs] == [201] * 5
    r = ask(attacker, exam, "1001")
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert r.json()["error"]["help_phone"] == "400-000-0000"

    # The real candidate (another address) still asks, and the attacker's pending request is
    # not silently cancelled: tech support sees both, with their addresses.
    mine = ask(client, exam, "1001", text="本人，刷脸失败")
    assert mine.status_code == 201, mine.text
    last_attacker = theirs[-1].json()
    assert poll(client, last_attacker["request_id"], last_attacker["poll_token"]).json()[
        "status"
    ] == ("pending")
    assert poll(client, theirs[0].json()["request_id"], theirs[0].json()["poll_token"]).json()[
        "status"
    ] == ("cancelled")  # replaced by the same address's newer request
    t1 = staff_token(client, "t1", "pw-t1")
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    assert {(x["client_ip"], x["text"], x["pending_for_candidate"]) for x in listed} == {
        ("203.0.113.66", "attacker 4", 2),
        ("testclient", "本人，刷脸失败", 2),
    }

    # Approving one ends the others: one candidate, one way in.
    r = client.post(
        f"/api/v1/staff/login-help/{mine.json()['request_id']}/approve",
        headers=bearer(t1),
        json={"reason": "视频核对，本人"},
    )
    assert r.status_code == 200
    lost = poll(attacker, last_attacker["request_id"], last_attacker["poll_token"]).json()
    assert lost["status"] == "cancelled" and "token" not in lost
    got = poll(client, mine.json()["request_id"], mine.json()["poll_token"]).json()
    assert got["token"]
    approved = [
        e
        for e in client.get(
            f"/api/v1/staff/attempts/{got['attempt_id']}/events", headers=bearer(t1)
        ).json()["events"]
        if e["kind"] == "login_approved_manually"
    ]
    assert approved[-1]["data"]["cancelled"] == [last_attacker["request_id"]]

    # The window slides: 15 minutes later the attacker's address may ask again.
    clock.advance(timedelta(minutes=15, seconds=1))
    assert ask(attacker, exam, "1001").status_code == 201


def test_all_addresses_together_are_bounded_per_attempt(
    client: TestClient, app: Any, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    exam = _exam(app_ctx, tmp_path / "e")
    clock.set(T - timedelta(minutes=20))
    fail_logins(client, exam, "1001", 3)
    codes = [
        ask(TestClient(app, client=(f"198.51.100.{i}", 1000)), exam, "1001").status_code
        for i in range(13)
    ]
    assert codes == [201] * 12 + [429]
    t1 = staff_token(client, "t1", "pw-t1")
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    assert len(listed) == 12  # each address's request stays pending for tech support
    clock.advance(timedelta(minutes=16))
    assert ask(TestClient(app, client=("198.51.100.99", 1000)), exam, "1001").status_code == 201


def test_one_address_is_limited_over_all_tickets(
    client: TestClient, app: Any, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    exam = _exam(app_ctx, tmp_path / "e")
    clock.set(T - timedelta(minutes=20))
    fail_logins(client, exam, "1001", 3)
    prober = TestClient(app, client=("192.0.2.7", 1000))
    # Unknown tickets count too: the limit slows down guessing the roster.
    codes = [ask(prober, exam, f"9{i:03d}").status_code for i in range(20)]
    assert codes == [404] * 20
    r = ask(prober, exam, "1001")
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
    assert int(r.headers["Retry-After"]) == 600
    # Other addresses are not affected.
    assert ask(client, exam, "1001").status_code == 201


def test_a_practice_reference_face_and_a_live_session_show_to_tech_support(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    """Issue 12 §4: a practice exam's reference face (its first login's) is served where the
    enrolment photo would be, to tech support and reviewers; before approving, tech support
    learns that the candidate is logged in on another device."""
    doc = exam_doc()
    doc["exam"]["practice"] = True
    for c in doc["candidates"]:
        del c["photo"]
    doc["staff"].append(
        {"username": "t1", "password": "pw-t1", "roles": ["tech"], "rooms": ["R01"]}
    )
    exam = import_exam(app_ctx, tmp_path / "e", doc)
    clock.set(T - timedelta(minutes=20))
    t1 = staff_token(client, "t1", "pw-t1")
    rev = staff_token(client, "rev", "pw-rev")

    # Before any login there is no reference: no photo URL, and the listing says practice.
    for _ in range(3):  # no face found: no reference is taken
        assert login(client, exam, "1002", "empty.jpg").json()["error"]["code"] == "no_face"
    before = ask(client, exam, "1002").json()
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    assert [(x["request_id"], x["photo_url"], x["practice"]) for x in listed] == [
        (before["request_id"], None, True)
    ]
    r = client.get(f"/api/v1/staff/login-help/{before['request_id']}/photo", headers=bearer(t1))
    assert r.status_code == 404

    # The first login's face becomes the reference, and is the photo everywhere.
    first = login(client, exam, "1001", "obama2.jpg")
    assert first.status_code == 200, first.text
    desk = first.json()["token"]
    attempt = first.json()["attempt_id"]
    fail_logins(client, exam, "1001", 3)  # someone else, on another device
    req = ask(client, exam, "1001", text="换了电脑").json()
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    mine = next(x for x in listed if x["request_id"] == req["request_id"])
    photo = client.get(mine["photo_url"], headers=bearer(t1))
    assert photo.status_code == 200 and photo.content == face("obama2.jpg")
    assert photo.headers["content-type"] == "image/jpeg"
    review = client.get(f"/api/v1/review/attempts/{attempt}", headers=bearer(rev)).json()
    assert review["candidate"]["photo_url"] == f"/api/v1/review/attempts/{attempt}/photo"
    served = client.get(review["candidate"]["photo_url"], headers=bearer(rev))
    assert served.status_code == 200 and served.content == face("obama2.jpg")

    # The desk logged in seconds ago is a live session: the listing says so, with its client.
    live = mine["active_session"]
    assert live is not None and live["last_seen_at"] == "2030-06-01T00:40:00Z"
    assert live["ip"] == "testclient" and live["alive_seconds"] == 20
    # Quiet for longer than the liveness window: no warning any more.
    clock.advance(timedelta(seconds=25))
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    assert next(x for x in listed if x["request_id"] == req["request_id"])["active_session"] is None
    client.post("/api/v1/candidate/heartbeat", headers=bearer(desk))  # back again
    listed = client.get("/api/v1/staff/login-help", headers=bearer(t1)).json()["requests"]
    assert next(x for x in listed if x["request_id"] == req["request_id"])["active_session"]

    # Approved anyway: the waiting device polls and is refused while the other one lives, but
    # the 异地登录 flag is logged once, not once per poll.
    client.post(
        f"/api/v1/staff/login-help/{req['request_id']}/approve",
        headers=bearer(t1),
        json={"reason": "ok"},
    )
    for _ in range(3):
        r = poll(client, req["request_id"], req["poll_token"])
        assert r.status_code == 409 and r.json()["error"]["code"] == "session_active_elsewhere"
    assert kinds(client, t1, attempt).count("session_active_elsewhere") == 1
