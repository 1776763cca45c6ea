"""Blind scoring: what an examiner can reach, score rules, validation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invigil.attempts import events
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.review.scoring import final_score

from .conftest import World, build_world, review_doc

NAMES = ["奥巴马", "拜登", "汉克斯"]
TICKETS = ["K1001", "K1002", "K2001"]
ROOMS = ["第1考场", "第2考场"]
# exm2's scores: numbers no other response carries, so their absence is meaningful.
OTHER = [9.25, 17.75]


def sheets(world: World, user: str = "exm1") -> list[dict[str, Any]]:
    r = world.get(user, f"/api/v1/scoring/exams/{world.exam_id}/sheets")
    assert r.status_code == 200, r.text
    return list(r.json()["sheets"])


def submit(world: World, user: str, sheet_id: str, scores: list[float]) -> Any:
    return world.post(user, f"/api/v1/scoring/sheets/{sheet_id}/scores", {"scores": scores})


class Scanner:
    """Every body an examiner receives, checked for what blind scoring must never show."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.secret = NAMES + TICKETS + ROOMS + list(world.attempts.values())
        self.other_scores = ["9.25", "17.75", "27.0"]
        self.seen = 0

    def check(self, r: Any, *, others_hidden: bool, path: str) -> None:
        self.seen += 1
        body = r.text if "json" in r.headers.get("content-type", "") else ""
        disposition = r.headers.get("content-disposition", "")
        for s in self.secret:
            assert s not in body and s not in disposition, (path, s, body[:300])
        assert "photo" not in body.lower(), (path, body[:300])
        if others_hidden:
            for s in self.other_scores:
                assert s not in body, (path, s)

    def get(self, path: str, *, others_hidden: bool, **kw: Any) -> Any:
        r = self.world.get("exm1", path, **kw)
        self.check(r, others_hidden=others_hidden, path=path)
        return r


def staff_routes(world: World, sheet_id: str) -> list[str]:
    """Every GET endpoint of the app with its path filled in with real ids."""
    values = {
        "attempt_id": world.attempts["1001"],
        "exam_id": world.exam_id,
        "room_id": "R01",
        "room": "R01",
        "recording_id": world.recordings["webcam0"],
        "snapshot_id": world.snapshots[0],
        "sheet_id": sheet_id,
        "index": "0",
    }
    query = (
        f"?room=R01&exam={world.exam_id}&exam_id={world.exam_id}&attempt_id="
        + (world.attempts["1001"])
    )
    app = world.client.app
    paths = []
    for route, methods in app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if "get" in methods:
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "x"), route)
            paths.append(path + query)
    return paths


