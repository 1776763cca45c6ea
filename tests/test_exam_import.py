"""`invigil exam import`: every problem reported with where it is, nothing imported on error."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FACES, exam_doc, write_exam
from sqlalchemy import create_engine, func, select, update
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
    # The exam's start in its own offset, to the second: not UTC ISO with microseconds.
    assert "开考 2030-06-01 09:00:00 (UTC+08:00)" in result.stderr
    assert "3 名考生（3 张报名照片）" in result.stderr
    assert "3/3" in result.stderr  # the enrolment bar
    # Importing the same file again is refused: it names the exam and the two choices.
    again = _run(cli_env, path)
    assert again.exit_code == 1
    assert exam_id in again.stderr and "--replace" in again.stderr and "--as-new" in again.stderr
    assert "exam_id" not in again.stdout
    assert _counts(cli_env["INVIGIL_DATABASE_URL"])["exams"] == 1
    # --as-new creates a second exam; the same staff are updated instead of failing.
    twin = runner.invoke(app, ["exam", "import", str(path), "--as-new"], env=cli_env)
    assert twin.exit_code == 0, twin.output
    assert json.loads(twin.stdout.strip().splitlines()[-1])["exam_id"] != exam_id
    counts = _counts(cli_env["INVIGIL_DATABASE_URL"])
    assert counts["exams"] == 2 and counts["staff_users"] == 5


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
    (
        "yaml syntax",
        b"exam:\n  title: [unclosed\nrooms: []\n",
        ["YAML 语法错误", "第 2 行第 10 列", "方括号 [ 没有闭合"],
    ),
    (
        "yaml missing colon",
        "exam:\n  title 考试\n  duration: 20m\n".encode(),
        ["第 2 行", "缺少冒号"],
    ),
    ("yaml tab", b"exam:\n\ttitle: x\n", ["第 2 行第 1 列", "Tab"]),
    (
        "yaml open quote",
        b'exam:\n  title: "abc\nrooms: []\n',
        ["第 2 行第 10 列", "引号没有闭合"],
    ),
    (
        "yaml indentation",
        b"exam:\n  title: x\n duration: 20m\n",
        ["第 3 行", "缩进不一致"],
    ),
    (
        "yaml colon in value",
        "exam:\n  title: 面试: 第一场\n".encode(),
        ["第 2 行", "引号"],
    ),
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
    if case.startswith("yaml"):
        # Chinese, not PyYAML's English.
        assert "while parsing" not in result.stderr and "expected" not in result.stderr
    assert _counts(cli_env["INVIGIL_DATABASE_URL"]) == before


def test_every_problem_is_reported_at_once(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Structure and photos in one run: the photos of candidates whose own fields are valid are
    checked even when other parts of the file have problems."""
    doc = exam_doc()
    doc["exam"]["duration"] = "soon"
    doc["candidates"][0]["room"] = "R42"  # this candidate's photo is not checked
    doc["candidates"][0]["photo"] = "empty.jpg"
    doc["candidates"][1]["photo"] = "empty.jpg"
    doc["candidates"][2]["photo"] = "group_t1.jpg"
    result = _run(cli_env, write_exam(tmp_path / "many", doc))
    assert result.exit_code == 1
    err = result.stderr
    assert "exam.duration" in err and "candidates[0].room" in err
    assert "candidates[1].photo" in err and "未检测到人脸" in err
    assert "candidates[2].photo" in err and "多张人脸" in err
    assert "candidates[0].photo" not in err
    assert "考试文件有 4 处问题" in err
    # Listed in file order, each with its line.
    listed = [line for line in err.splitlines() if line.startswith("  - ")]
    lines = [int(m.group(1)) for m in (re.search(r"第 (\d+) 行", x) for x in listed) if m]
    assert len(lines) == 4 and lines == sorted(lines), listed


def test_past_start_is_told_in_the_exams_offset(cli_env: dict[str, str], tmp_path: Path) -> None:
    doc = exam_doc()
    doc["exam"]["starts_at"] = "2020-01-01T09:00:00+08:00"
    result = _run(cli_env, write_exam(tmp_path / "past", doc))
    assert result.exit_code == 1
    line = next(x for x in result.stderr.splitlines() if "已经过去" in x)
    assert "2020-01-01 09:00:00 (UTC+08:00)" in line
    assert "服务器时间" in line and "(UTC+08:00)" in line.split("服务器时间")[1]
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", line), line  # no microseconds
    assert "+00:00" not in line


