"""个别安排: extra time, a room move, a late entry and re-sit proposals, each audited and in the
candidate's log; extra time moves the candidate's deadline everywhere it is used."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import T, bearer, face, login, staff_token, write_exam
from fastapi.testclient import TestClient
from sqlalchemy import select

from invigil.attempts import events
from invigil.core.clock import FrozenClock, iso
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.exams.examfile import ExamFileError, parse_exam_file
from invigil.review.models import AuditEntry

from .office import PHOTOS, admin_headers, office_doc, office_exam, ready_and_enter

S = timedelta(seconds=1)


@pytest.fixture
def exam(app_ctx: AppContext, tmp_path: Path) -> str:
    return office_exam(app_ctx, tmp_path / "exam")


def kinds(client: TestClient, attempt_id: str, headers: dict[str, str]) -> list[str]:
    r = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=headers)
    return [e["kind"] for e in r.json()["events"]]


def snapshot(client: TestClient, token: str) -> Any:
    return client.post(
        "/api/v1/snapshots",
        data={"kind": "webcam"},
        files={"image": ("s.jpg", face("obama2.jpg"), "image/jpeg")},
        headers=bearer(token),
    )


def audited(ctx: AppContext) -> list[tuple[str, str | None]]:
    with transaction(ctx.db) as session:
        return [(e.action, e.attempt_id) for e in session.scalars(select(AuditEntry))]


def test_extra_time_moves_the_deadline_everywhere(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, exam: str
) -> None:
    adm = admin_headers(client)
    clock.set(T - timedelta(minutes=5))
    token, attempt = ready_and_enter(client, exam, "1001")
    found = client.get(f"/api/v1/admin/exams/{exam}/candidates?q=100", headers=adm).json()
    assert [c["ticket"] for c in found["candidates"]] == ["1001", "1002"]
    assert (
        client.get(f"/api/v1/admin/exams/{exam}/candidates?q=奥巴", headers=adm).json()[
            "candidates"
        ][0]["attempt_id"]
        == attempt
    )
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    url = f"/api/v1/admin/exams/{exam}/attempts/{attempt}/extra-time"
    assert client.post(url, json={"minutes": 10}, headers=p1).status_code == 403

    clock.set(T + timedelta(minutes=5))
    r = client.post(url, json={"minutes": 10, "reason": "设备故障"}, headers=adm)
    assert r.status_code == 200, r.text
    moved = T + timedelta(minutes=30)  # 20 minutes + 10
    assert r.json()["deadline"] == iso(moved) and r.json()["extra_time_s"] == 600

    # The candidate's side: questions, state, heartbeat.
    me = bearer(token)
    assert client.get("/api/v1/candidate/questions", headers=me).json()["deadline"] == iso(moved)
    state = client.get("/api/v1/candidate/state", headers=me).json()
    assert state["schedule"]["deadline"] == iso(moved)
    assert state["schedule"]["uploads_close_at"] == iso(moved + timedelta(minutes=30))
    assert client.post("/api/v1/candidate/heartbeat", headers=me).json()["deadline"] == iso(moved)
    # The proctor console's tile and the staff view of the attempt.
    live = client.get("/api/v1/staff/rooms/R01/live", headers=p1).json()
    tile = next(c for c in live["candidates"] if c["attempt_id"] == attempt)
    assert tile["deadline"] == iso(moved) and tile["extra_time_s"] == 600
    assert client.get(f"/api/v1/staff/attempts/{attempt}", headers=p1).json()["deadline"] == iso(
        moved
    )
    # Past the exam's deadline the candidate still answers; at their own deadline it ends.
    clock.set(T + timedelta(minutes=20) + S)
    assert client.post("/api/v1/candidate/heartbeat", headers=me).json()["stage"] == "answering"
    r = client.post("/api/v1/recordings", json={"kind": "webcam", "mime": "video/webm"}, headers=me)
    assert r.status_code in (200, 201), r.text
    clock.set(moved - S)
    assert client.post("/api/v1/candidate/heartbeat", headers=me).json()["stage"] == "answering"
    clock.set(moved)
    assert client.post("/api/v1/candidate/heartbeat", headers=me).json()["stage"] == "finished"
    # Uploads stay open for the grace after the candidate's own deadline, snapshots included
    # (past the exam's own close), and close with it.
    clock.set(moved + timedelta(minutes=29))
    assert client.get("/api/v1/candidate/uploads", headers=me).status_code == 200
    assert snapshot(client, token).status_code == 201
    clock.set(moved + timedelta(minutes=30))
    r = snapshot(client, token)
    assert r.status_code == 403 and r.json()["error"]["code"] == "uploads_closed"
    clock.set(moved + timedelta(minutes=29))
    r = client.post(url, json={"minutes": 20}, headers=adm)
    assert r.status_code == 409  # over: no more extra time

    assert "extra_time" in kinds(client, attempt, p1)
    assert ("extra_time", attempt) in audited(app_ctx)


def test_finishing_early_with_extra_time(client: TestClient, clock: FrozenClock, exam: str) -> None:
    adm = admin_headers(client)
    clock.set(T - timedelta(minutes=5))
    token, attempt = ready_and_enter(client, exam, "1001")
    url = f"/api/v1/admin/exams/{exam}/attempts/{attempt}/extra-time"
    assert client.post(url, json={"minutes": 5}, headers=adm).status_code == 200
    clock.set(T + timedelta(minutes=22))
    r = client.post("/api/v1/candidate/finish", headers=bearer(token))
    assert r.status_code == 200
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    detail = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=p1).json()["events"]
    assert detail[-1]["kind"] == "finished" and detail[-1]["data"]["early"] is True
    assert client.post(url, json={"minutes": 10}, headers=adm).status_code == 409


def test_move_to_another_room(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, exam: str
) -> None:
    adm = admin_headers(client)
    clock.set(T - timedelta(minutes=20))
    token = login(client, exam, "1001", PHOTOS["1001"]).json()["token"]
    lot = client.post("/api/v1/candidate/lot", headers=bearer(token)).json()["number"]
    attempt = client.get("/api/v1/candidate/state", headers=bearer(token)).json()["attempt_id"]
    rooms = {
        r["code"]: r["room_id"]
        for r in client.get(f"/api/v1/admin/exams/{exam}/rooms", headers=adm).json()["rooms"]
    }
    url = f"/api/v1/admin/exams/{exam}/attempts/{attempt}/move"
    r = client.post(url, json={"room_id": rooms["R01"]}, headers=adm)
    assert r.status_code == 409
    r = client.post(url, json={"room_id": rooms["R02"], "reason": "原考场网络故障"}, headers=adm)
    assert r.status_code == 200, r.text
    assert r.json()["room"]["code"] == "R02" and r.json()["lot"] in (1, 2)
    # R02 had one candidate: the moved one draws among two numbers there.
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    p2 = bearer(staff_token(client, "p2", "pw-p2"))
    r01 = client.get("/api/v1/staff/rooms/R01", headers=p1).json()["candidates"]
    r02 = client.get("/api/v1/staff/rooms/R02", headers=p2).json()["candidates"]
    assert "1001" not in [c["ticket"] for c in r01] and "1001" in [c["ticket"] for c in r02]
    assert client.get(f"/api/v1/staff/attempts/{attempt}", headers=p1).status_code == 403
    state = client.get("/api/v1/candidate/state", headers=bearer(token)).json()
    assert state["candidate"]["room"]["id"] == "R02"
    log = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=p2).json()["events"]
    moved = next(e for e in log if e["kind"] == "room_moved")
    assert moved["data"]["from"] == "R01" and moved["data"]["lot_from"] == lot
    assert ("room_moved", attempt) in audited(app_ctx)
    listing = client.get(f"/api/v1/admin/exams/{exam}/arrangements", headers=adm).json()
    assert listing["moves"][0]["to"] == "R02"


def test_late_entry(client: TestClient, clock: FrozenClock, app_ctx: AppContext, exam: str) -> None:
    adm = admin_headers(client)
    clock.set(T - timedelta(minutes=20))
    r = login(client, exam, "1001", PHOTOS["1001"])
    token = r.json()["token"]
    me = bearer(token)
    state = client.get("/api/v1/candidate/state", headers=me).json()
    attempt = state["attempt_id"]
    for a in state["attachments"]:
        client.post(f"/api/v1/candidate/attachments/{a['id']}/read", headers=me)
    clock.set(T + timedelta(minutes=4))
    r = client.post("/api/v1/candidate/enter", headers=me)
    assert r.status_code == 403 and r.json()["error"]["code"] == "entry_closed"
    assert client.post("/api/v1/candidate/heartbeat", headers=me).json()["stage"] == "absent"

    url = f"/api/v1/admin/exams/{exam}/attempts/{attempt}/late-entry"
    r = client.post(url, json={"minutes": 10, "reason": ""}, headers=adm)
    assert r.status_code == 422 and r.json()["error"]["code"] == "reason_required"
    r = client.post(url, json={"minutes": 10, "reason": "交通管制，监考员核实"}, headers=adm)
    assert r.status_code == 200, r.text
    assert r.json()["late_entry_until"] == iso(T + timedelta(minutes=14))
    assert client.post("/api/v1/candidate/heartbeat", headers=me).json()["stage"] == "enter"
    r = client.post("/api/v1/candidate/enter", headers=me)
    assert r.status_code == 200 and r.json()["stage"] == "answering"
    assert client.post(url, json={"minutes": 10, "reason": "x"}, headers=adm).status_code == 409
    # The others stay absent.
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    rows = {
        c["ticket"]: c
        for c in client.get("/api/v1/staff/rooms/R01", headers=p1).json()["candidates"]
    }
    assert rows["1002"]["stage"] == "absent" and rows["1001"]["stage"] == "answering"
    assert ("late_entry_allowed", attempt) in audited(app_ctx)
    listing = client.get(f"/api/v1/admin/exams/{exam}/arrangements", headers=adm).json()
    assert [c["ticket"] for c in listing["candidates"]] == ["1001"]


def _report(ctx: AppContext, attempt: str, kind: str, at: Any, ms: int, **data: Any) -> None:
    with transaction(ctx.db) as session:
        events.append(session, attempt, kind, at=at, data={"duration_ms": ms, **data})


def test_an_outage_reported_late_is_placed_once_when_it_happened(
    client: TestClient, clock: FrozenClock, exam: str
) -> None:
    """The desk reports a 125 s outage 20 s after it ended (its queue waited): the log dates the
    report back by those 20 s, and the outage is not moved back a second time."""
    adm = admin_headers(client)
    clock.set(T - timedelta(minutes=5))
    token, _ = ready_and_enter(client, exam, "1001")
    clock.set(T + timedelta(minutes=5))
    r = client.post(
        "/api/v1/candidate/events",
        headers=bearer(token),
        json={"kind": "online", "data": {"duration_ms": 125_000, "delayed_s": 20}},
    )
    assert r.status_code == 201, r.text
    clock.set(T + timedelta(minutes=12))
    got = client.get(f"/api/v1/admin/exams/{exam}/resit", headers=adm).json()
    [outage] = {p["ticket"]: p for p in got["proposals"]}["1001"]["outages"]
    ended = T + timedelta(minutes=5) - 20 * S
    assert (outage["start"], outage["end"]) == (iso(ended - 125 * S), iso(ended))


def test_resit_proposals(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, exam: str
) -> None:
    adm = admin_headers(client)
    clock.set(T - timedelta(minutes=5))
    _, long_one = ready_and_enter(client, exam, "1001")
    _, shorts = ready_and_enter(client, exam, "1002")
    _, fine = ready_and_enter(client, exam, "2001")
    # Default rule: one outage of 2 minutes or more, or two of 10 s to 2 minutes.
    _report(app_ctx, long_one, "online", T + timedelta(minutes=5), 125_000)
    _report(app_ctx, shorts, "online", T + timedelta(minutes=3), 30_000)
    _report(app_ctx, shorts, "evidence_gap", T + timedelta(minutes=8), 60_000, reason="offline")
    _report(app_ctx, fine, "online", T + timedelta(minutes=3), 5_000)  # a blip
    _report(app_ctx, fine, "online", T + timedelta(minutes=4), 4_000)
    _report(app_ctx, fine, "online", T - timedelta(minutes=1), 200_000)  # before the start
    # A desk outage and a phone gap at the same time are one outage (90 s: not long).
    _report(app_ctx, fine, "online", T + timedelta(minutes=10), 90_000)
    _report(app_ctx, fine, "evidence_gap", T + timedelta(minutes=10, seconds=10), 80_000)
    clock.set(T + timedelta(minutes=12))

    got = client.get(f"/api/v1/admin/exams/{exam}/resit", headers=adm).json()
    assert got["rule"] == {"min_outage_s": 120, "short_outages": 2, "short_from_s": 10}
    props = {p["ticket"]: p for p in got["proposals"]}
    assert set(props) == {"1001", "1002"}
    assert props["1001"]["why"] == "long_outage" and props["1001"]["status"] == "proposed"
    assert props["1002"]["why"] == "short_outages" and len(props["1002"]["outages"]) == 2

    url = f"/api/v1/admin/exams/{exam}/attempts/{{}}/resit"
    r = client.post(url.format(fine), json={"status": "confirmed"}, headers=adm)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_proposal"
    r = client.post(
        url.format(long_one), json={"status": "confirmed", "note": "同意重考"}, headers=adm
    )
    assert r.status_code == 200
    r = client.post(url.format(shorts), json={"status": "dismissed"}, headers=adm)
    assert r.status_code == 200
    props = {
        p["ticket"]: p
        for p in client.get(f"/api/v1/admin/exams/{exam}/resit", headers=adm).json()["proposals"]
    }
    assert props["1001"]["status"] == "confirmed" and props["1001"]["decided_by"] == "adm"
    assert props["1002"]["status"] == "dismissed"
    actions = audited(app_ctx)
    assert ("resit_confirmed", long_one) in actions and ("resit_dismissed", shorts) in actions
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    assert "resit_confirmed" in kinds(client, long_one, p1)


def test_resit_rule_in_the_exam_file(
    tmp_path: Path, app_ctx: AppContext, client: TestClient, clock: FrozenClock
) -> None:
    doc = office_doc(
        rules={
            "evidence_camera": "off",
            "liveness": "off",
            "resit": {"min_outage": "5m", "short_outages": 3},
        }
    )
    exam = office_exam(app_ctx, tmp_path / "a", **doc["exam"])
    adm = admin_headers(client)
    rule = client.get(f"/api/v1/admin/exams/{exam}/resit", headers=adm).json()["rule"]
    assert rule == {"min_outage_s": 300, "short_outages": 3, "short_from_s": 10}

    doc = office_doc(rules={"resit": "off"})
    path = write_exam(tmp_path / "b", doc)
    assert parse_exam_file(path, clock.now()).resit == {"off": True}
    doc = office_doc(rules={"resit": {"min_outage": "soon", "extra": 1, "short_from": "3m"}})
    path = write_exam(tmp_path / "c", doc)
    with pytest.raises(ExamFileError) as err:
        parse_exam_file(path, clock.now())
    text = str(err.value)
    assert "rules.resit.min_outage" in text and "rules.resit.extra" in text
    assert yaml.safe_dump(doc)  # the document itself stays a plain mapping
