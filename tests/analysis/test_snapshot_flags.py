"""Snapshot flags on real photos, through the real path: a candidate (or the bound phone) uploads
snapshots with POST /api/v1/snapshots, the durable ``snapshot.analyse`` jobs run, and the flags
appear as events on the staff events endpoint and on the proctor console."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FACES, bearer, exam_doc, face, import_exam, staff_token, write_exam
from fastapi.testclient import TestClient
from PIL import Image
from proctoring.test_console_api import next_message, room_id_of, subscribe
from recordings.conftest import entered, phone_token
from sqlalchemy import func, select

from invigil.analysis import jobs as analysis_jobs
from invigil.analysis import thresholds
from invigil.analysis.models import SnapshotAnalysis
from invigil.attempts import presence
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.jobs import DONE, Job, run_due_jobs, run_one
from invigil.exams.examfile import ExamFileError, parse_exam_file
from invigil.recordings import snapshots

EVERY = timedelta(seconds=5)
FLAG_KINDS = {
    "no_face",
    "multiple_faces",
    "face_mismatch",
    "camera_covered",
    "candidate_out_of_view",
    "second_person",
    "face_covered",
}


def jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def variant(name: str, *, width: int | None = None, quality: int = 85) -> bytes:
    img = Image.open(FACES / name).convert("RGB")
    if width:
        img = img.resize((width, round(img.height * width / img.width)))
    return jpeg(img, quality)


def black() -> bytes:
    return jpeg(Image.new("RGB", (640, 480), (3, 3, 3)))


def with_badge(name: str) -> bytes:
    """A candidate's frame with the round smiley badge pinned in a corner."""
    img = Image.open(FACES / name).convert("RGB")
    badge = Image.open(FACES / "badge.jpg").convert("RGB")
    side = img.width // 3
    img.paste(badge.resize((side, round(badge.height * side / badge.width))), (0, 0))
    return jpeg(img)


def two_people() -> bytes:
    """Obama and Biden side by side, as a phone might see a helper beside the candidate."""
    a = Image.open(FACES / "obama2.jpg").convert("RGB")
    b = Image.open(FACES / "biden.jpg").convert("RGB")
    canvas = Image.new("RGB", (a.width + b.width + 20, max(a.height, b.height)), (128, 128, 128))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + 20, 0))
    return jpeg(canvas)


def post(client: TestClient, token: str, kind: str, data: bytes) -> str:
    r = client.post(
        "/api/v1/snapshots",
        data={"kind": kind},
        files={"image": ("s.jpg", data, "image/jpeg")},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["snapshot_id"])


def run(
    client: TestClient,
    clock: FrozenClock,
    ctx: AppContext,
    token: str,
    kind: str,
    frames: list[bytes],
) -> list[str]:
    """Upload one frame every 5 s and analyse each as it arrives; the snapshot ids."""
    ids = []
    for data in frames:
        clock.advance(EVERY)
        ids.append(post(client, token, kind, data))
        run_due_jobs(ctx.job_context())
    return ids


def staff_events(client: TestClient, attempt_id: str) -> list[dict[str, Any]]:
    p1 = staff_token(client, "p1", "pw-p1")
    r = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(p1))
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def flags_of(client: TestClient, attempt_id: str) -> list[dict[str, Any]]:
    return [e for e in staff_events(client, attempt_id) if e["kind"] in FLAG_KINDS | {"flag_ended"}]


