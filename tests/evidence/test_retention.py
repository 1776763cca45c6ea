"""Retention: the purge job scheduled at import runs at deadline + retention (late if the
server was down), removes media and face data of that exam only, logs it, keeps the event log
and rulings, runs idempotently; the CLI shows what it would purge; packages still verify."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T, bearer, both_backends, exam_doc, import_exam, staff_token, write_exam
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from evidence.conftest import Built, run_cli
from invigil.attempts.events import event_as_dict, list_events, verify_chain
from invigil.attempts.models import Attempt, Event
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.jobs import Job, run_due_jobs
from invigil.evidence import retention
from invigil.evidence.models import DataPurge, ExamRetention
from invigil.evidence.package import export_package
from invigil.evidence.verify import verify_package
from invigil.exams.durations import parse_duration
from invigil.exams.examfile import ExamFileError, parse_exam_file
from invigil.exams.models import Candidate, Exam
from invigil.proctoring.models import LoginHelpRequest
from invigil.recordings.models import Chunk, Recording, Snapshot
from invigil.review.service import rulings_for_attempt

DAY = 86400


def test_durations_take_days() -> None:
    assert parse_duration("180d") == 180 * DAY
    assert parse_duration("1d12h") == DAY + 12 * 3600
    assert parse_duration("30m") == 1800
    for bad in ("d", "3 days", "1w"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_exam_file_retention_default_and_validation(tmp_path: Path, clock: FrozenClock) -> None:
    spec = parse_exam_file(write_exam(tmp_path / "a", exam_doc()), clock.now())
    assert spec.rules_s["retention"] == 180 * DAY
    doc = exam_doc()
    doc["exam"]["rules"]["retention"] = "30d"
    assert parse_exam_file(write_exam(tmp_path / "b", doc), clock.now()).rules_s["retention"] == (
        30 * DAY
    )
    for bad, words in (("12h", "至少 1d"), ("half a year", "无法识别")):
        doc["exam"]["rules"]["retention"] = bad
        with pytest.raises(ExamFileError) as err:
            parse_exam_file(write_exam(tmp_path / "c", doc), clock.now())
        assert any(
            p.where == "exam.rules.retention" and words in p.message for p in err.value.problems
        )


def test_import_schedules_the_purge(app_ctx: AppContext, exam_id: str) -> None:
    due = T + timedelta(minutes=20) + timedelta(days=180)
    with app_ctx.db.session() as s:
        row = s.get(ExamRetention, exam_id)
        assert row is not None and row.purge_at == due and row.retention_s == 180 * DAY
        job = s.scalars(select(Job).where(Job.kind == retention.RETENTION_JOB)).one()
        assert job.payload == {"exam_id": exam_id} and job.run_at == due


def _blob_keys(app_ctx: AppContext, exam_id: str) -> dict[str, list[str]]:
    with app_ctx.db.session() as s:
        attempts = select(Attempt.id).where(Attempt.exam_id == exam_id)
        recs = list(s.scalars(select(Recording).where(Recording.attempt_id.in_(attempts))))
        chunks = list(
            s.scalars(select(Chunk.blob_key).where(Chunk.recording_id.in_([r.id for r in recs])))
        )
        return {
            "chunks": [k for k in chunks if k],
            "originals": [r.original_key for r in recs if r.original_key],
            "media": [r.media_key for r in recs if r.media_key],
            "snapshots": [
                k
                for k in s.scalars(
                    select(Snapshot.blob_key).where(Snapshot.attempt_id.in_(attempts))
                )
                if k
            ],
            "photos": [
                k
                for k in s.scalars(select(Candidate.photo_key).where(Candidate.exam_id == exam_id))
                if k
            ],
            "login_captures": [
                k
                for k in s.scalars(
                    select(LoginHelpRequest.face_key).where(
                        LoginHelpRequest.attempt_id.in_(attempts)
                    )
                )
                if k
            ],
        }


def _add_login_capture(app_ctx: AppContext, attempt_id: str) -> str:
    key = f"login-help/{attempt_id}/capture.jpg"
    app_ctx.blobs.put(key, b"\xff\xd8\xff face capture")
    with transaction(app_ctx.db) as s:
        attempt = s.get(Attempt, attempt_id)
        assert attempt is not None
        s.add(
            LoginHelpRequest(
                attempt_id=attempt_id,
                room_id=attempt.room_id,
                created_at=app_ctx.clock.now(),
                text="",
                face_key=key,
                poll_digest="d" * 64,
                status="approved",
            )
        )
    return key


@both_backends
def test_purge_job_removes_media_and_face_data_of_that_exam_only(
    built: Built, app_ctx: AppContext, clock: FrozenClock, tmp_path: Path, client: TestClient
) -> None:
    later = exam_doc()
    later["exam"]["starts_at"] = "2030-07-01T09:00:00+08:00"
    other_exam = import_exam(app_ctx, tmp_path / "other", later)
    # Uploads close: the screen recording that the desk never finalized is kept as it stands.
    clock.set(T + timedelta(minutes=50))
    run_due_jobs(app_ctx.job_context())
    run_due_jobs(app_ctx.job_context())
    capture = _add_login_capture(app_ctx, built.attempt_id)
    # A file no row points at (an upload that lost a race): purged with its folder.
    stray = f"recordings/{built.attempt_id}/{built.recording_id}/chunks/9999999-stray"
    app_ctx.blobs.put(stray, b"stray")
    keys = _blob_keys(app_ctx, built.exam_id)
    other_keys = _blob_keys(app_ctx, other_exam)
    assert len(keys["chunks"]) == 10 and len(keys["originals"]) == 3 and len(keys["media"]) == 3
    assert len(keys["snapshots"]) == 3 and len(keys["photos"]) == 3
    assert keys["login_captures"] == [capture] and len(other_keys["photos"]) == 3
    everything = [k for ks in keys.values() for k in ks] + [stray]
    assert all(app_ctx.blobs.exists(k) for k in everything)
    with app_ctx.db.session() as s:
        before = {
            a: [event_as_dict(e) for e in list_events(s, a)]
            for a in s.scalars(select(Attempt.id).where(Attempt.exam_id == built.exam_id))
        }
    due = T + timedelta(minutes=20, days=180)

    clock.set(due - timedelta(seconds=1))
    run_due_jobs(app_ctx.job_context())
    assert all(app_ctx.blobs.exists(k) for k in everything)
    with app_ctx.db.session() as s:
        exam = s.get(Exam, built.exam_id)
        assert exam is not None
        assert retention.status(s, exam) == {
            "retention_s": 180 * DAY,
            "purge_at": "2030-11-28T01:20:00Z",
            "purged_at": None,
            "attempts_purged": 0,
        }

    # The server was down on the day: the job runs when it is back, late.
    late = due + timedelta(days=10)
    clock.set(late)
    run_due_jobs(app_ctx.job_context())
    with app_ctx.db.session() as s:
        states = {
            j.payload["exam_id"]: j.state
            for j in s.scalars(select(Job).where(Job.kind == retention.RETENTION_JOB))
        }
    assert states[built.exam_id] == "done"
    assert not any(app_ctx.blobs.exists(k) for k in everything)
    assert list(app_ctx.blobs.list_prefix(f"recordings/{built.attempt_id}")) == []
    assert _blob_keys(app_ctx, built.exam_id) == {k: [] for k in keys}
    # Another exam's data (its purge is not due: it ends later) is untouched.
    gone = [k for ks in other_keys.values() for k in ks if not app_ctx.blobs.exists(k)]
    assert gone == []

    with app_ctx.db.session() as s:
        embeddings = dict(
            s.execute(
                select(Candidate.exam_id, func.count(Candidate.face_embedding)).group_by(
                    Candidate.exam_id
                )
            ).all()
        )
        assert embeddings.get(built.exam_id, 0) == 0 and embeddings[other_exam] == 3
        purges = list(s.scalars(select(DataPurge).where(DataPurge.exam_id == built.exam_id)))
        assert len(purges) == 3 and {p.at for p in purges} == {late}
        mine = next(p for p in purges if p.attempt_id == built.attempt_id)
        assert mine.summary["chunks"]["files"] == 7 and mine.summary["login_captures"]["files"] == 1
        assert mine.summary["face_embeddings"]["files"] == 1
        assert mine.summary["unreferenced"]["files"] == 1
        for attempt_id, old in before.items():
            now = [event_as_dict(e) for e in list_events(s, attempt_id)]
            assert now[: len(old)] == old  # the log is kept as it was …
            assert [e["kind"] for e in now[len(old) :]] == ["data_purged"]  # … plus the purge
            assert verify_chain(attempt_id, now) == []
        rec = s.get(Recording, built.recording_id)
        assert rec is not None and rec.sha256 is not None and rec.original_key is None
        exam = s.get(Exam, built.exam_id)
        assert exam is not None
        assert retention.status(s, exam)["purged_at"] == "2030-12-08T01:20:00Z"
        assert retention.status(s, exam)["attempts_purged"] == 3
        assert [r["reason"] for r in rulings_for_attempt(s, built.attempt_id)] == [
            "RULING-REASON 误触"
        ]

    # What was purged answers 410 "purged", not a server error.
    staff = bearer(staff_token(client, "rev", "pw-rev"))
    with app_ctx.db.session() as s:
        snap = s.scalars(select(Snapshot.id).where(Snapshot.attempt_id == built.attempt_id)).first()
    for path in (
        f"/api/v1/recordings/{built.recording_id}/media",
        f"/api/v1/recordings/{built.recording_id}/media?original=1",
        f"/api/v1/snapshots/{snap}",
    ):
        r = client.get(path, headers=staff)
        assert r.status_code == 410 and r.json()["error"]["code"] == "purged", (path, r.text)

    # Idempotent: running again finds nothing and records nothing.
    with transaction(app_ctx.db) as s:
        report = retention.purge_exam(s, app_ctx.blobs, built.exam_id, late, actor="test")
    assert report.files == 0
    with app_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataPurge)) == 3
        assert s.scalar(select(func.count()).where(Event.kind == "data_purged")) == 3

    # The package still exports, says the media were purged and when, and verifies.
    out = export_package(
        app_ctx.db, app_ctx.blobs, app_ctx.settings, built.attempt_id, tmp_path / "p.zip", late
    ).path
    report_v = verify_package(out)
    assert report_v.ok, report_v.problems
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = zf.namelist()
    assert manifest["purged"]["at"] == late.isoformat().replace("+00:00", "Z")
    assert all(
        r["purged"] and not r["original"] and not r["partial"] for r in manifest["recordings"]
    )
    assert all(s["purged"] for s in manifest["snapshots"])
    assert not [n for n in names if n.startswith(("recordings/", "snapshots/"))]


@both_backends
def test_retention_cli_dry_run_force_and_not_due(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    settings = app_ctx.settings
    keys = _blob_keys(app_ctx, built.exam_id)
    files = [k for ks in keys.values() for k in ks]
    # The CLI runs on the real clock, years before this exam's period ends.
    r = run_cli(settings, "retention", "run", "--exam", built.exam_id, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "not due until" in r.stdout and "would purge" not in r.stdout

    r = run_cli(settings, "retention", "run", "--exam", built.exam_id, "--dry-run", "--force")
    assert r.returncode == 0, r.stderr
    assert "would purge" in r.stdout and "1001" in r.stdout and "chunks 7" in r.stdout
    assert all(app_ctx.blobs.exists(k) for k in files)
    with app_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataPurge)) == 0

    assert run_cli(settings, "retention", "run", "--force").returncode == 2
    r = run_cli(settings, "retention", "run", "--exam", built.exam_id, "--force")
    assert r.returncode == 0, r.stderr
    assert "已清除 purged" in r.stdout
    assert not any(app_ctx.blobs.exists(k) for k in files)
    with app_ctx.db.session() as s:
        actors = set(s.scalars(select(DataPurge.actor)))
    assert actors == {"admin:cli-force"}
