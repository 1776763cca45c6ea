"""`invigil exam import FILE.yaml --roster R.xlsx --photos P.zip`: the same checks and messages
as the web's 考生导入; nothing imported on a problem; the YAML-only flow unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import exam_doc, write_exam
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from invigil.cli import app
from invigil.exams.models import Candidate, Exam

from .roster_files import GOOD_ROWS, good_zip, xlsx

runner = CliRunner()


def test_import_with_an_xlsx_roster(tmp_path: Path, database_url: str) -> None:
    env = {"INVIGIL_DATA_DIR": str(tmp_path / "data"), "INVIGIL_DATABASE_URL": database_url}
    doc = exam_doc()
    del doc["candidates"]
    path = write_exam(tmp_path / "exam", doc)
    roster, photos = tmp_path / "名单.xlsx", tmp_path / "照片.zip"
    photos.write_bytes(good_zip())

    roster.write_bytes(xlsx([*GOOD_ROWS, ("1001", "重复", "R09", "")]))
    args = ["exam", "import", str(path), "--roster", str(roster), "--photos", str(photos)]
    bad = runner.invoke(app, args, env=env)
    assert bad.exit_code == 1
    assert "考生名单有 3 处问题，未导入任何内容" in bad.stderr
    assert "第 5 行「准考证号」问题：准考证号 1001 重复：第 2 行与第 5 行" in bad.stderr
    assert "第 5 行「考场」问题：未知考场「R09」" in bad.stderr
    assert "如何修改：" in bad.stderr
    assert "exam_id" not in bad.stdout

    # The exam file must not list candidates as well.
    with_candidates = write_exam(tmp_path / "both", exam_doc())
    both = runner.invoke(
        app, ["exam", "import", str(with_candidates), "--roster", str(roster)], env=env
    )
    assert both.exit_code == 1 and "二者选一" in both.stderr

    roster.write_bytes(xlsx(GOOD_ROWS))
    ok = runner.invoke(app, args, env=env)
    assert ok.exit_code == 0, ok.output
    exam_id = json.loads(ok.stdout.strip().splitlines()[-1])["exam_id"]
    assert "3 名考生（3 张报名照片）" in ok.stderr
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(select(Exam.id)) == exam_id
        rows = conn.execute(
            select(Candidate.ticket, Candidate.name, Candidate.photo_key.is_not(None))
            .where(Candidate.face_embedding.is_not(None))
            .order_by(Candidate.ticket)
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("1001", "奥巴马", True),
        ("1002", "拜登", True),
        ("2001", "汉克斯", True),
    ]


def test_photos_need_a_roster(tmp_path: Path, database_url: str) -> None:
    env = {"INVIGIL_DATA_DIR": str(tmp_path / "data"), "INVIGIL_DATABASE_URL": database_url}
    path = write_exam(tmp_path / "exam", exam_doc())
    r = runner.invoke(app, ["exam", "import", str(path), "--photos", "x.zip"], env=env)
    assert r.exit_code == 1 and "--photos" in r.stderr
