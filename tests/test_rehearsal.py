"""`invigil rehearse prepare | run | cleanup` against a live server: a few candidates for a few
seconds, the report's counts checked against what the server holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FACES, import_exam, serve
from fastapi import FastAPI
from sqlalchemy import func, select
from typer.testing import CliRunner

from invigil.app import create_app
from invigil.cli import app as cli
from invigil.core.backpressure import OVERLOADED
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database
from invigil.exams.models import Exam
from invigil.recordings.models import Chunk, Recording, Snapshot
from invigil.rehearsal.run import run
from invigil.staff.models import StaffUser

runner = CliRunner()


@pytest.fixture
def live_app(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FastAPI, str]]:
    """`invigil serve` as a rehearsal meets it: the real clock, the load generator's address
    exempt from per-address limits; the CLI sees the same settings through the environment."""
    settings.rate_limit_exempt = "127.0.0.1"
    for name, value in {
        "INVIGIL_DATA_DIR": str(settings.data_dir),
        "INVIGIL_DATABASE_URL": settings.sqlalchemy_url,
        "INVIGIL_SECRET_KEY": settings.secret_key or "",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app(settings, db=db, start_worker=False)
    with serve(app) as url:
        yield app, url


def _prepare(tmp_path: Path, n: int) -> dict[str, object]:
    plan = tmp_path / "plan.json"
    r = runner.invoke(cli, ["rehearse", "prepare", "--candidates", str(n), "--out", str(plan)])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout.strip().splitlines()[-1])
    doc: dict[str, object] = json.loads(plan.read_text())
    assert printed["exam_id"] == doc["exam_id"] and printed["candidates"] == n
    return doc


def test_rehearsal_counts_match_the_server(live_app: tuple[FastAPI, str], tmp_path: Path) -> None:
    app, url = live_app
    ctx: AppContext = app.state.ctx
    doc = _prepare(tmp_path, 3)
    plan = tmp_path / "plan.json"
    r = runner.invoke(
        cli,
        [
            "rehearse",
            "run",
            "--url",
            url,
            "--plan",
            str(plan),
            "--face",
            str(FACES / "obama.jpg"),
            "--minutes",
            "0.12",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout.strip().splitlines()[-1])
    load = report["load"]
    assert report["ok"] and report["ready"] == 3 and report["recordings"] == 9
    assert report["verified"] == 9 and load["chunks_lost"] == 0 and load["errors"] == 0
    assert report["setup"]["login"]["count"] == 3 and report["setup"]["finalize"]["count"] == 9

    with ctx.db.session() as session:
        chunks = session.scalar(select(func.count()).select_from(Chunk))
        snaps = session.scalar(select(func.count()).select_from(Snapshot))
        states = set(session.scalars(select(Recording.state)))
    assert chunks == load["chunks_produced"] == load["statuses"]["chunk 201"]
    assert snaps == load["statuses"]["snapshot 201"] == load["kinds"]["snapshot"]["count"]
    assert load["kinds"]["heartbeat"]["count"] >= 3 and states == {"finalized"}

    # cleanup removes the exam, what it recorded and the rehearsal's staff account, and
    # refuses an exam that is not a rehearsal.
    other = import_exam(ctx, tmp_path / "real")
    r = runner.invoke(cli, ["rehearse", "cleanup", "--exam", other])
    assert r.exit_code == 1 and "不是演练考试" in r.output
    r = runner.invoke(cli, ["rehearse", "cleanup", "--plan", str(plan)])
    assert r.exit_code == 0, r.output
    with ctx.db.session() as session:
        assert session.get(Exam, str(doc["exam_id"])) is None
        assert session.get(Exam, other) is not None
        assert session.scalar(select(func.count()).select_from(Recording)) == 0
        names = set(session.scalars(select(StaffUser.username)))
        assert not [n for n in names if n.startswith("rehearsal")]


def test_rehearsal_under_backpressure_loses_nothing(
    live_app: tuple[FastAPI, str], tmp_path: Path
) -> None:
    """The server defers snapshots and heartbeats: the generator waits as the clients do,
    counts the 503s, and every chunk still arrives."""
    app, url = live_app
    doc = _prepare(tmp_path, 2)

    def overload() -> None:  # once every candidate is in: the recording phase is loaded
        app.state.load.forced = OVERLOADED
        app.state.load.retry_after = 1

    tickets = [str(t) for t in doc["tickets"]]  # type: ignore[attr-defined]
    report = run(
        url, str(doc["exam_id"]), tickets, FACES / "obama.jpg", minutes=0.12, after_setup=overload
    )
    load = report.load
    assert report.ok, report.text()
    assert load["deferred"].get("snapshot", 0) >= 2 and load["deferred"].get("heartbeat", 0) >= 1
    assert load["statuses"]["snapshot 503"] == load["deferred"]["snapshot"]
    assert "snapshot 201" not in load["statuses"] and load["chunks_lost"] == 0
    assert load["statuses"]["chunk 201"] == load["chunks_produced"]