def test_examiner_reaches_nothing_identifying(world: World) -> None:
    scan = Scanner(world)
    # The scanner does catch a roster: a reviewer's triage would fail it.
    with pytest.raises(AssertionError):
        scan.check(
            world.get("rev", f"/api/v1/review/exams/{world.exam_id}/triage"),
            others_hidden=True,
            path="triage",
        )
    scan.seen = 0
    exams = scan.get("/api/v1/scoring/exams", others_hidden=True).json()["exams"]
    assert [e["id"] for e in exams] == [world.exam_id]
    listed = scan.get(f"/api/v1/scoring/exams/{world.exam_id}/sheets", others_hidden=True).json()[
        "sheets"
    ]
    # Those who sat the exam, by lot only; the absent candidate has nothing to score.
    assert [(s["lot"], s["submitted"]) for s in listed] == [(1, False), (2, False)]
    assert set(listed[0]) == {"sheet_id", "lot", "submitted"}
    assert listed[0]["sheet_id"] not in world.attempts.values()
    sheet_id = listed[0]["sheet_id"]
    assert (exams[0]["sheets"], exams[0]["scored"]) == (2, 0)
    assert submit(world, "exm2", sheet_id, OTHER).status_code == 201
    # Each examiner's own progress in the list of exams: the other's submission is not ours.
    progress = world.get("exm2", "/api/v1/scoring/exams").json()["exams"][0]
    assert (progress["sheets"], progress["scored"]) == (2, 1)
    exams = scan.get("/api/v1/scoring/exams", others_hidden=True).json()["exams"]
    assert (exams[0]["sheets"], exams[0]["scored"]) == (2, 0)

    sheet = scan.get(f"/api/v1/scoring/sheets/{sheet_id}", others_hidden=True).json()
    assert sheet["lot"] == 1 and sheet["my_scores"] is None and sheet["others"] is None
    assert [q["points"] for q in sheet["questions"]] == [10, 20]
    # Signed links (a <video> cannot send the token): the path, then ?sig=.
    assert [r["media_url"].split("?sig=")[0] for r in sheet["recordings"]] == [
        f"/api/v1/scoring/sheets/{sheet_id}/media/0",
        f"/api/v1/scoring/sheets/{sheet_id}/media/1",
    ]
    assert [b["at"] for b in sheet["answer_boundaries"]] == ["2030-06-01T01:09:00Z"]
    media = scan.get(
        sheet["recordings"][1]["media_url"], others_hidden=True, headers={"Range": "bytes=0-3"}
    )
    assert media.status_code == 206 and media.content == b"\x1a\x45\xdf\xa3"
    assert (
        scan.get(f"/api/v1/scoring/sheets/{sheet_id}/media/2", others_hidden=True).status_code
        == 404
    )

    # Every other GET endpoint of the application, with real ids in the path.
    for path in staff_routes(world, sheet_id):
        r = scan.get(path, others_hidden=True)
        if r.status_code < 300 and "/api/v1/scoring/" not in path:
            assert "json" in r.headers.get("content-type", ""), (path, r.status_code)
    for path in (
        f"/api/v1/review/attempts/{world.attempts['1001']}/photo",
        f"/api/v1/staff/attempts/{world.attempts['1001']}",
        "/api/v1/staff/rooms/R01",
        f"/api/v1/recordings/{world.recordings['webcam0']}/media",
        f"/api/v1/snapshots/{world.snapshots[0]}",
        f"/api/v1/admin/exams/{world.exam_id}/export?what=scores&format=csv",
    ):
        assert scan.get(path, others_hidden=True).status_code in (401, 403, 404), path
    # The live console's socket: no rooms, and a room subscription is refused.
    with world.client.websocket_connect(f"/api/v1/staff/ws?token={world.token('exm1')}") as ws:
        hello = ws.receive_json()
        assert hello["rooms"] == []
        ws.send_json({"type": "subscribe", "rooms": ["R01"]})
        refused = ws.receive_json()
        assert refused.get("code") == 4403, refused
        for secret in scan.secret:
            assert secret not in json.dumps(hello, ensure_ascii=False) + str(refused)
    r = world.post(
        "exm1",
        f"/api/v1/review/attempts/{world.attempts['1001']}/verdict",
        {"violation": False, "reason": "x"},
    )
    scan.check(r, others_hidden=True, path="verdict")
    assert r.status_code == 403

    # Once they submitted, the others' scores are shown, labelled by order, not by account.
    r = submit(world, "exm1", sheet_id, [8, 15.5])
    scan.check(r, others_hidden=True, path="submit")
    assert r.status_code == 201 and r.json()["total"] == 23.5
    after = world.get("exm1", f"/api/v1/scoring/sheets/{sheet_id}")
    scan.check(after, others_hidden=False, path="sheet after")
    d = after.json()
    assert d["my_scores"] == [8, 15.5]
    assert d["others"] == [{"examiner": "考官1", "scores": OTHER, "total": 27.0}]
    assert "exm2" not in after.text
    assert [s["submitted"] for s in sheets(world)] == [True, False]
    assert scan.seen > 40


def test_examiner_of_another_exam_sees_nothing_of_this_one(
    client: TestClient, app_ctx: AppContext, clock: FrozenClock, tmp_path: Path
) -> None:
    doc = review_doc(n_examiners=1)
    world = build_world(client, app_ctx, clock, tmp_path / "a", doc)
    sheet_id = sheets(world)[0]["sheet_id"]
    clock.set(clock.now().replace(year=2029))  # the other exam must lie in the future to import
    other = review_doc(n_examiners=0, title="另一场考试", practice=True)
    other["staff"] = [{"username": "outsider", "password": "pw-outsider", "roles": ["examiner"]}]
    for c in other["candidates"]:
        c.pop("photo")
    from conftest import import_exam

    import_exam(app_ctx, tmp_path / "b", other)
    assert world.get("outsider", "/api/v1/scoring/exams").json()["exams"] != []
    assert world.get("outsider", f"/api/v1/scoring/exams/{world.exam_id}/sheets").status_code == 403
    assert world.get("outsider", f"/api/v1/scoring/sheets/{sheet_id}").status_code == 404
    assert submit(world, "outsider", sheet_id, [1, 1]).status_code == 404
    # A reviewer is no examiner.
    assert world.get("rev", "/api/v1/scoring/exams").status_code == 403


