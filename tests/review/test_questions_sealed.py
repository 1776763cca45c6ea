"""Before T the question text reaches no staff role: every GET route of the application, as
each role, one second before T and at T; and no attempt is scorable before T, even one whose
candidate entered early and finished before the questions were out."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from invigil.attempts.models import Attempt
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.review.models import AuditEntry

from .conftest import World, build_world, review_doc
from .test_scoring import staff_routes

# Fragments of both questions' text (review_doc); ASCII markers plus the Chinese wording.
QUESTION_TEXT = ["QUESTION-ONE", "QUESTION-TWO", "请谈谈你对本岗位的认识", "第二题"]
ROLES = ["p1", "tech1", "rev", "exm1", "adm"]
S = timedelta(seconds=1)


def leaks(body: str) -> list[str]:
    return [q for q in QUESTION_TEXT if q in body]


def audit_count(world: World) -> int:
    with world.ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def scan_all(world: World, sheet_id: str) -> int:
    """Every GET route as every staff role: no question text anywhere, except an admin's read
    of an exam-editing route under /api/v1/admin/, which must then be in the audit log."""
    checked = 0
    for user in ROLES:
        for path in staff_routes(world, sheet_id):
            before = audit_count(world)
            r = world.get(user, path)
            found = leaks(r.text) + leaks(r.headers.get("content-disposition", ""))
            if found and user == "adm" and path.startswith("/api/v1/admin/"):
                assert audit_count(world) > before, (user, path, "unaudited question read")
            else:
                assert not found, (user, path, r.status_code, r.text[:300])
            checked += 1
    return checked


@pytest.fixture
def early(client: TestClient, app_ctx: AppContext, clock: FrozenClock, tmp_path: Path) -> World:
    """K1001 entered at T−5 min and finished at T−2 min; K1002 entered and is still waiting."""
    doc = review_doc(n_examiners=1)
    doc["staff"].append(
        {"username": "tech1", "password": "pw-tech1", "roles": ["tech"], "rooms": ["R01"]}
    )
    world = build_world(client, app_ctx, clock, tmp_path / "exam", doc)
    with transaction(app_ctx.db) as session:
        a1 = session.get(Attempt, world.attempts["1001"])
        a2 = session.get(Attempt, world.attempts["1002"])
        assert a1 is not None and a2 is not None
        a1.finished_at = T - timedelta(minutes=2)
        a2.finished_at = None
    return world


def test_no_question_text_before_t_for_any_staff_role(
    early: World, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    world = early
    caplog.set_level(logging.DEBUG)
    a1 = world.attempts["1001"]
    sheets_path = f"/api/v1/scoring/exams/{world.exam_id}/sheets"

    clock.set(T - S)
    review = world.get("rev", f"/api/v1/review/attempts/{a1}")
    assert review.status_code == 200
    assert review.json()["questions"] == []
    assert review.json()["schedule"]["questions_released"] is False
    # Finished before T, yet nothing to score: no sheet exists before T.
    assert world.get("exm1", sheets_path).json()["sheets"] == []
    assert scan_all(world, "0" * 32) > 100

    # At T the same routes do carry the text: the scan above would have seen a leak.
    clock.set(T)
    review = world.get("rev", f"/api/v1/review/attempts/{a1}").json()
    assert [q["text"][:12] for q in review["questions"]] == ["QUESTION-ONE", "QUESTION-TWO"]
    listed = world.get("exm1", sheets_path).json()["sheets"]
    # Only the finished attempt; the one still answering is scorable from its end.
    assert [s["lot"] for s in listed] == [1]
    sheet_id = listed[0]["sheet_id"]
    sheet = world.get("exm1", f"/api/v1/scoring/sheets/{sheet_id}")
    assert sheet.status_code == 200 and leaks(sheet.text)
    with pytest.raises(AssertionError):
        scan_all(world, sheet_id)

    # A sheet made at T is sealed again if the clock reads before T (a second server whose
    # clock lags, a test): its view, media and scoring answer as for no sheet.
    clock.set(T - S)
    for path in (
        f"/api/v1/scoring/sheets/{sheet_id}",
        f"/api/v1/scoring/sheets/{sheet_id}/media/0",
    ):
        r = world.get("exm1", path)
        assert r.status_code == 404 and not leaks(r.text), path
    r = world.post("exm1", f"/api/v1/scoring/sheets/{sheet_id}/scores", {"scores": [1, 1]})
    assert r.status_code == 404 and not leaks(r.text)
    assert scan_all(world, sheet_id) > 100

    # The live console's socket, as the room's proctor.
    with world.client.websocket_connect(f"/api/v1/staff/ws?token={world.token('p1')}") as ws:
        hello = ws.receive_json()
        assert not leaks(json.dumps(hello, ensure_ascii=False))
    # No log line of the whole run carries the text.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not leaks(logged)


def test_finishing_before_t_is_scored_only_from_t(early: World, clock: FrozenClock) -> None:
    world = early
    clock.set(T - timedelta(minutes=1))
    sheets_path = f"/api/v1/scoring/exams/{world.exam_id}/sheets"
    assert world.get("exm1", sheets_path).json()["sheets"] == []
    clock.set(T + timedelta(minutes=20))  # the deadline: the waiting candidate is done too
    assert [s["lot"] for s in world.get("exm1", sheets_path).json()["sheets"]] == [1, 2]
