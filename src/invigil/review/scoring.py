"""Blind scoring: examiners see score sheets, never candidates.

A sheet is a random id standing for one attempt. Everything this module returns to an
examiner is built from an allow-list of fields (lot number, questions, the webcam recording by
index, answer boundaries, scores), so a name, ticket, photo, room or attempt id cannot slip in
when the attempt grows new fields. Another examiner's scores are shown only after one's own are
submitted, so nobody anchors on a colleague's numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.analysis import audio_jobs
from invigil.attempts.models import Attempt, Event
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, forbidden, not_found
from invigil.exams.models import Exam, Question, Room
from invigil.recordings.models import FINALIZED, Recording
from invigil.review import audit
from invigil.review.models import ExamStaff, Publication, Score, ScoreSheet
from invigil.staff.models import StaffUser

RULES = ("trimmed_mean", "mean")
TRIM_FROM = 5  # with at least this many examiners the highest and lowest totals are dropped


def final_score(totals: list[float], rule: str) -> float | None:
    if not totals:
        return None
    used = sorted(totals)
    if rule == "trimmed_mean" and len(used) >= TRIM_FROM:
        used = used[1:-1]
    return round(sum(used) / len(used), 2)


def examiner_count(session: Session, exam: Exam) -> int:
    return sum(
        1
        for roles in session.scalars(select(ExamStaff.roles).where(ExamStaff.exam_id == exam.id))
        if "examiner" in (roles or [])
    )


def min_examiners(session: Session, exam: Exam) -> int:
    if exam.scoring_min_examiners:
        return exam.scoring_min_examiners
    return max(1, examiner_count(session, exam))


# --- who scores what --------------------------------------------------------------------------


def require_examiner(user: StaffUser) -> None:
    if "examiner" not in user.roles:
        raise forbidden("只有考官可以评分。")


def examiner_exam_ids(session: Session, user: StaffUser) -> set[str]:
    if "examiner" not in user.roles:
        return set()
    return set(session.scalars(select(ExamStaff.exam_id).where(ExamStaff.staff_id == user.id)))


def require_examiner_of(session: Session, user: StaffUser, exam_id: str) -> Exam:
    require_examiner(user)
    if exam_id not in examiner_exam_ids(session, user):
        raise forbidden("您不是该考试的考官。")
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise not_found("考试")
    return exam


def scorable(attempt: Attempt, exam: Exam, now: Any) -> bool:
    """Entered and done answering: there is something to score and it will not change. Never
    before T, even for a candidate who entered early and finished before the questions were
    out: a sheet holds the questions, and they reach no one before T."""
    if now < exam.starts_at:
        return False
    return attempt.entered_at is not None and (
        attempt.finished_at is not None or now >= attempt.deadline
    )


def ensure_sheets(
    session: Session, ctx: AppContext, exam: Exam
) -> list[tuple[ScoreSheet, Attempt]]:
    """Every scorable attempt's sheet, created on first need, in room then lot order."""
    now = ctx.clock.now()
    rows = session.execute(
        select(Attempt, Room.code)
        .join(Room, Room.id == Attempt.room_id)
        .where(Attempt.exam_id == exam.id, Attempt.entered_at.is_not(None))
        .order_by(Room.code, Attempt.lot_number, Attempt.id)
    ).all()
    attempts = [a for a, _ in rows if scorable(a, exam, now)]
    existing = {
        s.attempt_id: s
        for s in session.scalars(select(ScoreSheet).where(ScoreSheet.exam_id == exam.id))
    }
    if any(a.id not in existing for a in attempts):
        # Two examiners opening the list at once must not both create a sheet for an attempt.
        session.scalars(select(Exam).where(Exam.id == exam.id).with_for_update()).one()
        existing = {
            s.attempt_id: s
            for s in session.scalars(select(ScoreSheet).where(ScoreSheet.exam_id == exam.id))
        }
        for a in attempts:
            if a.id not in existing:
                existing[a.id] = ScoreSheet(exam_id=exam.id, attempt_id=a.id, created_at=now)
                session.add(existing[a.id])
        session.flush()
    return [(existing[a.id], a) for a in attempts]