def test_score_validation_and_single_submission(world: World) -> None:
    sheet_id = sheets(world)[0]["sheet_id"]
    for bad in ([5], [5, 5, 5], [11, 5], [5, 20.5], [-1, 5]):
        r = submit(world, "exm1", sheet_id, bad)
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "invalid_scores"
    r = world.post("exm1", f"/api/v1/scoring/sheets/{sheet_id}/scores", {"scores": ["x", 1]})
    assert r.status_code == 422
    assert submit(world, "exm1", sheet_id, [10, 20]).status_code == 201
    again = submit(world, "exm1", sheet_id, [0, 0])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_submitted"
    assert world.get("exm1", f"/api/v1/scoring/sheets/{sheet_id}").json()["my_scores"] == [10, 20]


def test_final_score_rule() -> None:
    assert final_score([], "trimmed_mean") is None
    assert final_score([20, 24], "trimmed_mean") == 22
    assert final_score([10, 20, 30, 40], "trimmed_mean") == 25
    # Five or more: the highest and the lowest are dropped.
    assert final_score([0, 20, 21, 22, 30], "trimmed_mean") == 21
    assert final_score([0, 20, 21, 22, 30], "mean") == 18.6
    assert final_score([1, 2, 2, 3, 3, 100], "trimmed_mean") == 2.5


@pytest.mark.parametrize("rule,expected", [("trimmed_mean", 21.0), ("mean", 18.6)])
def test_final_score_from_five_examiners(
    client: TestClient,
    app_ctx: AppContext,
    clock: FrozenClock,
    tmp_path: Path,
    rule: str,
    expected: float,
) -> None:
    doc = review_doc(n_examiners=5, scoring={"rule": rule})
    world = build_world(client, app_ctx, clock, tmp_path / "exam", doc)
    sheet_id = sheets(world)[0]["sheet_id"]
    for i, scores in enumerate([[0, 0], [10, 10], [10, 11], [10, 12], [10, 20]], 1):
        assert submit(world, f"exm{i}", sheet_id, scores).status_code == 201
    results = world.get("adm", f"/api/v1/admin/exams/{world.exam_id}/results").json()
    row = next(r for r in results["results"] if r["ticket"] == "K1001")
    assert row["examiners"] == 5 and row["score"] == expected
    assert results["rule"] == rule and results["min_examiners"] == 5
    json.dumps(results)


def test_a_sheet_says_where_the_search_for_answer_markers_stands(world: World) -> None:
    """Without markers the examiner's page says why: not analysed yet, analysed in part, or
    analysed and none found (the sheet's ``audio``)."""
    sheet_id = sheets(world)[0]["sheet_id"]  # lot 1: two webcam recordings

    def audio() -> Any:
        return world.get("exm1", f"/api/v1/scoring/sheets/{sheet_id}").json()["audio"]

    assert audio() == {"state": "waiting", "waiting": 2, "reason": None}

    def analysed(kind: str, recording: str, **data: Any) -> None:
        with transaction(world.ctx.db) as session:
            data["recording_id"] = world.recordings[recording]
            now = world.clock.now()
            events.append(
                session, world.attempts["1001"], kind, at=now, actor="analysis", data=data
            )

    analysed("audio_unavailable", "webcam0", reason="no_audio_track")
    # Nothing heard yet, one recording to go.
    assert audio() == {"state": "waiting", "waiting": 1, "reason": None}
    analysed("audio_summary", "webcam1", boundaries=0)
    assert audio() == {"state": "done", "waiting": 0, "reason": None}
    # Another candidate's analysis says nothing about this sheet.
    other = sheets(world)[1]["sheet_id"]
    r = world.get("exm1", f"/api/v1/scoring/sheets/{other}").json()
    assert r["audio"] == {"state": "waiting", "waiting": 1, "reason": None}
