"""Separate consent to face recognition (人脸识别技术应用安全管理办法, in force 2025-06-01).

Before the desk takes the first face capture it shows what is captured, why and how long it is
kept (the exam's retention), and the candidate chooses 同意 or 不同意. The choice is an event in
the candidate's log, recorded before login the way a face-login help request is: the exam id
and the ticket name the attempt, which exists from the import on. A candidate who declines is
checked by tech support by hand instead (proctoring.login_help, with no face capture), and the
server then refuses face logins for that attempt until a later consent: a face that was not
consented to is never processed.

The notice is public (no token): an exam's title and retention are no secret, and a candidate
must read them before anything about them is known.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.models import Attempt, Event
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError
from invigil.evidence import retention
from invigil.evidence.models import ExamRetention
from invigil.exams.models import Exam

GIVEN = "face_consent_given"
REFUSED = "face_consent_refused"
KINDS = (GIVEN, REFUSED)
# The notice the desk shows (web/desk/consent.js); bump when its wording changes in substance.
NOTICE_VERSION = "2025-06-01.1"
# A ticket is not a secret: cap what anyone knowing one can write into that candidate's log.


def notice(session: Session, exam_id: str) -> dict[str, Any]:
    """What the desk needs to tell the candidate before the first capture."""
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise APIError(404, "unknown_exam", "找不到这场考试，请检查考试链接是否正确。")
    row = session.get(ExamRetention, exam.id)
    seconds = row.retention_s if row is not None else retention.default_retention_s()
    return {
        "exam": {
            "id": exam.id,
            "title": exam.title,
            "help_phone": exam.help_phone,
            "utc_offset_minutes": exam.utc_offset_minutes,
            "liveness": "required" if exam.liveness else "off",
            # 模拟考试: no enrolment photo; the first login's face becomes the reference.
            "practice": exam.practice,
        },
        "retention": {
            "days": max(1, round(seconds / 86400)),
            "purge_at": iso(retention.purge_at(session, exam)),
        },
        "notice_version": NOTICE_VERSION,
    }


def record(
    session: Session,
    ctx: AppContext,
    exam_id: str,
    ticket: str,
    consent: bool,
    client_info: dict[str, str],
) -> dict[str, Any]:
    # Imported here: attempts.service imports this module for its login check.
    from invigil.attempts.service import login_target

    now = ctx.clock.now()
    exam, _candidate, attempt = login_target(session, exam_id, ticket, now)
    info = notice(session, exam.id)
    event = events.append(
        session,
        attempt.id,
        GIVEN if consent else REFUSED,
        at=now,
        actor="candidate",
        data={
            "notice_version": NOTICE_VERSION,
            "retention_days": info["retention"]["days"],
            "client": client_info,
        },
    )
    return {"consent": consent, "seq": event.seq, "at": iso(now)}


def refused(session: Session, attempt: Attempt) -> bool:
    """True when the candidate's latest decision was to decline face recognition."""
    latest = session.scalar(
        select(Event.kind)
        .where(Event.attempt_id == attempt.id, Event.kind.in_(KINDS))
        .order_by(Event.seq.desc())
        .limit(1)
    )
    return latest == REFUSED
