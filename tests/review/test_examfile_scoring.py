"""Exam file additions for scoring: per-question points and ``exam.scoring``."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import T, exam_doc, write_exam

from invigil.exams.examfile import ExamFileError, parse_exam_file

BEFORE = T.replace(year=2029)


def test_defaults(tmp_path: Path) -> None:
    spec = parse_exam_file(write_exam(tmp_path, exam_doc()), BEFORE)
    assert spec.question_points == [10, 10]
    assert spec.scoring_rule == "trimmed_mean" and spec.scoring_min_examiners is None


def test_points_and_rule(tmp_path: Path) -> None:
    doc = exam_doc()
    doc["exam"]["questions"][1]["points"] = 30
    doc["exam"]["scoring"] = {"rule": "mean", "min_examiners": 3}
    spec = parse_exam_file(write_exam(tmp_path, doc), BEFORE)
    assert spec.question_points == [10, 30]
    assert spec.scoring_rule == "mean" and spec.scoring_min_examiners == 3


def test_problems_name_the_field_and_line(tmp_path: Path) -> None:
    doc = exam_doc()
    doc["exam"]["questions"][0]["points"] = 0
    doc["exam"]["questions"][1]["points"] = "ten"
    doc["exam"]["scoring"] = {"rule": "median", "min_examiners": True, "weights": [1]}
    path = write_exam(tmp_path, doc)
    with pytest.raises(ExamFileError) as exc:
        parse_exam_file(path, BEFORE)
    lines = path.read_text(encoding="utf-8").splitlines()
    found = {p.where: p for p in exc.value.problems}
    assert set(found) >= {
        "exam.questions[0].points",
        "exam.questions[1].points",
        "exam.scoring.rule",
        "exam.scoring.min_examiners",
        "exam.scoring.weights",
    }
    rule_line = found["exam.scoring.rule"].line
    assert rule_line is not None and "median" in lines[rule_line - 1]
    points_line = found["exam.questions[1].points"].line
    assert points_line is not None and "ten" in lines[points_line - 1]
