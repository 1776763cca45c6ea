"""Out-of-range numbers are a 422 with a valid JSON body, never a 500 (issue 13 #11)."""

from __future__ import annotations

import json
import math
from datetime import timedelta

from conftest import PG_URL, T, bearer, login, staff_token
from fastapi.testclient import TestClient

from invigil.core.clock import FrozenClock
from invigil.core.errors import json_safe


def _invalid(r: object) -> dict[str, object]:
    assert getattr(r, "status_code", None) == 422, getattr(r, "text", r)
    body = json.loads(r.text)  # type: ignore[attr-defined]  # strict JSON: no NaN
    assert body["error"]["code"] == "invalid_request"
    return dict(body["error"])


def _raw_json(client: TestClient, path: str, text: str, token: str) -> object:
    headers = {**bearer(token), "Content-Type": "application/json"}
    return client.post(path, content=text.encode(), headers=headers)


def test_huge_integers_are_refused(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=20))
    r = login(client, exam_id, "1001")
    attempt = r.json()["attempt_id"]
    p1 = staff_token(client, "p1", "pw-p1")
    rev = staff_token(client, "rev", "pw-rev")
    events = f"/api/v1/staff/attempts/{attempt}/events"
    for after in ("1e20", "100000000000000000000", "2147483648", "-1"):
        error = _invalid(client.get(f"{events}?after={after}", headers=bearer(p1)))
        assert error["problems"][0]["field"] == "query.after"  # type: ignore[index]
    r = client.get(f"{events}?after=2147483647", headers=bearer(p1))
    assert r.status_code == 200 and r.json()["events"] == []

    ack = "/api/v1/staff/alerts/ack"
    for seq in ("1e20", "100000000000000000000", "2147483648"):
        _invalid(_raw_json(client, ack, f'{{"attempt_id": "{attempt}", "seq": {seq}}}', p1))
    rulings = f"/api/v1/review/attempts/{attempt}/rulings"
    body = '{"event_seq": 1e20, "violation": true, "reason": "x"}'
    _invalid(_raw_json(client, rulings, body, rev))


def test_nan_and_infinity_are_refused_without_echo(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    exm = staff_token(client, "exm", "pw-exm")
    for bad in ("NaN", "Infinity", "-Infinity"):
        error = _invalid(
            _raw_json(client, "/api/v1/scoring/sheets/x/scores", f'{{"scores": [1, {bad}]}}', exm)
        )
        assert bad not in json.dumps(error)
    clock.set(T - timedelta(minutes=20))
    token = login(client, exam_id, "1001").json()["token"]
    r = _raw_json(
        client, "/api/v1/candidate/events", '{"kind": "offline", "data": {"x": NaN}}', token
    )
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert json.loads(r.text)["error"]["message"] == "事件数据含有无效的数值。"  # type: ignore[attr-defined]


def test_console_since_beyond_any_event_is_ignored(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    attempt = login(client, exam_id, "1001").json()["attempt_id"]
    p1 = staff_token(client, "p1", "pw-p1")
    room = client.get("/api/v1/staff/rooms/R01", headers=bearer(p1)).json()["room"]["room_id"]
    with client.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        assert ws.receive_json()["type"] == "hello"
        since = {attempt: 10**30}
        ws.send_text(json.dumps({"type": "subscribe", "rooms": [room], "since": since}))
        kinds = []
        for _ in range(50):
            msg = ws.receive_json()
            kinds.append(msg["type"])
            if msg["type"] == "replay_done":
                break
        assert kinds[0] == "room" and kinds[-1] == "replay_done"
        # p1 is staff of no other room: nobody's help requests from elsewhere.
        assert ws.receive_json() == {"type": "help_elsewhere", "requests": []}
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"


def test_error_bodies_with_non_finite_numbers_stay_json() -> None:
    body = json_safe({"error": {"problems": [{"value": math.nan}, {"value": -math.inf}]}})
    assert json.dumps(body, allow_nan=False) == (
        '{"error": {"problems": [{"value": "nan"}, {"value": "-inf"}]}}'
    )


def test_nul_characters_are_refused_not_a_500(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    p1 = staff_token(client, "p1", "pw-p1")
    r = client.get("/api/v1/staff/rooms/R01?exam=%00E", headers=bearer(p1))
    assert r.status_code == 422 and r.json()["error"]["message"] == "请求地址含有无效字符。"
    r = client.get("/api/v1/staff/rooms/R%0001", headers=bearer(p1))
    assert r.status_code == 422
    # In a JSON body that reaches a text column: PostgreSQL refuses NUL (422, not 500),
    # SQLite compares it like any text (no such exam).
    body = {"exam_id": "e\u0000", "ticket": "1001", "name": "奥巴马"}
    r = client.post("/api/v1/results/lookup", json=body)
    assert r.status_code == (422 if PG_URL else 404), r.text
    assert r.json()["error"]["code"] == ("invalid_request" if PG_URL else "not_found")
    assert client.get("/api/v1/health").status_code == 200
