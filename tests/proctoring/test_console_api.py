"""The proctor console's HTTP and WebSocket API: room isolation, replay on reconnect, warnings,
notes and alert acknowledgements."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import T, bearer, exam_doc, import_exam, login, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.exams.models import Room
from invigil.proctoring import ws as ws_module
from invigil.staff.models import StaffUser


@pytest.fixture(autouse=True)
def _quiet_status(monkeypatch: pytest.MonkeyPatch) -> None:
    # The frozen clock makes the status stable; re-check it often so tests see changes quickly.
    monkeypatch.setattr(ws_module, "STATUS_EVERY_S", 0.2)


def candidate(client: TestClient, exam_id: str, ticket: str, photo: str) -> tuple[str, str]:
    r = login(client, exam_id, ticket, photo)
    assert r.status_code == 200, r.text
    return r.json()["token"], r.json()["attempt_id"]


def room_id_of(client: TestClient, token: str, code: str) -> str:
    return str(
        client.get(f"/api/v1/staff/rooms/{code}", headers=bearer(token)).json()["room"]["room_id"]
    )


def post_event(client: TestClient, token: str, kind: str) -> int:
    r = client.post("/api/v1/candidate/events", headers=bearer(token), json={"kind": kind})
    assert r.status_code == 201, r.text
    return int(r.json()["seq"])


def next_message(ws: WebSocketTestSession, *types: str) -> dict[str, Any]:
    for _ in range(500):
        msg: dict[str, Any] = ws.receive_json()
        if msg["type"] in types:
            return msg
    raise AssertionError(f"no {types} message")


def subscribe(
    ws: WebSocketTestSession, rooms: list[str], since: dict[str, int] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Subscribe; the room status and the replayed events up to replay_done."""
    ws.send_json({"type": "subscribe", "rooms": rooms, "since": since or {}})
    status = next_message(ws, "room")
    replayed: list[dict[str, Any]] = []
    while True:
        msg = next_message(ws, "event", "replay_done")
        if msg["type"] == "replay_done":
            return status, replayed
        replayed.append(msg)


