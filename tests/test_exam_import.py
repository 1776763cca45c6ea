"""`invigil exam import`: every problem reported with where it is, nothing imported on error."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FACES, exam_doc, write_exam
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from invigil.attempts.models import Attempt
from invigil.cli import app
from invigil.core.jobs import Job
from invigil.exams.models import Candidate, Exam, Question, Room
from invigil.staff.models import StaffUser

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "INVIGIL_DATA_DIR": str(tmp_path / "data"),
        "INVIGIL_DATABASE_URL": database_url,
    }


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {
            m.__tablename__: conn.scalar(select(func.count()).select_from(m)) or 0
            for m in (Exam, Room, Candidate, Attempt, Question, StaffUser, Job)
        }
    engine.dispose()
    return counts


def _run(env: dict[str, str], path: Path) -> Any:
    return runner.invoke(app, ["exam", "import", str(path)], env=env)


def test_valid_file_imports_and_prints_exam_id(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = write_exam(tmp_path / "ok", exam_doc())
    result = _run(cli_env, path)
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    exam_id = json.loads(last)["exam_id"]
    counts = _counts(cli_env["INVIGIL_DATABASE_URL"])
    assert counts == {
        "exams": 1,
        "rooms": 2,
        "candidates": 3,
        "attempts": 3,
        "questions": 2,
        "staff_users": 5,
        "jobs": 2,  # the lot auto-assignment and the retention purge
    }
    assert len(exam_id) == 32
    # Importing a second exam with the same staff updates them instead of failing.
    assert _run(cli_env, path).exit_code == 0
    assert _counts(cli_env["INVIGIL_DATABASE_URL"])["staff_users"] == 5


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _dup_ticket(doc: dict[str, Any]) -> None:
    doc["candidates"][1]["ticket"] = doc["candidates"][0]["ticket"]


def _drop(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    (
        "missing photo",
        _set(["candidates", 0, "photo"], "nope.jpg"),
        ["candidates[0].photo", "照片文件不存在", "nope.jpg"],
    ),
    ("duplicate ticket", _dup_ticket, ["candidates[1].ticket", "准考证号重复", "1001"]),
    (
        "unknown room",
        _set(["candidates", 2, "room"], "R99"),
        ["candidates[2].room", "未知考场", "R99"],
    ),
    (
        "photo without a face",
        _set(["candidates", 0, "photo"], "empty.jpg"),
        ["candidates[0].photo", "未检测到人脸"],
    ),
    (
        "photo with several faces",
        _set(["candidates", 1, "photo"], "group_t1.jpg"),
        ["candidates[1].photo", "多张人脸"],
    ),
    ("bad duration", _set(["exam", "duration"], "20x"), ["exam.duration", "20x"]),
    ("duration without unit", _set(["exam", "duration"], 20), ["exam.duration", "缺少单位"]),
    (
        "start in the past",
        _set(["exam", "starts_at"], "2020-01-01T09:00:00+08:00"),
        ["exam.starts_at", "已经过去"],
    ),
    (
        "start without timezone",
        _set(["exam", "starts_at"], "2030-06-01T09:00:00"),
        ["exam.starts_at", "时区"],
    ),
    (
        "unparseable start",
        _set(["exam", "starts_at"], "next monday"),
        ["exam.starts_at", "next monday"],
    ),
    (
        "bad rule duration",
        _set(["exam", "rules", "entry_closes_after"], "3 minutes"),
        ["exam.rules.entry_closes_after"],
    ),
    (
        "bad switch",
        _set(["exam", "rules", "evidence_camera"], "maybe"),
        ["exam.rules.evidence_camera", "maybe"],
    ),
    (
        "unknown rule",
        _set(["exam", "rules", "lunch_break"], "1h"),
        ["exam.rules.lunch_break", "未知的规则"],
    ),
    ("no questions", _drop(["exam", "questions"]), ["exam.questions", "必填"]),
    (
        "missing attachment",
        _set(["exam", "attachments", 0, "file"], "gone.pdf"),
        ["exam.attachments[0].file", "gone.pdf"],
    ),
    ("unknown staff role", _set(["staff", 0, "roles"], ["boss"]), ["staff[0].roles", "boss"]),
    ("staff in unknown room", _set(["staff", 0, "rooms"], ["R77"]), ["staff[0].rooms", "R77"]),
    ("missing title", _drop(["exam", "title"]), ["exam.title", "必填"]),
    (
        "entry before login",
        _set(["exam", "rules", "entry_opens_before"], "1h"),
        ["exam.rules.entry_opens_before"],
    ),
]


@pytest.mark.parametrize(("case", "change", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_exam_files(
    cli_env: dict[str, str],
    tmp_path: Path,
    case: str,
    change: Callable[[dict[str, Any]], None],
    expected: list[str],
) -> None:
    doc = copy.deepcopy(exam_doc())
    change(doc)
    path = write_exam(tmp_path / "bad", doc)
    before = _counts(cli_env["INVIGIL_DATABASE_URL"])
    result = _run(cli_env, path)
    assert result.exit_code == 1, result.output
    for text in expected:
        assert text in result.stderr, f"{case}: {text!r} not in\n{result.stderr}"
    assert "第" in result.stderr and "行" in result.stderr  # the line it is on
    assert "exam_id" not in result.stdout
    assert _counts(cli_env["INVIGIL_DATABASE_URL"]) == before
    blobs = Path(cli_env["INVIGIL_DATA_DIR"]) / "blobs"
    assert not any(p.is_file() for p in blobs.rglob("*") if ".tmp" not in p.parts)


RAW: list[tuple[str, bytes, list[str]]] = [
    ("yaml syntax", b"exam:\n  title: [unclosed\nrooms: []\n", ["YAML", "第 3 行"]),
    ("not a mapping", b"- just\n- a list\n", ["应为键值映射"]),
    ("not utf-8", "exam:\n  title: 考试\n".encode("gbk"), ["UTF-8"]),
    ("empty file", b"", ["exam", "必填"]),
]


@pytest.mark.parametrize(("case", "content", "expected"), RAW, ids=[r[0] for r in RAW])
def test_unreadable_exam_files(
    cli_env: dict[str, str], tmp_path: Path, case: str, content: bytes, expected: list[str]
) -> None:
    path = tmp_path / "exam.yaml"
    path.write_bytes(content)
    before = _counts(cli_env["INVIGIL_DATABASE_URL"])
    result = _run(cli_env, path)
    assert result.exit_code == 1, result.output
    for text in expected:
        assert text in result.stderr, f"{case}: {text!r} not in\n{result.stderr}"
    assert _counts(cli_env["INVIGIL_DATABASE_URL"]) == before


def test_every_problem_is_reported_at_once(cli_env: dict[str, str], tmp_path: Path) -> None:
    doc = exam_doc()
    doc["exam"]["duration"] = "soon"
    doc["candidates"][0]["room"] = "R42"
    doc["candidates"][2]["photo"] = "group_t1.jpg"
    shutil.copy(FACES / "group_t1.jpg", tmp_path)
    result = _run(cli_env, write_exam(tmp_path / "many", doc))
    assert result.exit_code == 1
    assert "exam.duration" in result.stderr and "candidates[0].room" in result.stderr
    # Face problems are found after the structural ones are fixed: structure first, fast.
    doc["exam"]["duration"] = "20m"
    doc["candidates"][0]["room"] = "R01"
    doc["candidates"][1]["photo"] = "empty.jpg"
    result = _run(cli_env, write_exam(tmp_path / "many2", doc))
    assert result.exit_code == 1
    assert "candidates[1].photo" in result.stderr and "candidates[2].photo" in result.stderr


def test_unquoted_off_and_numeric_tickets_are_accepted(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "plain"
    path = write_exam(folder, exam_doc())
    text = path.read_text(encoding="utf-8")
    text = text.replace("evidence_camera: 'off'", "evidence_camera: off").replace("'1001'", "1001")
    assert "evidence_camera: off" in text
    path.write_text(text, encoding="utf-8")
    result = _run(cli_env, path)
    assert result.exit_code == 0, result.stderr