@pytest.fixture
def no_presence_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that count what one claim of the job queue takes: the desk presence sweep
    (attempts/presence.py) that entering queues would be claimed first."""
    monkeypatch.setattr(presence, "schedule", lambda *args, **kwargs: None)


@pytest.fixture
def desk(client: TestClient, clock: FrozenClock, exam_id: str) -> tuple[str, str]:
    """Obama (1001, enrolled with obama.jpg) has entered; (token, attempt_id)."""
    return entered(client, clock, exam_id, "1001")


def test_the_handler_is_registered_for_the_job_snapshots_enqueue() -> None:
    assert analysis_jobs.ANALYSE_JOB == snapshots.ANALYSE_JOB
    assert snapshots.analysis_registered()


def test_own_face_over_a_run_raises_nothing(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    frames = [
        face("obama2.jpg"),
        face("obama3.jpg"),
        variant("obama2.jpg", quality=40),
        variant("obama3.jpg", width=320),
        variant("obama.jpg", width=480, quality=50),
        with_badge("obama2.jpg"),  # a badge on the wall is not a second face
        face("obama3.jpg"),
        variant("obama2.jpg", width=320, quality=40),
    ]
    ids = run(client, clock, app_ctx, token, "webcam", frames)
    assert flags_of(client, attempt_id) == []
    with app_ctx.db.session() as s:
        rows = {r.snapshot_id: r for r in s.scalars(select(SnapshotAnalysis))}
        assert set(rows) == set(ids)
        assert all(r.faces == 1 and r.distance is not None for r in rows.values())
        assert max(r.distance or 9 for r in rows.values()) <= 0.52
        badge = rows[ids[5]]
        assert len(badge.scores) == 1 and badge.scores[0] >= 0.9  # the real face, and only it
        done = select(func.count()).where(Job.kind == snapshots.ANALYSE_JOB, Job.state == DONE)
        jobs_done = s.scalar(done)
        assert jobs_done == len(frames)


def test_group_photo_raises_multiple_faces_once_with_evidence(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    run(client, clock, app_ctx, token, "webcam", [face("obama2.jpg")])
    group = run(client, clock, app_ctx, token, "webcam", [face("group_t1.jpg")] * 6)
    back = run(client, clock, app_ctx, token, "webcam", [face("obama2.jpg")] * 3)
    got = flags_of(client, attempt_id)
    assert [e["kind"] for e in got] == ["multiple_faces", "flag_ended"]
    start, end = got
    assert start["severity"] == "violation"
    # All six people of the group (HOG counted five): the first group frame is enough.
    assert start["data"]["snapshot_id"] == group[0]
    assert [f["snapshot_id"] for f in start["data"]["frames"]] == [group[0]]
    assert start["data"]["frames"][0]["faces"] == 6
    assert 0.9 <= start["data"]["confidence"] <= 1.0
    assert start["data"]["rule"] == {"of_last": 3, "at_least": 2, "at_once": 0.9}
    # Ends once none of the last three shows it, as one info event.
    assert end["severity"] == "info" and end["data"]["flag"] == "multiple_faces"
    assert end["data"]["snapshot_id"] == back[2] and end["data"]["started_seq"] == start["seq"]


def test_empty_frame_raises_no_face_only_after_the_sustained_time(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    empty = run(client, clock, app_ctx, token, "webcam", [face("empty.jpg")] * 3)  # 10 s
    assert flags_of(client, attempt_id) == []
    more = run(client, clock, app_ctx, token, "webcam", [face("empty.jpg")] * 20)  # 100 s more
    got = flags_of(client, attempt_id)
    assert [e["kind"] for e in got] == ["no_face"]  # one event for the whole stretch
    assert got[0]["data"]["snapshot_id"] == more[0]  # 15 s after the first empty frame
    assert got[0]["data"]["since"] == got[0]["data"]["frames"][-1]["at"]
    assert got[0]["data"]["frames"][-1]["snapshot_id"] == empty[0]
    assert got[0]["data"]["confidence"] == 1.0  # nothing face-like at all


def test_badge_alone_is_no_face(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    run(client, clock, app_ctx, token, "webcam", [face("badge.jpg")] * 4)
    got = flags_of(client, attempt_id)
    assert [e["kind"] for e in got] == ["no_face"]
    frame = got[0]["data"]["frames"][0]
    # dlib's HOG fired on the badge (score 0.12); libfacedetection does not fire at all.
    assert frame["faces"] == 0 and "rejected_score" not in frame
    assert got[0]["data"]["confidence"] == 1.0


# Biden's photo is a sure face far from Obama's: one frame is enough. Tom Hanks' is a 112 px crop
# whose detection score stays below SURE_SCORE, so it takes the second frame (2 of the last 3).
@pytest.mark.parametrize(("other", "raised_at"), [("biden.jpg", 0), ("tom_hanks.jpg", 1)])
def test_another_person_raises_face_mismatch(
    client: TestClient,
    clock: FrozenClock,
    app_ctx: AppContext,
    desk: tuple[str, str],
    other: str,
    raised_at: int,
) -> None:
    token, attempt_id = desk
    run(client, clock, app_ctx, token, "webcam", [face("obama2.jpg")] * 2)
    ids = run(client, clock, app_ctx, token, "webcam", [face(other)] * 3)
    got = flags_of(client, attempt_id)
    assert [e["kind"] for e in got] == ["face_mismatch"]  # once, though it goes on
    data = got[0]["data"]
    assert data["snapshot_id"] == ids[raised_at] and data["stream"] == "webcam"
    assert [f["snapshot_id"] for f in data["frames"]] == ids[: raised_at + 1][::-1]
    assert all(f["distance"] > 0.6 for f in data["frames"])
    assert 0.5 < data["confidence"] <= 1.0


@pytest.mark.parametrize("other", ["biden.jpg", "tom_hanks.jpg"])
def test_without_at_once_a_stranger_needs_two_of_the_last_three(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path, other: str
) -> None:
    doc = exam_doc()
    doc["exam"]["flags"] = {"face_mismatch": {"at_once": 1}}
    token, attempt_id = entered(client, clock, import_exam(app_ctx, tmp_path / "e", doc), "1001")
    run(client, clock, app_ctx, token, "webcam", [face("obama2.jpg")] * 2)
    # One stranger frame among the candidate's is not enough (2 of the last 3 are needed)...
    first = run(client, clock, app_ctx, token, "webcam", [face(other), face("obama3.jpg")])
    assert flags_of(client, attempt_id) == []
    # ...a second one within the last three is.
    ids = run(client, clock, app_ctx, token, "webcam", [face(other)] * 3)
    got = flags_of(client, attempt_id)
    assert [e["kind"] for e in got] == ["face_mismatch"]  # once, though it goes on
    data = got[0]["data"]
    assert data["snapshot_id"] == ids[0] and data["stream"] == "webcam"
    assert [f["snapshot_id"] for f in data["frames"]] == [ids[0], first[0]]
    assert all(f["distance"] > 0.6 for f in data["frames"])
    assert 0.5 < data["confidence"] <= 1.0


def test_dark_covered_camera_raises_camera_covered_not_no_face(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    run(client, clock, app_ctx, token, "webcam", [black()] * 4)
    got = flags_of(client, attempt_id)
    assert [e["kind"] for e in got] == ["camera_covered"]
    assert got[0]["data"]["confidence"] == 1.0
    # A dim but visible candidate is not "covered": HOG still finds the face.
    dim = Image.open(FACES / "obama2.jpg").point(lambda v: v * 0.25)
    run(client, clock, app_ctx, token, "webcam", [jpeg(dim)] * 4)
    kinds = [(e["kind"], e["data"].get("flag")) for e in flags_of(client, attempt_id)]
    assert kinds == [("camera_covered", None), ("flag_ended", "camera_covered")]


def test_phone_empty_room_and_second_person(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    phone = phone_token(app_ctx, attempt_id)
    run(client, clock, app_ctx, phone, "evidence", [face("obama2.jpg")] * 2)
    run(client, clock, app_ctx, phone, "evidence", [face("empty.jpg")] * 6)  # 25 s
    assert flags_of(client, attempt_id) == []
    ids = run(client, clock, app_ctx, phone, "evidence", [face("empty.jpg")] * 2)
    run(client, clock, app_ctx, phone, "evidence", [two_people()] * 2)
    got = flags_of(client, attempt_id)
    assert [(e["kind"], e["data"].get("flag")) for e in got] == [
        ("candidate_out_of_view", None),
        ("flag_ended", "candidate_out_of_view"),
        ("second_person", None),
    ]
    assert got[0]["data"]["snapshot_id"] == ids[0] and got[0]["data"]["stream"] == "evidence"
    assert got[2]["data"]["frames"][0]["faces"] == 2
    # The phone is never embedded (no identity question on it) and screens are not analysed.
    post(client, token, "screen", face("group_t1.jpg"))
    run_due_jobs(app_ctx.job_context())
    with app_ctx.db.session() as s:
        streams = s.scalars(select(SnapshotAnalysis.stream).distinct()).all()
        assert sorted(streams) == ["evidence"]
        assert not s.scalars(
            select(SnapshotAnalysis).where(SnapshotAnalysis.distance.is_not(None))
        ).all()


def test_rerunning_a_job_adds_nothing(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    run(client, clock, app_ctx, token, "webcam", [face("group_t1.jpg")] * 2)
    before = staff_events(client, attempt_id)
    with app_ctx.db.session() as s, s.begin():
        for job in s.scalars(select(Job).where(Job.kind == snapshots.ANALYSE_JOB)):
            job.state = "pending"  # as if every lease had expired before the commit was seen
    assert run_due_jobs(app_ctx.job_context()) == 2
    assert staff_events(client, attempt_id) == before
    with app_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SnapshotAnalysis)) == 2


def test_per_exam_overrides_change_the_outcome(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    doc = exam_doc()
    doc["exam"]["flags"] = {
        "face_mismatch": {"distance": 0.95},  # nobody is a stranger now
        "no_face": {"seconds": "1m", "severity": "warning"},
        "multiple_faces": {"severity": "off"},
    }
    exam = import_exam(app_ctx, tmp_path / "exam", doc)
    token, attempt_id = entered(client, clock, exam, "1001")
    run(client, clock, app_ctx, token, "webcam", [face("biden.jpg")] * 4)
    run(client, clock, app_ctx, token, "webcam", [face("group_t1.jpg")] * 4)
    run(client, clock, app_ctx, token, "webcam", [face("empty.jpg")] * 4)  # 15 s: not yet
    assert flags_of(client, attempt_id) == []
    run(client, clock, app_ctx, token, "webcam", [face("empty.jpg")] * 9)  # 60 s
    got = flags_of(client, attempt_id)
    assert [(e["kind"], e["severity"]) for e in got] == [("no_face", "warning")]
    assert got[0]["data"]["rule"] == {"seconds": 60}
    # A warning is no alert: the console's alert list stays empty.
    p1 = staff_token(client, "p1", "pw-p1")
    room = room_id_of(client, p1, "R01")
    alerts = client.get(f"/api/v1/staff/alerts?room={room}", headers=bearer(p1)).json()
    assert not [a for a in alerts["alerts"] if a["kind"] == "no_face"]


def test_server_settings_set_the_defaults(settings: Settings) -> None:
    rules = thresholds.resolve(settings, None)
    assert rules["face_mismatch"].distance == 0.52 and rules["no_face"].seconds == 15
    server = settings.model_copy(update={"flags": {"no_face": {"seconds": 20}}})
    rules = thresholds.resolve(server, {"no_face": {"severity": "info"}})
    assert (rules["no_face"].seconds, rules["no_face"].severity) == (20, "info")
    bad = settings.model_copy(update={"flags": {"no_face": {"secs": 20}}})
    with pytest.raises(ValueError, match="secs"):
        thresholds.resolve(bad, None)


def test_exam_file_flag_errors_name_the_line(tmp_path: Path, clock: FrozenClock) -> None:
    doc = exam_doc()
    doc["exam"]["flags"] = {
        "face_mismatch": {"distance": "far", "of_last": 2, "at_least": 3},
        "no_face": {"seconds": "soon", "severty": "violation"},
        "yawning": {"seconds": 5},
        "second_person": {"severity": "loud"},
    }
    path = write_exam(tmp_path / "exam", doc)
    text = path.read_text(encoding="utf-8")
    with pytest.raises(ExamFileError) as err:
        parse_exam_file(path, clock.now())
    lines = text.splitlines()
    found = {p.where: p for p in err.value.problems}
    for where, needle in [
        ("exam.flags.face_mismatch.distance", "distance:"),
        ("exam.flags.face_mismatch.at_least", "at_least:"),
        ("exam.flags.no_face.seconds", "seconds: soon"),
        ("exam.flags.no_face.severty", "severty:"),
        ("exam.flags.yawning", "yawning:"),
        ("exam.flags.second_person.severity", "severity: loud"),
    ]:
        problem = found[where]
        assert problem.line is not None, where
        # A mapping's problem points at its first line (the collector's rule), one below its key.
        near = lines[problem.line - 2 : problem.line] if where.endswith("yawning") else []
        assert needle in lines[problem.line - 1] or any(needle in n for n in near), problem
    assert yaml.safe_load(text)["exam"]["flags"]["yawning"] == {"seconds": 5}


def test_the_console_receives_the_alert_live(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, desk: tuple[str, str]
) -> None:
    token, attempt_id = desk
    p1 = staff_token(client, "p1", "pw-p1")
    room = room_id_of(client, p1, "R01")
    with client.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        assert ws.receive_json()["type"] == "hello"
        subscribe(ws, [room])
        run(client, clock, app_ctx, token, "webcam", [face("tom_hanks.jpg")] * 2)
        msg = next_message(ws, "event")
        while msg["event"]["kind"] != "face_mismatch":  # the room's other traffic
            msg = next_message(ws, "event")
        assert msg["attempt_id"] == attempt_id
        assert msg["event"]["severity"] == "violation"
        evidence = msg["event"]["data"]["snapshot_id"]
    alerts = client.get(f"/api/v1/staff/alerts?room={room}", headers=bearer(p1)).json()["alerts"]
    assert [(a["kind"], a["attempt_id"]) for a in alerts if a["kind"] == "face_mismatch"] == [
        ("face_mismatch", attempt_id)
    ]
    # The evidence snapshot is viewable by the proctor.
    image = client.get(f"/api/v1/snapshots/{evidence}", headers=bearer(p1))
    assert image.status_code == 200 and image.content == face("tom_hanks.jpg")


def test_a_worker_takes_a_batch_and_one_failure_holds_back_no_other(
    client: TestClient,
    clock: FrozenClock,
    app_ctx: AppContext,
    no_presence_sweep: None,
    desk: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, attempt_id = desk
    ctx = app_ctx.job_context()
    run_due_jobs(ctx)  # whatever entering queued
    ids = []
    for data in [face("obama2.jpg"), two_people(), two_people(), two_people()]:
        clock.advance(EVERY)
        ids.append(post(client, token, "webcam", data))
    bad = ids[1]
    real = analysis_jobs.flags.evaluate

    def evaluate(session: Any, current: SnapshotAnalysis, rules: Any, now: Any) -> list[str]:
        if current.snapshot_id == bad:
            raise RuntimeError("a store that fails")
        return real(session, current, rules, now)

    monkeypatch.setattr(analysis_jobs.flags, "evaluate", evaluate)
    assert run_one(ctx)  # one claim: the whole batch
    with app_ctx.db.session() as s:
        analysed = set(s.scalars(select(SnapshotAnalysis.snapshot_id)))
        analyse = select(Job).where(Job.kind == analysis_jobs.ANALYSE_JOB)
        states = {j.payload["snapshot_id"]: j.state for j in s.scalars(analyse)}
    # The failure rolled back the batch's transaction; the others were stored one by one.
    assert analysed == set(ids) - {bad}
    assert states[bad] == "pending" and all(states[i] == DONE for i in ids if i != bad)
    assert [e["kind"] for e in flags_of(client, attempt_id)] == ["multiple_faces"]

    monkeypatch.undo()
    clock.advance(timedelta(seconds=5))  # past the retry's backoff
    run_due_jobs(ctx)
    with app_ctx.db.session() as s:
        assert set(s.scalars(select(SnapshotAnalysis.snapshot_id))) == set(ids)
    # Analysed late: its facts are kept, the flags had moved on (still one event).
    assert [e["kind"] for e in flags_of(client, attempt_id)] == ["multiple_faces"]


def test_a_batch_is_at_most_the_batch_size(
    client: TestClient,
    clock: FrozenClock,
    app_ctx: AppContext,
    no_presence_sweep: None,
    desk: tuple[str, str],
) -> None:
    token, _ = desk
    ctx = app_ctx.job_context()
    run_due_jobs(ctx)  # whatever entering queued
    frame = face("obama2.jpg")
    for _ in range(analysis_jobs.BATCH + 2):
        clock.advance(EVERY)
        post(client, token, "webcam", frame)
    assert run_one(ctx)
    with app_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SnapshotAnalysis)) == analysis_jobs.BATCH
    assert run_one(ctx) and not run_one(ctx)


def test_the_window_is_read_only_when_a_flag_can_start_or_end(settings: Settings) -> None:
    from invigil.analysis.flags import _nothing_can_change

    rules = thresholds.resolve(settings, None)

    def frame(faces: int, distance: float | None = 0.3) -> SnapshotAnalysis:
        return SnapshotAnalysis(
            stream="webcam", readable=True, covered=False, faces=faces, face_covered=False,
            distance=distance,
        )  # fmt: skip

    assert _nothing_can_change(frame(1), {}, rules)  # all well, nothing flagged
    assert not _nothing_can_change(frame(0), {}, rules)  # no_face may start
    assert not _nothing_can_change(frame(1, 0.9), {}, rules)  # face_mismatch may start
    # A sustained flag going on: only a frame without its condition can end it.
    assert _nothing_can_change(frame(0), {"no_face": {}}, rules)
    assert not _nothing_can_change(frame(1), {"no_face": {}}, rules)
    # A k-of-n flag ends only when none of its window shows it: always read.
    assert not _nothing_can_change(frame(2), {"multiple_faces": {}}, rules)
    disabled = thresholds.resolve(settings, {"no_face": {"severity": "off"}})
    assert not _nothing_can_change(frame(0), {"no_face": {}}, disabled)