def test_a_proctor_of_room_a_gets_nothing_of_room_b(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    obama, obama_attempt = candidate(client, exam_id, "1001", "obama2.jpg")  # R01
    hanks, hanks_attempt = candidate(client, exam_id, "2001", "tom_hanks.jpg")  # R02
    p1 = staff_token(client, "p1", "pw-p1")
    p2 = staff_token(client, "p2", "pw-p2")
    r01 = room_id_of(client, p1, "R01")
    r02 = room_id_of(client, p2, "R02")

    # HTTP: every proctoring endpoint refuses another room's candidate.
    for method, path, body in [
        ("get", f"/api/v1/staff/rooms/{r01}/live", None),
        ("get", "/api/v1/staff/alerts?room=" + r01, None),
        ("post", f"/api/v1/staff/attempts/{obama_attempt}/warnings", {"text": "x"}),
        ("get", f"/api/v1/staff/attempts/{obama_attempt}/warnings", None),
        ("post", f"/api/v1/staff/attempts/{obama_attempt}/notes", {"text": "x"}),
        ("get", f"/api/v1/staff/attempts/{obama_attempt}/notes", None),
        ("post", "/api/v1/staff/alerts/ack", {"attempt_id": obama_attempt, "seq": 1}),
    ]:
        r = client.request(method, path, headers=bearer(p2), json=body)
        assert r.status_code in (403, 404), (path, r.status_code, r.text)
    rooms = client.get("/api/v1/staff/rooms", headers=bearer(p2)).json()["rooms"]
    assert [r["id"] for r in rooms] == ["R02"]

    # WebSocket: subscribing to room A is refused outright...
    with client.websocket_connect(f"/api/v1/staff/ws?token={p2}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and [r["id"] for r in hello["rooms"]] == ["R02"]
        ws.send_json({"type": "subscribe", "rooms": [r01], "since": {}})
        assert next_message(ws, "error")["code"] == 4403
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4403

    # ...and room B's stream carries nothing of room A: the replay holds only R02's attempts,
    # and after R01's focus_lost the next event is R02's own.
    with client.websocket_connect(f"/api/v1/staff/ws?token={p2}") as ws:
        ws.receive_json()
        status, replayed = subscribe(ws, [r02])
        assert {c["attempt_id"] for c in status["candidates"]} == {hanks_attempt}
        assert "奥巴马" not in str(status)
        assert replayed and {m["attempt_id"] for m in replayed} == {hanks_attempt}
        post_event(client, obama, "focus_lost")
        post_event(client, hanks, "fullscreen_exit")
        msg = next_message(ws, "event")
        assert msg["attempt_id"] == hanks_attempt and msg["event"]["kind"] == "fullscreen_exit"

    # Without a valid token there is no connection at all.
    with client.websocket_connect("/api/v1/staff/ws?token=nonsense") as ws:
        assert ws.receive_json()["code"] == 4401
    exm = staff_token(client, "exm", "pw-exm")  # examiners see no rosters
    with client.websocket_connect(f"/api/v1/staff/ws?token={exm}") as ws:
        assert ws.receive_json()["rooms"] == []
        ws.send_json({"type": "subscribe", "rooms": [r01]})
        assert next_message(ws, "error")["code"] == 4403


def test_reconnect_replays_what_was_missed_then_streams_live(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    obama, attempt = candidate(client, exam_id, "1001", "obama2.jpg")
    p1 = staff_token(client, "p1", "pw-p1")
    r01 = room_id_of(client, p1, "R01")

    # The token may come as the first frame instead of the query string.
    with client.websocket_connect("/api/v1/staff/ws") as ws:
        ws.send_json({"token": p1})
        assert ws.receive_json()["type"] == "hello"
        status, replayed = subscribe(ws, [r01])
        assert [c["name"] for c in status["candidates"]] == ["奥巴马", "拜登"]
        kinds = [m["event"]["kind"] for m in replayed if m["attempt_id"] == attempt]
        assert kinds == ["login"] and all(m["replay"] for m in replayed)
        seq = post_event(client, obama, "focus_lost")
        live = next_message(ws, "event")
        assert live["event"]["seq"] == seq and "replay" not in live
        cursor = {attempt: seq}

    # While the console is away: three more events.
    missed = [post_event(client, obama, k) for k in ("focus_back", "offline", "online")]
    client.post("/api/v1/candidate/help", headers=bearer(obama), json={"text": "网断了一下"})

    with client.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        ws.receive_json()
        _, replayed = subscribe(ws, [r01], since=cursor)
        got = [(m["event"]["seq"], m["event"]["kind"]) for m in replayed]
        assert got == [
            (missed[0], "focus_back"),
            (missed[1], "offline"),
            (missed[2], "online"),
            (missed[2] + 1, "help_message"),
        ]
        # Then live again, without duplicates.
        seq = post_event(client, obama, "second_screen")
        msg = next_message(ws, "event")
        assert msg["event"]["seq"] == seq and msg["event"]["severity"] == "violation"
        ws.send_json({"type": "ping"})
        assert next_message(ws, "pong", "event")["type"] == "pong"


def test_status_follows_the_room(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    clock.set(T - timedelta(minutes=5))
    obama, attempt = candidate(client, exam_id, "1001", "obama2.jpg")
    p1 = staff_token(client, "p1", "pw-p1")
    live = client.get("/api/v1/staff/rooms/R01/live", headers=bearer(p1)).json()
    by_ticket = {c["ticket"]: c for c in live["candidates"]}
    assert by_ticket["1001"]["online"] and by_ticket["1001"]["face_verified"]
    assert by_ticket["1001"]["last_seen_at"] == "2030-06-01T00:55:00Z"
    assert by_ticket["1001"]["late"]  # entry is open and they have not entered
    assert by_ticket["1002"]["late"] and not by_ticket["1002"]["online"]
    assert by_ticket["1001"]["evidence"]["status"] == "not_bound"
    assert by_ticket["1001"]["snapshots"] == {}

    r01 = live["room"]["room_id"]
    with client.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        ws.receive_json()
        subscribe(ws, [r01])
        jpeg = b"\xff\xd8\xff\xe0" + b"0" * 200 + b"\xff\xd9"
        r = client.post(
            "/api/v1/snapshots",
            headers=bearer(obama),
            data={"kind": "webcam"},
            files={"image": ("s.jpg", jpeg, "image/jpeg")},
        )
        assert r.status_code == 201, r.text
        # The next room status carries the new snapshot.
        for _ in range(50):
            status = next_message(ws, "room")
            tile = next(c for c in status["candidates"] if c["attempt_id"] == attempt)
            if tile["snapshots"]:
                break
        assert tile["snapshots"]["webcam"]["id"] == r.json()["snapshot_id"]
        assert client.get(tile["snapshots"]["webcam"]["url"], headers=bearer(p1)).content == jpeg
        clock.advance(timedelta(minutes=10))  # entry closed: 1002 never came
        status = next_message(ws, "room")
        absent = next(c for c in status["candidates"] if c["ticket"] == "1002")
        assert absent["absent"] and absent["stage"] == "absent" and not absent["late"]


def test_warnings_notes_and_acknowledgements(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    obama, attempt = candidate(client, exam_id, "1001", "obama2.jpg")
    p1 = staff_token(client, "p1", "pw-p1")
    rev = staff_token(client, "rev", "pw-rev")

    # Warnings: logged and shown on the candidate's desk.
    r = client.post(
        f"/api/v1/staff/attempts/{attempt}/warnings",
        headers=bearer(p1),
        json={"text": "请保持正脸对准摄像头"},
    )
    assert r.status_code == 201, r.text
    state = client.get("/api/v1/candidate/state", headers=bearer(obama)).json()
    assert state["warnings"] == [
        {"seq": r.json()["seq"], "text": "请保持正脸对准摄像头", "at": "2030-06-01T00:40:00Z"}
    ]
    assert (
        client.post(
            f"/api/v1/staff/attempts/{attempt}/warnings", headers=bearer(rev), json={"text": "x"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/staff/attempts/{attempt}/warnings", headers=bearer(p1), json={"text": ""}
        ).status_code
        == 422
    )

    # Notes: with their time and author; reviewers read them, candidates never see them.
    clock.advance(timedelta(seconds=30))
    r = client.post(
        f"/api/v1/staff/attempts/{attempt}/notes",
        headers=bearer(p1),
        json={"text": "考生身后有人走动"},
    )
    assert r.status_code == 201
    notes = client.get(f"/api/v1/staff/attempts/{attempt}/notes", headers=bearer(rev)).json()
    assert notes["notes"] == [
        {
            "seq": r.json()["seq"],
            "at": "2030-06-01T00:40:30Z",
            "author": "p1",
            "text": "考生身后有人走动",
        }
    ]
    assert "考生身后" not in client.get("/api/v1/candidate/state", headers=bearer(obama)).text
    events = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=bearer(rev)).json()
    by_kind = {e["kind"]: e for e in events["events"]}
    assert by_kind["warning"]["severity"] == "warning"
    assert by_kind["proctor_note"]["actor"] == "staff:p1"

    # Alerts: open until this staff member acknowledges; per staff member.
    s1 = post_event(client, obama, "focus_lost")
    s2 = post_event(client, obama, "fullscreen_exit")
    post_event(client, obama, "focus_back")  # not an alert
    open_p1 = client.get("/api/v1/staff/alerts?room=R01", headers=bearer(p1)).json()["alerts"]
    assert [(a["seq"], a["kind"], a["name"], a["ticket"]) for a in open_p1] == [
        (s1, "focus_lost", "奥巴马", "1001"),
        (s2, "fullscreen_exit", "奥巴马", "1001"),
    ]
    r = client.post(
        "/api/v1/staff/alerts/ack", headers=bearer(p1), json={"attempt_id": attempt, "seq": s1}
    )
    assert r.status_code == 200 and r.json()["acked"]
    # Twice is fine.
    assert (
        client.post(
            "/api/v1/staff/alerts/ack", headers=bearer(p1), json={"attempt_id": attempt, "seq": s1}
        ).status_code
        == 200
    )
    r = client.post(
        "/api/v1/staff/alerts/ack",
        headers=bearer(p1),
        json={"attempt_id": attempt, "seq": s2 + 1},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_an_alert"
    assert (
        client.post(
            "/api/v1/staff/alerts/ack", headers=bearer(p1), json={"attempt_id": attempt, "seq": 999}
        ).status_code
        == 404
    )
    assert [
        a["seq"]
        for a in client.get("/api/v1/staff/alerts?room=R01", headers=bearer(p1)).json()["alerts"]
    ] == [s2]
    everything = client.get("/api/v1/staff/alerts?room=R01&all=true", headers=bearer(p1)).json()
    assert [a["acked_at"] is not None for a in everything["alerts"]] == [True, False]
    # The reviewer has acknowledged nothing.
    assert (
        len(client.get("/api/v1/staff/alerts?room=R01", headers=bearer(rev)).json()["alerts"]) == 2
    )

    # The ack reaches the same staff member's other consoles.
    r01 = room_id_of(client, p1, "R01")
    with client.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        ws.receive_json()
        subscribe(ws, [r01])
        client.post(
            "/api/v1/staff/alerts/ack", headers=bearer(p1), json={"attempt_id": attempt, "seq": s2}
        )
        msg = next_message(ws, "ack")
        assert (msg["attempt_id"], msg["seq"]) == (attempt, s2)


def test_a_revoked_staff_token_ends_the_stream(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    from sqlalchemy import update

    from invigil.attempts.models import AuthSession
    from invigil.core.db import transaction

    clock.set(T - timedelta(minutes=20))
    p1 = staff_token(client, "p1", "pw-p1")
    r01 = room_id_of(client, p1, "R01")
    with client.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        ws.receive_json()
        subscribe(ws, [r01])
        with transaction(app_ctx.db) as session:
            session.execute(
                update(AuthSession)
                .where(AuthSession.kind == "staff")
                .values(revoked_at=clock.now())
            )
        assert next_message(ws, "error")["code"] == 4401


def test_a_history_larger_than_the_outbox_replays_in_full(
    client: TestClient, clock: FrozenClock, exam_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "OUTBOX_LIMIT", 10)
    clock.set(T - timedelta(minutes=20))
    obama, _ = candidate(client, exam_id, "1001", "obama2.jpg")
    seqs = [post_event(client, obama, "focus_lost") for _ in range(40)]
    p1 = staff_token(client, "p1", "pw-p1")
    with client.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        ws.receive_json()
        _, replayed = subscribe(ws, [room_id_of(client, p1, "R01")])
        assert [m["event"]["seq"] for m in replayed][-40:] == seqs


def test_help_stays_open_until_a_reply_or_a_logged_dismissal(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=5))
    obama, attempt = candidate(client, exam_id, "1001", "obama2.jpg")
    p1 = staff_token(client, "p1", "pw-p1")
    p2 = staff_token(client, "p2", "pw-p2")  # another room's proctor
    rev = staff_token(client, "rev", "pw-rev")  # reviewers watch but do not act

    def open_help() -> Any:
        live = client.get("/api/v1/staff/rooms/R01/live", headers=bearer(p1)).json()
        return next(c for c in live["candidates"] if c["attempt_id"] == attempt)["help_open"]

    asked = client.post("/api/v1/candidate/help", headers=bearer(obama), json={"text": "黑屏了"})
    assert open_help() == {"seq": asked.json()["seq"], "text": "黑屏了", "at": asked.json()["at"]}
    client.post(f"/api/v1/staff/attempts/{attempt}/help", headers=bearer(p1), json={"text": "好"})
    assert open_help() is None

    again = client.post("/api/v1/candidate/help", headers=bearer(obama), json={"text": "又黑了"})
    seq = again.json()["seq"]
    path = f"/api/v1/staff/attempts/{attempt}/help/dismiss"
    assert client.post(path, headers=bearer(p2), json={"seq": seq}).status_code == 403
    assert client.post(path, headers=bearer(rev), json={"seq": seq}).status_code == 403
    r = client.post(path, headers=bearer(p1), json={"seq": seq - 1})  # the staff reply
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_a_help_request"
    assert client.post(path, headers=bearer(p1), json={"seq": 2**40}).status_code == 422
    assert open_help()["text"] == "又黑了"
    r = client.post(path, headers=bearer(p1), json={"seq": seq})
    assert r.status_code == 200 and r.json()["dismissed"] == seq
    assert open_help() is None
    events = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=bearer(p1)).json()
    last = events["events"][-1]
    assert (last["kind"], last["actor"], last["data"]) == (
        "help_dismissed",
        "staff:p1",
        {"seq": seq, "by": "p1"},
    )
    # A new message opens it again.
    client.post("/api/v1/candidate/help", headers=bearer(obama), json={"text": "第三次"})
    assert open_help()["text"] == "第三次"


def test_help_from_other_rooms_comes_from_the_newest_exams_rooms(
    app_ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console listens for help in at most MAX_HELP_ROOMS other rooms of the proctor's:
    those of the exams nearest in time (a proctor of many exams still hears today's other
    room, not next month's)."""
    old = exam_doc()  # here: next month's exam
    old["exam"]["starts_at"] = "2030-07-01T09:00:00+08:00"
    old["staff"][0]["rooms"] = ["R01", "R02"]
    old_exam = import_exam(app_ctx, tmp_path / "old", old)
    new = exam_doc()  # today's (the clock is an hour before it)
    new["staff"][0]["rooms"] = ["R01", "R02"]
    new_exam = import_exam(app_ctx, tmp_path / "new", new)
    with transaction(app_ctx.db) as session:
        rooms = {
            (r.exam_id, r.code): r.id
            for r in session.scalars(select(Room).where(Room.exam_id.in_([old_exam, new_exam])))
        }
        p1 = session.scalars(select(StaffUser).where(StaffUser.username == "p1")).one()
        who = ws_module.Who(p1.id, p1.username, list(p1.roles))
    watched = rooms[(new_exam, "R01")]
    ids, others = ws_module.check_rooms(app_ctx, who, [watched])
    assert ids == [watched]
    assert others == [rooms[(new_exam, "R02")], rooms[(old_exam, "R01")], rooms[(old_exam, "R02")]]
    monkeypatch.setattr(ws_module, "MAX_HELP_ROOMS", 1)
    assert ws_module.check_rooms(app_ctx, who, [watched])[1] == [rooms[(new_exam, "R02")]]