def exams_for(session: Session, ctx: AppContext, user: StaffUser) -> list[dict[str, Any]]:
    require_examiner(user)
    ids = examiner_exam_ids(session, user)
    published = set(session.scalars(select(Publication.exam_id)))
    out = []
    for exam in session.scalars(select(Exam).where(Exam.id.in_(ids)).order_by(Exam.starts_at)):
        pairs = ensure_sheets(session, ctx, exam)
        out.append(
            {
                "id": exam.id,
                "title": exam.title,
                "starts_at": iso(exam.starts_at),
                "deadline": iso(exam.deadline),
                "utc_offset_minutes": exam.utc_offset_minutes,
                "questions": len(exam.questions),
                "published": exam.id in published,
                # This examiner's progress, as the exam's own list counts it.
                "sheets": len(pairs),
                "scored": len(_scored_by(session, user, pairs)),
            }
        )
    return out


def _scored_by(
    session: Session, user: StaffUser, pairs: list[tuple[ScoreSheet, Attempt]]
) -> set[str]:
    """The sheets among ``pairs`` that ``user`` has submitted scores for."""
    return set(
        session.scalars(
            select(Score.sheet_id).where(
                Score.examiner_id == user.id, Score.sheet_id.in_([s.id for s, _ in pairs])
            )
        )
    )


def sheets(session: Session, ctx: AppContext, user: StaffUser, exam: Exam) -> dict[str, Any]:
    pairs = ensure_sheets(session, ctx, exam)
    mine = _scored_by(session, user, pairs)
    return {
        "exam": {"id": exam.id, "title": exam.title},
        "sheets": [
            {"sheet_id": s.id, "lot": a.lot_number, "submitted": s.id in mine} for s, a in pairs
        ],
    }


def sheet_for(session: Session, user: StaffUser, sheet_id: str) -> tuple[ScoreSheet, Attempt, Exam]:
    sheet = session.get(ScoreSheet, sheet_id)
    # One answer for "no such sheet" and "not your exam": sheet ids cannot be probed.
    if sheet is None or sheet.exam_id not in examiner_exam_ids(session, user):
        raise not_found("评分表")
    attempt = session.get(Attempt, sheet.attempt_id)
    exam = session.get(Exam, sheet.exam_id)
    assert attempt is not None and exam is not None
    return sheet, attempt, exam


def webcam_recordings(session: Session, attempt_id: str) -> list[Recording]:
    return list(
        session.scalars(
            select(Recording)
            .where(
                Recording.attempt_id == attempt_id,
                Recording.kind == "webcam",
                Recording.state == FINALIZED,
            )
            .order_by(Recording.created_at, Recording.id)
        )
    )


def _questions(session: Session, exam: Exam) -> list[Question]:
    return list(
        session.scalars(
            select(Question).where(Question.exam_id == exam.id).order_by(Question.position)
        )
    )


def _submissions(session: Session, sheet_id: str) -> list[Score]:
    return list(
        session.scalars(
            select(Score).where(Score.sheet_id == sheet_id).order_by(Score.submitted_at, Score.id)
        )
    )


def _boundary(e: Event) -> dict[str, Any]:
    """An answer marker, allow-listed: time, how it was found, which answer it ends."""
    data = e.data or {}
    question = data.get("question")
    return {
        "at": iso(e.at),
        "source": str(data.get("source", "audio")),
        "method": "keyword" if data.get("method") == "keyword" else "pause",
        "question": question if isinstance(question, int) else None,
        "extra": bool(data.get("extra")),
    }


def _audio_state(session: Session, attempt_id: str, recordings: list[Recording]) -> dict[str, Any]:
    done = session.execute(
        select(Event.kind, Event.data).where(
            Event.attempt_id == attempt_id, Event.kind.in_(audio_jobs.DONE_KINDS)
        )
    )
    return audio_jobs.progress([r.id for r in recordings], [(k, d) for k, d in done])


