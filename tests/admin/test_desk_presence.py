"""An exam computer that goes quiet mid-exam (a crash, a shut laptop): the server notices,
alerts the room's proctors, notes when it is back, and the re-sit proposals count the time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import T, bearer, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import select

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.jobs import Job, run_due_jobs

from .office import admin_headers, office_exam, ready_and_enter


@pytest.fixture
def exam(app_ctx: AppContext, tmp_path: Path) -> str:
    return office_exam(app_ctx, tmp_path / "exam")


def beat(client: TestClient, token: str) -> None:
    assert client.post("/api/v1/candidate/heartbeat", headers=bearer(token)).status_code == 200


def sweep_at(clock: FrozenClock, ctx: AppContext, at: Any) -> None:
    clock.set(at)
    run_due_jobs(ctx.job_context())


def log(client: TestClient, attempt: str, p1: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=p1)
    return [e for e in r.json()["events"] if e["kind"] in ("desk_silent", "desk_back")]


def test_a_desk_that_goes_quiet_is_an_alert_and_its_absence_counts(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, exam: str
) -> None:
    clock.set(T - timedelta(minutes=5))
    lost, lost_attempt = ready_and_enter(client, exam, "1001")
    steady, steady_attempt = ready_and_enter(client, exam, "1002")
    p1 = bearer(staff_token(client, "p1", "pw-p1"))

    # Both beat every 10 s until T+1 min; then only one does, for three more minutes.
    t = T - timedelta(minutes=5)
    while t < T + timedelta(minutes=4):
        clock.set(t)
        beat(client, steady)
        if t < T + timedelta(minutes=1):
            beat(client, lost)
        run_due_jobs(app_ctx.job_context())
        t += timedelta(seconds=10)
    assert log(client, steady_attempt, p1) == []
    (silent,) = log(client, lost_attempt, p1)
    assert silent["severity"] == "violation"
    last = T + timedelta(seconds=50)
    assert silent["data"]["last_seen_at"] == last.isoformat().replace("+00:00", "Z")
    # Noticed within 30 s of quiet and one sweep's period.
    noticed = silent["at"]
    assert "2030-06-01T01:01:20" <= noticed <= "2030-06-01T01:01:30", noticed
    # On the room's console: an open alert.
    alerts = client.get(f"/api/v1/staff/alerts?room={room_r01(client, p1)}", headers=p1).json()[
        "alerts"
    ]
    assert [a["kind"] for a in alerts if a["attempt_id"] == lost_attempt] == ["desk_silent"]

    # Back (a new login on another computer beats too): the spell is closed, with its length.
    clock.set(T + timedelta(minutes=4))
    beat(client, lost)
    silent, back = log(client, lost_attempt, p1)
    assert back["kind"] == "desk_back" and back["data"]["duration_ms"] == 190_000
    run_due_jobs(app_ctx.job_context())
    assert len(log(client, lost_attempt, p1)) == 2  # in contact again: nothing new

    # 3 min 10 s out of contact: a long outage for the re-sit proposals.
    clock.set(T + timedelta(minutes=30))
    got = client.get(f"/api/v1/admin/exams/{exam}/resit", headers=admin_headers(client)).json()
    (proposal,) = got["proposals"]
    assert proposal["ticket"] == "1001" and proposal["why"] == "long_outage"
    assert proposal["outages"][0]["seconds"] == 190 and proposal["outages"][0]["sources"] == [
        "desk"
    ]


def test_a_desk_that_never_comes_back_counts_until_the_deadline_and_the_sweeps_stop(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, exam: str
) -> None:
    clock.set(T - timedelta(minutes=5))
    token, attempt = ready_and_enter(client, exam, "1001")
    clock.set(T + timedelta(minutes=2))
    beat(client, token)
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    for minute in range(3, 25):  # past the 20-minute deadline
        sweep_at(clock, app_ctx, T + timedelta(minutes=minute))
    assert [e["kind"] for e in log(client, attempt, p1)] == ["desk_silent"]
    with app_ctx.db.session() as session:
        pending = session.scalars(
            select(Job).where(Job.kind == "attempts.desk_presence", Job.state == "pending")
        ).all()
    assert pending == []  # nobody answering any more: no sweep queued
    got = client.get(f"/api/v1/admin/exams/{exam}/resit", headers=admin_headers(client)).json()
    (proposal,) = got["proposals"]
    assert proposal["outages"][0]["seconds"] == 18 * 60  # from T+2 min to the deadline


def room_r01(client: TestClient, p1: dict[str, str]) -> str:
    return str(client.get("/api/v1/staff/rooms/R01", headers=p1).json()["room"]["room_id"])
