"""Results, publication and the candidates' own score lookup.

Publishing freezes the scores (examiners can no longer submit), so what a candidate looks up is
what the admin published.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invigil.attempts.models import Attempt, Event
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, not_found
from invigil.exams.models import Candidate, Exam, Room
from invigil.review import audit, scoring, service
from invigil.review.models import Publication
from invigil.staff.models import StaffUser


def _rows(session: Session, exam: Exam) -> list[tuple[Attempt, Candidate, Room]]:
    return [
        (a, c, r)
        for a, c, r in session.execute(
            select(Attempt, Candidate, Room)
            .join(Candidate, Candidate.id == Attempt.candidate_id)
            .join(Room, Room.id == Attempt.room_id)
            .where(Attempt.exam_id == exam.id)
            .order_by(Room.code, Attempt.lot_number, Candidate.ticket)
        ).all()
    ]


def results(session: Session, ctx: AppContext, exam: Exam) -> dict[str, Any]:
    now = ctx.clock.now()
    rows = _rows(session, exam)
    totals = scoring.totals_by_attempt(session, exam.id)
    verdicts = service.current_verdicts(session, [a.id for a, _, _ in rows])
    publication = session.get(Publication, exam.id)
    out = []
    for a, c, r in rows:
        t = totals.get(a.id, [])
        out.append(
            {
                "attempt_id": a.id,
                "ticket": c.ticket,
                "name": c.name,
                "room": r.code,
                "room_name": r.name,
                "lot": a.lot_number,
                "absent": a.entered_at is None and now >= a.entry_closes_at,
                "entered": a.entered_at is not None,
                "examiners": len(t),
                "totals": t,
                "score": scoring.final_score(t, exam.scoring_rule),
                "verdict": service.verdict_brief(verdicts.get(a.id)),
            }
        )
    return {
        "exam": {
            "id": exam.id,
            "title": exam.title,
            "starts_at": iso(exam.starts_at),
            "utc_offset_minutes": exam.utc_offset_minutes,
        },
        "published": publication is not None,
        "published_at": iso(publication.published_at) if publication else None,
        "rule": exam.scoring_rule,
        "min_examiners": scoring.min_examiners(session, exam),
        "results": out,
    }


def admin_exams(session: Session, ctx: AppContext) -> list[dict[str, Any]]:
    now = ctx.clock.now()
    out = []
    for item in service.exams(session):
        exam = session.get(Exam, item["id"])
        assert exam is not None
        attempts = list(session.scalars(select(Attempt).where(Attempt.exam_id == exam.id)))
        ids = [a.id for a in attempts]
        totals = scoring.totals_by_attempt(session, exam.id)
        verdicts = service.current_verdicts(session, ids)
        flagged = session.scalar(
            select(func.count(func.distinct(Event.attempt_id))).where(
                Event.attempt_id.in_(ids), Event.severity == "violation"
            )
        )
        publication = session.get(Publication, exam.id)
        out.append(
            {
                **item,
                "published_at": iso(publication.published_at) if publication else None,
                "entered": sum(1 for a in attempts if a.entered_at is not None),
                "absent": sum(
                    1 for a in attempts if a.entered_at is None and now >= a.entry_closes_at
                ),
                "scored": sum(1 for a in ids if totals.get(a)),
                "flagged": int(flagged or 0),
                "violations": sum(
                    1 for v in verdicts.values() if v.violation and v.state == "confirmed"
                ),
            }
        )
    return out


def publish(
    session: Session, ctx: AppContext, user: StaffUser, exam: Exam, force: bool
) -> dict[str, Any]:
    session.scalars(select(Exam).where(Exam.id == exam.id).with_for_update()).one()
    if session.get(Publication, exam.id) is not None:
        raise APIError(409, "already_published", "成绩已发布。")
    now = ctx.clock.now()
    need = scoring.min_examiners(session, exam)
    totals = scoring.totals_by_attempt(session, exam.id)
    short = [
        {"room": r.code, "lot": a.lot_number, "examiners": len(totals.get(a.id, []))}
        for a, _, r in _rows(session, exam)
        if a.entered_at is not None and len(totals.get(a.id, [])) < need
    ]
    unruled = unruled_flags(session, exam)
    if (short or unruled) and not force:
        problems = []
        if short:
            problems.append(f"有 {len(short)} 名考生的评分不足 {need} 位考官")
        if unruled:
            problems.append(f"有 {len(unruled)} 名考生的疑似违纪尚未裁定（未裁定）")
        raise APIError(
            409,
            "scores_incomplete" if short else "flags_unruled",
            "；".join(problems) + "。确认仍要发布请选择强制发布。",
            lots=short,
            required=need,
            unruled=unruled,
        )
    forced = bool(short or unruled)
    session.add(
        Publication(exam_id=exam.id, published_at=now, published_by=user.username, forced=forced)
    )
    audit.record(
        session,
        ctx,
        user,
        "publish",
        exam_id=exam.id,
        detail={"forced": forced, "incomplete": short, "unruled": unruled},
    )
    return {"published": True, "published_at": iso(now), "forced": forced}


def unruled_flags(session: Session, exam: Exam) -> list[dict[str, Any]]:
    """Candidates with suspected violations and no final ruling in force (none, or a finding
    still awaiting its second reviewer): what the review page shows as 未裁定/待复核."""
    rows = _rows(session, exam)
    flagged = set(
        session.scalars(
            select(Event.attempt_id)
            .where(Event.attempt_id.in_([a.id for a, _, _ in rows]))
            .where(Event.severity == "violation")
            .distinct()
        )
    )
    verdicts = service.current_verdicts(session, list(flagged))
    out = []
    for a, _, r in rows:
        v = verdicts.get(a.id)
        if a.id in flagged and (v is None or v.state != "confirmed"):
            out.append({"room": r.code, "lot": a.lot_number})
    return out


def reopen(
    session: Session, ctx: AppContext, user: StaffUser, exam: Exam, reason: str
) -> dict[str, Any]:
    """Withdraw a publication so rulings and scores can change again; publishing again freezes
    them anew. Only an admin, with a reason, and in the audit log with what was withdrawn."""
    session.scalars(select(Exam).where(Exam.id == exam.id).with_for_update()).one()
    publication = session.get(Publication, exam.id)
    if publication is None:
        raise APIError(409, "not_published", "成绩尚未发布，无需重新开放。")
    reason = reason.strip()
    if not reason:
        raise APIError(422, "reason_required", "请填写重新开放审核的理由。")
    withdrawn = {
        "published_at": iso(publication.published_at),
        "published_by": publication.published_by,
        "forced": publication.forced,
    }
    session.delete(publication)
    session.flush()
    audit.record(
        session,
        ctx,
        user,
        "reopen",
        exam_id=exam.id,
        detail={"reason": reason, "withdrawn": withdrawn},
    )
    return {"published": False, "reopened_at": iso(ctx.clock.now()), "withdrawn": withdrawn}


def lookup(session: Session, exam_id: str, ticket: str, name: str) -> dict[str, Any]:
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise APIError(404, "not_found", "未找到该考试。")
    if session.get(Publication, exam.id) is None:
        raise APIError(409, "not_published", "成绩尚未发布，请以考试机构通知为准。")
    row = session.execute(
        select(Attempt, Candidate)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .where(Candidate.exam_id == exam.id, Candidate.ticket == ticket.strip())
    ).first()
    # One answer for an unknown ticket and a wrong name: the lookup confirms nothing.
    if row is None or row[1].name.strip() != name.strip():
        raise APIError(404, "not_found", "准考证号与姓名不匹配，请核对后重试。")
    attempt, candidate = row
    totals = scoring.totals_by_attempt(session, exam.id).get(attempt.id, [])
    verdict = service.current_verdicts(session, [attempt.id]).get(attempt.id)
    shown = verdict if verdict is not None and verdict.state == "confirmed" else None
    return {
        "published": True,
        "exam": {"id": exam.id, "title": exam.title},
        "ticket": candidate.ticket,
        "name": candidate.name,
        "absent": attempt.entered_at is None,
        "score": scoring.final_score(totals, exam.scoring_rule),
        "verdict": {"violation": shown.violation, "rule": shown.rule} if shown else None,
    }


def require_exam(session: Session, exam_id: str) -> Exam:
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise not_found("考试")
    return exam
