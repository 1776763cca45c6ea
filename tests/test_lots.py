"""Lot drawing: distinct random numbers per room, stable, audited, auto-assigned at close."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from conftest import T, bearer, exam_doc, import_exam, login, serve, staff_token
from fastapi import FastAPI
from fastapi.testclient import TestClient

from invigil.attempts import sessions
from invigil.attempts.models import Attempt
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.jobs import run_due_jobs


def _practice_exam(ctx: AppContext, folder: Path, per_room: int) -> str:
    doc = exam_doc()
    doc["exam"]["practice"] = True
    doc["candidates"] = [
        {"ticket": f"{room}-{i:04d}", "name": f"考生{i}", "room": room}
        for room in ("R01", "R02")
        for i in range(per_room)
    ]
    return import_exam(ctx, folder, doc)


def _tokens(ctx: AppContext, exam_id: str, room: str) -> list[str]:
    """Candidate tokens without face logins (the draw is what is under test here)."""
    now = ctx.clock.now()
    with transaction(ctx.db) as session:
        attempts = session.query(Attempt).filter(Attempt.exam_id == exam_id).all()
        return [
            sessions.issue(session, ctx, "candidate", now, attempt_id=a.id).token
            for a in attempts
            if a.candidate.room.code == room
        ]


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    with serve(app) as url:
        yield url


def test_draw_is_stable_and_audited(client: TestClient, clock: FrozenClock, exam_id: str) -> None:
    clock.set(T - timedelta(minutes=20))
    a = login(client, exam_id, "1001").json()["token"]
    b = login(client, exam_id, "1002", photo="biden.jpg").json()["token"]
    na = client.post("/api/v1/candidate/lot", headers=bearer(a)).json()["number"]
    nb = client.post("/api/v1/candidate/lot", headers=bearer(b)).json()["number"]
    assert {na, nb} == {1, 2}  # room R01 has two candidates
    for _ in range(3):
        assert client.post("/api/v1/candidate/lot", headers=bearer(a)).json() == {"number": na}
    state = client.get("/api/v1/candidate/state", headers=bearer(a)).json()
    assert state["lot"] == na and state["stage"] == "attachments"

    rev = staff_token(client, "rev", "pw-rev")
    attempt = state["attempt_id"]
    events = client.get(f"/api/v1/staff/attempts/{attempt}/events", headers=bearer(rev)).json()
    draws = [e for e in events["events"] if e["kind"] == "lot_drawn"]
    assert (
        len(draws) == 1
        and draws[0]["data"]["number"] == na
        and draws[0]["data"]["by"] == "candidate"
    )


def test_auto_assignment_when_drawing_closes(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    exam_id = _practice_exam(app_ctx, tmp_path / "e", per_room=12)
    clock.set(T - timedelta(minutes=20))
    tokens = _tokens(app_ctx, exam_id, "R01")
    drawn = {
        client.post("/api/v1/candidate/lot", headers=bearer(t)).json()["number"] for t in tokens[:5]
    }

    clock.set(T - timedelta(minutes=10) - timedelta(seconds=1))
    assert run_due_jobs(app_ctx.job_context()) == 0  # not yet due
    # The server was down when drawing closed: the job runs when it is back, minutes later.
    clock.set(T - timedelta(minutes=4))
    assert run_due_jobs(app_ctx.job_context()) == 1
    assert run_due_jobs(app_ctx.job_context()) == 0  # done once

    with transaction(app_ctx.db) as session:
        rows = session.query(Attempt).filter(Attempt.exam_id == exam_id).all()
        by_room: dict[str, list[int]] = {}
        for a in rows:
            assert a.lot_number is not None
            by_room.setdefault(a.room_id, []).append(a.lot_number)
    for numbers in by_room.values():
        assert sorted(numbers) == list(range(1, 13))
    # Those who drew keep their numbers.
    again = {
        client.post("/api/v1/candidate/lot", headers=bearer(t)).json()["number"] for t in tokens[:5]
    }
    assert again == drawn


def test_concurrent_draws_never_repeat(
    live_server: str, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    """200 candidates of one room click 抽签 at the same moment."""
    exam_id = _practice_exam(app_ctx, tmp_path / "e", per_room=200)
    clock.set(T - timedelta(minutes=20))
    tokens = _tokens(app_ctx, exam_id, "R01")
    assert len(tokens) == 200

    async def draw_all() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=live_server, timeout=120, limits=limits) as http:
            responses = await asyncio.gather(
                *(http.post("/api/v1/candidate/lot", headers=bearer(t)) for t in tokens)
            )
        assert all(r.status_code == 200 for r in responses), {r.text for r in responses}
        return [r.json()["number"] for r in responses]

    numbers = asyncio.run(draw_all())
    assert sorted(numbers) == list(range(1, len(tokens) + 1))
