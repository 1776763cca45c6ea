"""Tables for the exam-affairs office: scores, absences, upload completeness, rulings, as CSV
(UTF-8 with a BOM, so Excel reads the Chinese) or XLSX."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts.models import Attempt
from invigil.core.context import AppContext
from invigil.exams.models import Candidate, Exam, Room
from invigil.recordings import status as recording_status
from invigil.review import publication, service

WHATS = ("scores", "absences", "uploads", "rulings")
FORMATS = ("csv", "xlsx")
TITLES = {"scores": "成绩", "absences": "缺考", "uploads": "上传完整性", "rulings": "违纪认定"}
# The staff pages' names (web/shared/names.js STREAMS), so the sheet says what the pages say.
STREAMS = {"webcam": "摄像头", "screen": "屏幕", "evidence": "手机佐证"}
PROBLEMS = {"no_recording": "无录像", "not_finalized": "未完成上传"}
# What a spreadsheet may read as the start of a formula (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 cannot hold: openpyxl refuses them, so a pasted control character in a
# reason would otherwise fail the whole export.
XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _verdict_text(v: dict[str, Any] | None) -> str:
    if v is None:
        return ""
    if not v["violation"]:
        return "不构成违纪"
    state = "已确认" if v["state"] == "confirmed" else "待复核"
    return f"违纪（{v['rule']}，{state}）"


def _scores(session: Session, ctx: AppContext, exam: Exam) -> list[list[Any]]:
    data = publication.results(session, ctx, exam)
    most = max((r["examiners"] for r in data["results"]), default=0)
    header = ["考场", "抽签号", "准考证号", "姓名", "状态", "评分考官数"]
    header += [f"考官{i}总分" for i in range(1, most + 1)] + ["最终成绩", "违纪认定"]
    rows: list[list[Any]] = [header]
    for r in data["results"]:
        state = "缺考" if r["absent"] else ("已参加" if r["entered"] else "未入场")
        totals = r["totals"] + [None] * (most - len(r["totals"]))
        rows.append(
            [
                r["room"],
                r["lot"],
                r["ticket"],
                r["name"],
                state,
                r["examiners"],
                *totals,
                r["score"],
                _verdict_text(r["verdict"]),
            ]
        )
    return rows


def _attempt_rows(session: Session, exam: Exam) -> list[tuple[Attempt, Candidate, Room]]:
    return [
        (a, c, r)
        for a, c, r in session.execute(
            select(Attempt, Candidate, Room)
            .join(Candidate, Candidate.id == Attempt.candidate_id)
            .join(Room, Room.id == Attempt.room_id)
            .where(Attempt.exam_id == exam.id)
            .order_by(Room.code, Candidate.ticket)
        ).all()
    ]


def _absences(session: Session, ctx: AppContext, exam: Exam) -> list[list[Any]]:
    now = ctx.clock.now()
    rows: list[list[Any]] = [["考场", "准考证号", "姓名", "人脸登录", "抽签号"]]
    for a, c, r in _attempt_rows(session, exam):
        if a.entered_at is None and now >= a.entry_closes_at:
            rows.append(
                [r.code, c.ticket, c.name, "是" if a.face_verified_at else "否", a.lot_number]
            )
    return rows


def _uploads(session: Session, ctx: AppContext, exam: Exam) -> list[list[Any]]:
    pairs = [(a, c, r) for a, c, r in _attempt_rows(session, exam) if a.entered_at is not None]
    recordings = recording_status.summaries(session, [a.id for a, _, _ in pairs])
    kinds = recording_status.expected_kinds(exam.evidence_camera)
    rows: list[list[Any]] = [
        ["考场", "准考证号", "姓名", *[f"{STREAMS[k]}录像数" for k in kinds], "完整", "缺失情况"]
    ]
    for a, c, r in pairs:
        recs = recordings.get(a.id, [])
        problems = recording_status.problems(recs, exam.evidence_camera)
        counts = [sum(1 for x in recs if x["kind"] == k) for k in kinds]
        detail = "；".join(
            f"{STREAMS.get(p['kind'], p['kind'])}{PROBLEMS.get(p['reason'], p['reason'])}"
            for p in problems
        )
        rows.append([r.code, c.ticket, c.name, *counts, "否" if problems else "是", detail])
    return rows


def _rulings(session: Session, ctx: AppContext, exam: Exam) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [
            "考场",
            "准考证号",
            "姓名",
            "类型",
            "事件序号",
            "是否违纪",
            "依据规则",
            "理由",
            "审核人",
            "时间",
            "状态",
            "复核人",
            "复核时间",
            "复核意见",
        ]
    ]
    for a, c, r in _attempt_rows(session, exam):
        for item in service.rulings_for_attempt(session, a.id):
            if item["type"] == "ruling":
                rows.append(
                    [
                        r.code,
                        c.ticket,
                        c.name,
                        "事件认定",
                        item["event_seq"],
                        "是" if item["violation"] else "否",
                        item["rule"] or "",
                        item["reason"],
                        item["by"],
                        item["at"],
                        "",
                        "",
                        "",
                        "",
                    ]
                )
            elif item["type"] == "verdict":
                state = "已确认" if item["state"] == "confirmed" else "待复核"
                if item["superseded_at"]:
                    state = "已被取代"
                rows.append(
                    [
                        r.code,
                        c.ticket,
                        c.name,
                        "最终认定",
                        "",
                        "是" if item["violation"] else "否",
                        item["rule"] or "",
                        item["reason"],
                        item["proposed_by"],
                        item["proposed_at"],
                        state,
                        item["confirmed_by"] or "",
                        item["confirmed_at"] or "",
                        item["confirm_reason"] or "",
                    ]
                )
    return rows


BUILDERS = {"scores": _scores, "absences": _absences, "uploads": _uploads, "rulings": _rulings}


def table(session: Session, ctx: AppContext, exam: Exam, what: str) -> list[list[Any]]:
    return BUILDERS[what](session, ctx, exam)


def _cell(value: Any) -> Any:
    # A name or reason starting like a formula must stay text in a spreadsheet, not run.
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return "" if value is None else value


def to_csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(rows: list[list[Any]], title: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row, 1):
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str):
                cell.value = XML_ILLEGAL.sub("", value)
                # Every string is text, never a formula; the quote prefix keeps Excel from
                # turning it into one when someone edits the cell.
                cell.data_type = "s"
                if value[:1] in FORMULA_START:
                    cell.quotePrefix = True
            else:
                cell.value = value
    if rows:
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