def sheet_view(session: Session, ctx: AppContext, user: StaffUser, sheet_id: str) -> dict[str, Any]:
    sheet, attempt, exam = sheet_for(session, user, sheet_id)
    if not scorable(attempt, exam, ctx.clock.now()):
        raise not_found("评分表")  # as for a sheet that does not exist: nothing to see yet
    submissions = _submissions(session, sheet.id)
    mine = next((s for s in submissions if s.examiner_id == user.id), None)
    others = None
    if mine is not None:
        others = [
            {"examiner": f"考官{i}", "scores": s.marks, "total": s.total}
            for i, s in enumerate(submissions, 1)
            if s.examiner_id != user.id
        ]
    recordings = webcam_recordings(session, attempt.id)
    boundaries = session.scalars(
        select(Event)
        .where(Event.attempt_id == attempt.id, Event.kind == "answer_end")
        .order_by(Event.seq)
    )
    audit.record(
        session,
        ctx,
        user,
        "scoring_view",
        exam_id=exam.id,
        attempt_id=attempt.id,
        detail={"sheet_id": sheet.id},
    )
    return {
        "sheet_id": sheet.id,
        "lot": attempt.lot_number,
        "exam": {"id": exam.id, "title": exam.title, "utc_offset_minutes": exam.utc_offset_minutes},
        "questions": [
            {"position": q.position, "text": q.text, "points": q.points}
            for q in _questions(session, exam)
        ],
        "recordings": [
            {
                "index": i,
                "kind": "webcam",
                "media_url": f"/api/v1/scoring/sheets/{sheet.id}/media/{i}",
                "started_at": iso(r.created_at),
                "duration_s": r.duration_s,
            }
            for i, r in enumerate(recordings)
        ],
        "audio": _audio_state(session, attempt.id, recordings),
        # The question release and the answer markers: the player's 开始答题 and 第N题 jumps.
        "questions_at": iso(exam.starts_at),
        "answer_boundaries": [_boundary(e) for e in boundaries],
        "my_scores": mine.marks if mine else None,
        "my_total": mine.total if mine else None,
        "others": others,
        "published": session.get(Publication, exam.id) is not None,
    }


def media_recording(
    session: Session, ctx: AppContext, user: StaffUser, sheet_id: str, index: int
) -> Recording:
    sheet, attempt, exam = sheet_for(session, user, sheet_id)
    if not scorable(attempt, exam, ctx.clock.now()):
        raise not_found("录像")
    recs = webcam_recordings(session, attempt.id)
    if not 0 <= index < len(recs):
        raise not_found("录像")
    audit.record(
        session,
        ctx,
        user,
        "scoring_media",
        exam_id=exam.id,
        attempt_id=attempt.id,
        detail={"sheet_id": sheet.id, "recording_id": recs[index].id, "index": index},
    )
    return recs[index]


def submit(
    session: Session, ctx: AppContext, user: StaffUser, sheet_id: str, values: list[float]
) -> dict[str, Any]:
    sheet, attempt, exam = sheet_for(session, user, sheet_id)
    if not scorable(attempt, exam, ctx.clock.now()):
        raise not_found("评分表")
    # One submission per examiner and sheet, even with two tabs racing.
    session.scalars(select(ScoreSheet).where(ScoreSheet.id == sheet.id).with_for_update()).one()
    if session.get(Publication, exam.id) is not None:
        raise APIError(409, "published", "成绩已发布，不能再评分。")
    if session.scalar(
        select(Score.id).where(Score.sheet_id == sheet.id, Score.examiner_id == user.id)
    ):
        raise APIError(409, "already_submitted", "您已提交过该考生的评分，不能修改。")
    questions = _questions(session, exam)
    if len(values) != len(questions):
        raise APIError(
            422,
            "invalid_scores",
            f"应为 {len(questions)} 道题各给一个分数。",
            expected=len(questions),
        )
    problems = [
        {"position": q.position, "points": q.points, "value": v}
        for q, v in zip(questions, values, strict=True)
        if not math.isfinite(v) or not 0 <= v <= q.points
    ]
    if problems:
        raise APIError(422, "invalid_scores", "分数须在 0 到该题满分之间。", problems=problems)
    marks = [int(v) if float(v).is_integer() else round(v, 2) for v in values]
    score = Score(
        sheet_id=sheet.id,
        examiner_id=user.id,
        marks=marks,
        total=round(float(sum(marks)), 2),
        submitted_at=ctx.clock.now(),
    )
    session.add(score)
    session.flush()
    audit.record(
        session,
        ctx,
        user,
        "score_submit",
        exam_id=exam.id,
        attempt_id=attempt.id,
        detail={"sheet_id": sheet.id, "scores": marks, "total": score.total},
    )
    return {"sheet_id": sheet.id, "scores": marks, "total": score.total}


def totals_by_attempt(session: Session, exam_id: str) -> dict[str, list[float]]:
    """Each attempt's examiner totals, in submission order."""
    out: dict[str, list[float]] = defaultdict(list)
    for attempt_id, total in session.execute(
        select(ScoreSheet.attempt_id, Score.total)
        .join(Score, Score.sheet_id == ScoreSheet.id)
        .where(ScoreSheet.exam_id == exam_id)
        .order_by(Score.submitted_at, Score.id)
    ):
        out[attempt_id].append(float(total))
    return out
