"""The exam day's windows, decided by the server clock, each tested one second either side."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from conftest import T, bearer, login, staff_token
from fastapi.testclient import TestClient

from invigil.core.clock import FrozenClock

S = timedelta(seconds=1)


def _ready(client: TestClient, exam_id: str, token: str) -> None:
    """Read every attachment, as entering requires."""
    state = client.get("/api/v1/candidate/state", headers=bearer(token)).json()
    for a in state["attachments"]:
        r = client.post(f"/api/v1/candidate/attachments/{a['id']}/read", headers=bearer(token))
        assert r.status_code == 200


def test_time_endpoint_reports_server_clock(client: TestClient, clock: FrozenClock) -> None:
    r = client.get("/api/v1/time")
    assert r.json() == {"now": "2030-06-01T00:00:00Z"}
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_login_opens_exactly_30_minutes_before(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=30) - S)
    r = login(client, exam_id, "1001")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "login_not_open"
    assert r.json()["error"]["opens_at"] == "2030-06-01T00:30:00Z"
    clock.set(T - timedelta(minutes=30))
    r = login(client, exam_id, "1001")
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "lot"
    assert r.json()["token"]


def test_entry_window_edges(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=30))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)

    clock.set(T - timedelta(minutes=10) - S)
    r = client.post("/api/v1/candidate/enter", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "entry_not_open"
    clock.set(T - timedelta(minutes=10))
    r = client.post("/api/v1/candidate/enter", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "waiting"


def test_entry_closes_three_minutes_after_start(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=30))
    late = login(client, exam_id, "1001").json()["token"]
    later = login(client, exam_id, "1002", photo="biden.jpg").json()["token"]
    _ready(client, exam_id, late)
    _ready(client, exam_id, later)

    clock.set(T + timedelta(minutes=3) - S)
    assert client.post("/api/v1/candidate/enter", headers=bearer(late)).status_code == 200
    clock.set(T + timedelta(minutes=3))
    r = client.post("/api/v1/candidate/enter", headers=bearer(later))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "entry_closed"
    state = client.get("/api/v1/candidate/state", headers=bearer(later)).json()
    assert state["stage"] == "absent"


def test_entering_requires_every_attachment_read(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    r = client.post("/api/v1/candidate/enter", headers=bearer(token))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "attachments_unread"
    state = client.get("/api/v1/candidate/state", headers=bearer(token)).json()
    assert state["stage"] == "attachments"
    assert [a["read"] for a in state["attachments"]] == [False]
    _ready(client, exam_id, token)
    state = client.get("/api/v1/candidate/state", headers=bearer(token)).json()
    assert [a["read"] for a in state["attachments"]] == [True]
    assert client.post("/api/v1/candidate/enter", headers=bearer(token)).status_code == 200


def test_questions_released_at_start_and_not_a_second_before(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)
    client.post("/api/v1/candidate/enter", headers=bearer(token))

    clock.set(T - S)
    r = client.get("/api/v1/candidate/questions", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_started"
    assert "QUESTION" not in r.text and "岗位" not in r.text
    state = client.get("/api/v1/candidate/state", headers=bearer(token))
    assert "QUESTION" not in state.text
    assert state.json()["stage"] == "waiting"

    clock.set(T)
    r = client.get("/api/v1/candidate/questions", headers=bearer(token))
    assert r.status_code == 200
    body = r.json()
    assert [q["text"][:12] for q in body["questions"]] == ["QUESTION-ONE", "QUESTION-TWO"]
    assert body["deadline"] == "2030-06-01T01:20:00Z"
    assert (
        client.get("/api/v1/candidate/state", headers=bearer(token)).json()["stage"] == "answering"
    )

    # The log says when the questions first reached the desk (server time), once: a refused
    # fetch before T says nothing, a second fetch adds nothing.
    clock.set(T + timedelta(seconds=40))
    assert client.get("/api/v1/candidate/questions", headers=bearer(token)).status_code == 200
    rev = staff_token(client, "rev", "pw-rev")
    attempt = client.get("/api/v1/candidate/state", headers=bearer(token)).json()["attempt_id"]
    log = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=bearer(rev)).json()
    delivered = [e for e in log["events"] if e["kind"] == "questions_delivered"]
    assert [e["at"] for e in delivered] == ["2030-06-01T01:00:00Z"], delivered


def test_questions_need_entry(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=5))
    token = login(client, exam_id, "1001").json()["token"]
    clock.set(T + timedelta(minutes=1))
    r = client.get("/api/v1/candidate/questions", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_entered"
    assert "QUESTION" not in r.text


def test_deadline_ends_answering_and_resume_keeps_deadline(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)
    client.post("/api/v1/candidate/enter", headers=bearer(token))

    # A crash mid-answer: the old session goes silent, the candidate logs in again later.
    clock.set(T + timedelta(minutes=12))
    r = login(client, exam_id, "1001", photo="obama3.jpg")
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "answering"
    token2 = r.json()["token"]
    q = client.get("/api/v1/candidate/questions", headers=bearer(token2)).json()
    assert q["deadline"] == "2030-06-01T01:20:00Z"

    clock.set(T + timedelta(minutes=20) - S)
    assert (
        client.get("/api/v1/candidate/state", headers=bearer(token2)).json()["stage"] == "answering"
    )
    clock.set(T + timedelta(minutes=20))
    assert (
        client.get("/api/v1/candidate/state", headers=bearer(token2)).json()["stage"] == "finished"
    )


def test_finishing_before_the_start_is_logged_as_giving_up(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)
    client.post("/api/v1/candidate/enter", headers=bearer(token))
    clock.set(T - timedelta(minutes=2))
    assert client.post("/api/v1/candidate/finish", headers=bearer(token)).status_code == 200
    token2 = login(client, exam_id, "1002", "biden.jpg").json()["token"]
    _ready(client, exam_id, token2)
    client.post("/api/v1/candidate/enter", headers=bearer(token2))
    clock.set(T + timedelta(minutes=1))
    assert client.post("/api/v1/candidate/finish", headers=bearer(token2)).status_code == 200
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    finished = {}
    for tok in (token, token2):
        attempt = client.get("/api/v1/candidate/state", headers=bearer(tok)).json()["attempt_id"]
        log = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=p1).json()["events"]
        finished[tok] = next(e["data"] for e in log if e["kind"] == "finished")
    assert finished[token] == {"reason": "candidate", "early": True, "before_start": True}
    assert finished[token2] == {"reason": "candidate", "early": True}


def test_finishing_is_final(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)
    client.post("/api/v1/candidate/enter", headers=bearer(token))
    clock.set(T + timedelta(minutes=5))
    assert client.post("/api/v1/candidate/finish", headers=bearer(token)).status_code == 200
    assert client.post("/api/v1/candidate/finish", headers=bearer(token)).status_code == 200
    r = client.post("/api/v1/candidate/enter", headers=bearer(token))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_finished"
    clock.set(T + timedelta(minutes=6))
    r = login(client, exam_id, "1001")
    assert r.json()["stage"] == "finished"


def test_login_closes_after_the_exam(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    # Never entered: no login once the deadline has passed.
    clock.set(T + timedelta(minutes=20) - S)
    assert login(client, exam_id, "1002", photo="biden.jpg").json()["stage"] == "absent"
    clock.set(T + timedelta(minutes=20))
    r = login(client, exam_id, "1001")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "exam_over"


def test_entered_candidate_may_log_in_until_upload_grace_ends(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)
    client.post("/api/v1/candidate/enter", headers=bearer(token))
    clock.set(T + timedelta(minutes=50) - S)  # deadline + 30 min grace - 1 s
    assert login(client, exam_id, "1001").json()["stage"] == "finished"
    clock.set(T + timedelta(minutes=50))
    assert login(client, exam_id, "1001").json()["error"]["code"] == "exam_over"


def test_unknown_exam_and_ticket(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=20))
    r = login(client, "nope", "1001")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_exam"
    r = login(client, exam_id, "9999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_candidate"


def test_client_clock_never_decides(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    """A client claiming a later time in headers or body changes nothing."""
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)
    client.post("/api/v1/candidate/enter", headers=bearer(token))
    headers = {**bearer(token), "Date": "Sat, 01 Jun 2030 02:00:00 GMT"}
    r = client.get("/api/v1/candidate/questions?now=2030-06-01T02:00:00Z", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_started"


def test_no_question_text_anywhere_before_start(
    client: TestClient, clock: FrozenClock, exam_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before T, nothing a candidate or a log can see holds question text."""
    caplog.set_level(logging.DEBUG)
    clock.set(T - timedelta(minutes=10))
    token = login(client, exam_id, "1001").json()["token"]
    _ready(client, exam_id, token)
    seen = [
        client.post("/api/v1/candidate/enter", headers=bearer(token)).text,
        client.get("/api/v1/candidate/state", headers=bearer(token)).text,
        client.get("/api/v1/candidate/questions", headers=bearer(token)).text,
        client.post("/api/v1/candidate/heartbeat", headers=bearer(token)).text,
        client.get("/openapi.json").text,
    ]
    attachment = client.get("/api/v1/candidate/state", headers=bearer(token)).json()["attachments"][
        0
    ]
    seen.append(client.get(attachment["url"], headers=bearer(token)).text)
    for text in [*seen, caplog.text]:
        assert "QUESTION-" not in text and "对本岗位的认识" not in text