def test_no_progress_bar_when_no_photo_is_enrolled(cli_env: dict[str, str], tmp_path: Path) -> None:
    doc = exam_doc()
    doc["exam"]["practice"] = True
    for cand in doc["candidates"]:
        del cand["photo"]
    result = _run(cli_env, write_exam(tmp_path / "practice", doc))
    assert result.exit_code == 0, result.output
    assert "0/?" not in result.stderr and "人脸建档" not in result.stderr
    assert "3 名考生（0 张报名照片）" in result.stderr


def test_replace_an_unused_exam_but_never_a_used_one(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    url = cli_env["INVIGIL_DATABASE_URL"]
    path = write_exam(tmp_path / "exam", exam_doc())
    first = json.loads(_run(cli_env, path).stdout.strip().splitlines()[-1])["exam_id"]
    blobs = Path(cli_env["INVIGIL_DATA_DIR"]) / "blobs" / "exams"
    assert (blobs / first).is_dir()
    before = _counts(url)

    unknown = runner.invoke(app, ["exam", "import", str(path), "--replace", "0" * 32], env=cli_env)
    assert unknown.exit_code == 1 and "没有" in unknown.stderr
    both = runner.invoke(
        app, ["exam", "import", str(path), "--replace", first, "--as-new"], env=cli_env
    )
    assert both.exit_code == 1
    assert _counts(url) == before

    replaced = runner.invoke(app, ["exam", "import", str(path), "--replace", first], env=cli_env)
    assert replaced.exit_code == 0, replaced.output
    second = json.loads(replaced.stdout.strip().splitlines()[-1])["exam_id"]
    assert second != first and f"已替换 {first}" in replaced.stderr
    assert _counts(url) == before  # the same rows again, no twin, no stale jobs
    assert not (blobs / first).exists() and (blobs / second).is_dir()

    # Once a candidate has logged in, the exam is evidence: it is not replaced.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(Attempt)
            .where(Attempt.exam_id == second)
            .values(face_verified_at=datetime(2030, 6, 1, 0, 40, tzinfo=UTC))
        )
    engine.dispose()
    refused = runner.invoke(app, ["exam", "import", str(path), "--replace", second], env=cli_env)
    assert refused.exit_code == 1 and "不能替换" in refused.stderr
    assert _counts(url) == before


def test_paths_must_stay_inside_the_exam_folder(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Absolute paths, ../ and symlinks that leave the folder are errors, all in one run; a
    symlink to a file inside the folder is fine."""
    secret = tmp_path / "secret.key"
    secret.write_text("server secret", encoding="utf-8")
    folder = tmp_path / "exam"
    doc = exam_doc()
    doc["exam"]["attachments"] = [
        {"title": "须知", "file": "notice.txt"},
        {"title": "绝对路径", "file": str(secret)},
        {"title": "上级目录", "file": "../secret.key"},
        {"title": "链接到外面", "file": "outside-link.txt"},
        {"title": "链接到里面", "file": "inside-link.txt"},
    ]
    doc["candidates"][0]["photo"] = "../exam/../secret.key"
    doc["candidates"][1]["photo"] = "face-link.jpg"
    path = write_exam(folder, doc)
    (folder / "outside-link.txt").symlink_to(secret)
    (folder / "inside-link.txt").symlink_to(folder / "notice.txt")
    (folder / "face-link.jpg").symlink_to(FACES / "biden.jpg")  # a real face, but outside
    before = _counts(cli_env["INVIGIL_DATABASE_URL"])
    result = _run(cli_env, path)
    assert result.exit_code == 1, result.output
    err = result.stderr
    assert "exam.attachments[1].file" in err and "不能是绝对路径" in err
    assert "exam.attachments[2].file" in err and "exam.attachments[3].file" in err
    assert err.count("考试文件所在文件夹之外") == 4, err
    assert "candidates[0].photo" in err and "candidates[1].photo" in err
    assert "attachments[0]" not in err and "attachments[4]" not in err
    assert "考试文件有 5 处问题" in err
    for line in (x for x in err.splitlines() if "之外" in x or "绝对路径" in x):
        assert re.search(r"第 \d+ 行", line), line
    assert _counts(cli_env["INVIGIL_DATABASE_URL"]) == before

    # Without the escaping entries the same folder (inner symlink included) imports.
    doc["exam"]["attachments"] = [doc["exam"]["attachments"][i] for i in (0, 4)]
    doc["candidates"][0]["photo"] = "obama.jpg"
    doc["candidates"][1]["photo"] = "biden.jpg"
    result = _run(cli_env, write_exam(folder, doc))
    assert result.exit_code == 0, result.output


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
