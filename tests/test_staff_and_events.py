"""Staff see only what their role and rooms allow; the event log is hash-chained."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from conftest import T, bearer, exam_doc, import_exam, login, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import update

from invigil.attempts import events
from invigil.attempts.models import Event
from invigil.core.clock import FrozenClock, iso
from invigil.core.context import AppContext
from invigil.core.db import transaction


def test_staff_login(client: TestClient, exam_id: str) -> None:
    r = client.post("/api/v1/staff/login", json={"username": "p1", "password": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    r = client.post("/api/v1/staff/login", json={"username": "ghost", "password": "x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    r = client.post("/api/v1/staff/login", json={"username": "p1"})
    assert r.status_code == 422
    token = staff_token(client, "p1", "pw-p1")
    me = client.get("/api/v1/staff/me", headers=bearer(token)).json()
    assert me["username"] == "p1" and me["roles"] == ["proctor"] and len(me["room_ids"]) == 1


def test_room_listing_and_isolation(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=20))
    token = login(client, exam_id, "1001").json()["token"]
    client.post("/api/v1/candidate/lot", headers=bearer(token))

    p1 = staff_token(client, "p1", "pw-p1")
    room = client.get("/api/v1/staff/rooms/R01", headers=bearer(p1))
    assert room.status_code == 200
    rows = {c["ticket"]: c for c in room.json()["candidates"]}
    assert set(rows) == {"1001", "1002"}
    assert rows["1001"]["name"] == "奥巴马" and rows["1001"]["stage"] == "attachments"
    assert rows["1001"]["lot"] in (1, 2)
    assert rows["1001"]["online"] is True and rows["1002"]["online"] is False
    assert rows["1002"]["stage"] == "not_logged_in" and rows["1002"]["lot"] is None
    attempt_1001 = rows["1001"]["attempt_id"]

    # The same room by its internal id.
    room_id = room.json()["room"]["room_id"]
    assert client.get(f"/api/v1/staff/rooms/{room_id}", headers=bearer(p1)).status_code == 200

    # p2 proctors R02 only: R01, its candidates and their events are out of reach.
    p2 = staff_token(client, "p2", "pw-p2")
    r = client.get("/api/v1/staff/rooms/R01", headers=bearer(p2))
    assert r.status_code == 404  # no room of that code that p2 may see
    r = client.get(f"/api/v1/staff/rooms/{room_id}", headers=bearer(p2))
    assert r.status_code == 403
    assert (
        client.get(f"/api/v1/staff/attempts/{attempt_1001}", headers=bearer(p2)).status_code == 403
    )
    r = client.get(f"/api/v1/staff/attempts/{attempt_1001}/events", headers=bearer(p2))
    assert r.status_code == 403 and "1001" not in r.text
    assert [
        c["ticket"]
        for c in client.get("/api/v1/staff/rooms/R02", headers=bearer(p2)).json()["candidates"]
    ] == ["2001"]

    # Reviewers see every room; examiners score blind and see no roster.
    rev = staff_token(client, "rev", "pw-rev")
    assert client.get("/api/v1/staff/rooms/R02", headers=bearer(rev)).status_code == 200
    detail = client.get(f"/api/v1/staff/attempts/{attempt_1001}", headers=bearer(rev)).json()
    assert detail["stage"] == "attachments" and detail["lot"] == rows["1001"]["lot"]
    assert isinstance(detail["recordings"], list)
    exm = staff_token(client, "exm", "pw-exm")
    assert client.get("/api/v1/staff/rooms/R01", headers=bearer(exm)).status_code == 404
    assert (
        client.get(f"/api/v1/staff/attempts/{attempt_1001}", headers=bearer(exm)).status_code == 403
    )

    # A candidate token is no staff token and vice versa.
    assert client.get("/api/v1/staff/rooms/R01", headers=bearer(token)).status_code == 401


def test_events_are_hash_chained_and_tampering_shows(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    clock.set(T - timedelta(minutes=20))
    token = login(client, exam_id, "1001").json()["token"]
    client.post("/api/v1/candidate/lot", headers=bearer(token))
    r = client.post(
        "/api/v1/candidate/events",
        headers=bearer(token),
        json={"kind": "focus_lost", "data": {"duration_ms": 1200}},
    )
    assert r.status_code == 201
    r = client.post("/api/v1/candidate/events", headers=bearer(token), json={"kind": "lot_drawn"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_event_kind"
    r = client.post(
        "/api/v1/candidate/events",
        headers=bearer(token),
        json={"kind": "focus_lost", "data": {"x": "y" * 5000}},
    )
    assert r.status_code == 413

    rev = staff_token(client, "rev", "pw-rev")
    attempt_id = client.get("/api/v1/candidate/state", headers=bearer(token)).json()["attempt_id"]
    listed = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(rev)).json()[
        "events"
    ]
    assert [e["kind"] for e in listed] == ["login", "lot_drawn", "focus_lost"]
    assert [e["seq"] for e in listed] == [1, 2, 3]
    assert listed[2]["severity"] == "violation" and listed[0]["severity"] == "info"
    assert listed[2]["data"] == {"duration_ms": 1200}
    assert events.verify_chain(attempt_id, listed) == []
    after = client.get(f"/api/v1/staff/attempts/{attempt_id}/events?after=2", headers=bearer(rev))
    assert [e["seq"] for e in after.json()["events"]] == [3]

    # Someone edits the stored log: the chain no longer verifies from that event on.
    with transaction(app_ctx.db) as session:
        session.execute(
            update(Event)
            .where(Event.attempt_id == attempt_id, Event.seq == 2)
            .values(data={"number": 99})
        )
    tampered = client.get(
        f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(rev)
    ).json()["events"]
    problems = events.verify_chain(attempt_id, tampered)
    assert [p.seq for p in problems] == [2]
    # Dropping an event breaks the sequence too.
    assert events.verify_chain(attempt_id, [listed[0], listed[2]])


def test_a_late_report_is_dated_when_it_happened(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    """The desk's queue sends an event late (offline, before login) with how late it is, timed on
    the desk's own clock: the log dates it back by that much and keeps the arrival beside it.
    A delay past an exam day, or none, leaves the arrival time."""
    clock.set(T - timedelta(minutes=20))
    token = login(client, exam_id, "1001").json()["token"]
    arrived = T - timedelta(minutes=19)
    clock.set(arrived)
    for delayed in (30, 2.5, 10**9, -5, True):
        data = {"duration_ms": 1000, "delayed_s": delayed, "queued_offline": True}
        r = client.post(
            "/api/v1/candidate/events",
            headers=bearer(token),
            json={"kind": "offline", "data": data},
        )
        assert r.status_code == 201, r.text
    rev = staff_token(client, "rev", "pw-rev")
    attempt_id = client.get("/api/v1/candidate/state", headers=bearer(token)).json()["attempt_id"]
    listed = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(rev)).json()[
        "events"
    ]
    late = [e for e in listed if e["kind"] == "offline"]
    assert [e["at"] for e in late] == [
        iso(arrived - timedelta(seconds=30)),
        iso(arrived - timedelta(seconds=2.5)),
        iso(arrived),
        iso(arrived),
        iso(arrived),
    ]
    assert [e["data"].get("received_at") for e in late] == [iso(arrived)] * 2 + [None] * 3
    assert late[0]["data"]["delayed_s"] == 30  # what the desk said stays as it said it
    assert events.verify_chain(attempt_id, listed) == []


def test_concurrent_events_keep_one_chain(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    clock.set(T - timedelta(minutes=20))
    token = login(client, exam_id, "1001").json()["token"]

    def send(i: int) -> int:
        r = client.post(
            "/api/v1/candidate/events",
            headers=bearer(token),
            json={"kind": "focus_lost", "data": {"i": i}},
        )
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(40))) == {201}
    with transaction(app_ctx.db) as session:
        attempt_id = session.query(Event.attempt_id).first()[0]  # type: ignore[index]
        stored = events.list_events(session, attempt_id)
        assert [e.seq for e in stored] == list(range(1, 42))
        assert events.verify_chain(attempt_id, [events.event_as_dict(e) for e in stored]) == []


def test_attachments_only_for_that_exams_candidates(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext, tmp_path: Path
) -> None:
    other_exam = import_exam(app_ctx, tmp_path / "other", exam_doc())
    clock.set(T - timedelta(minutes=20))
    mine = login(client, exam_id, "1001").json()["token"]
    theirs = login(client, other_exam, "1002", photo="biden.jpg").json()["token"]
    attachment = client.get("/api/v1/candidate/state", headers=bearer(mine)).json()["attachments"][
        0
    ]

    assert client.get(attachment["url"]).status_code == 401
    r = client.get(attachment["url"], headers=bearer(mine))
    assert r.status_code == 200 and "独立作答" in r.text
    assert r.headers["cache-control"] == "private, no-store"
    r = client.get(attachment["url"], headers=bearer(theirs))
    assert r.status_code == 404
    r = client.post(f"{attachment['url']}/read", headers=bearer(theirs))
    assert r.status_code == 404
    r = client.post("/api/v1/candidate/attachments/not-an-id/read", headers=bearer(mine))
    assert r.status_code == 404
    # The other exam's candidate still has their own attachment unread.
    state = client.get("/api/v1/candidate/state", headers=bearer(theirs)).json()
    assert [a["read"] for a in state["attachments"]] == [False]
