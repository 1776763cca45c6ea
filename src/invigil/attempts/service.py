"""The candidate's exam day: login, lot, attachments, entering, questions, finishing.

Every decision reads the server clock (``ctx.clock``); nothing the client sends about time is
trusted. Question text leaves this module only through :func:`questions` from T on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts import consent, events, phone, presence, sessions
from invigil.attempts.models import AttachmentRead, Attempt, AuthSession, Event
from invigil.attempts.stage import stage_of
from invigil.core.clock import ensure_utc, iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, not_found
from invigil.exams import lots
from invigil.exams.models import Attachment, Candidate, Exam, Question
from invigil.identity import faces, liveness, quality
from invigil.identity.models import LivenessChallenge
from invigil.proctoring.warnings import warnings_for
from invigil.recordings import status as recording_status

log = logging.getLogger(__name__)

LOGIN_EVENT_KINDS = ("login", "login_failed", "session_active_elsewhere")
QUESTIONS_DELIVERED = "questions_delivered"


def schedule(exam: Exam, attempt: Attempt | None = None) -> dict[str, str]:
    """The exam's windows; with ``attempt``, that candidate's own (extra time, late entry)."""
    if attempt is not None:
        return {
            **schedule(exam),
            "entry_closes_at": iso(attempt.entry_closes_at),
            "deadline": iso(attempt.deadline),
            "uploads_close_at": iso(attempt.uploads_close_at),
        }
    return {
        "login_opens_at": iso(exam.login_opens_at),
        "lot_closes_at": iso(exam.lot_closes_at),
        "entry_opens_at": iso(exam.entry_opens_at),
        "starts_at": iso(exam.starts_at),
        "entry_closes_at": iso(exam.entry_closes_at),
        "deadline": iso(exam.deadline),
        "uploads_close_at": iso(exam.uploads_close_at),
    }


def unread_attachment_ids(session: Session, attempt: Attempt) -> list[str]:
    read = select(AttachmentRead.attachment_id).where(AttachmentRead.attempt_id == attempt.id)
    return list(
        session.scalars(
            select(Attachment.id)
            .where(Attachment.exam_id == attempt.exam_id, Attachment.id.not_in(read))
            .order_by(Attachment.position)
        )
    )


def current_stage(session: Session, attempt: Attempt, now: datetime) -> str:
    return stage_of(attempt.exam, attempt, now, len(unread_attachment_ids(session, attempt)))


# --- login -----------------------------------------------------------------------------------


@dataclass
class LoginResult:
    token: str
    attempt: Attempt
    stage: str


def _login_refused(
    session: Session,
    attempt: Attempt,
    now: datetime,
    status: int,
    code: str,
    message: str,
    data: dict[str, Any],
    **extra: Any,
) -> APIError:
    kind = "session_active_elsewhere" if code == "session_active_elsewhere" else "login_failed"
    events.append(session, attempt.id, kind, at=now, actor="candidate", data={"code": code, **data})
    return APIError(status, code, message, keep_changes=True, **extra)


def check_login_window(exam: Exam, attempt: Attempt | None, now: datetime) -> None:
    """Login opens at T - login_opens_before; it closes at the deadline for those who never
    entered and when uploads close for those who did."""
    if now < exam.login_opens_at:
        raise APIError(
            403,
            "login_not_open",
            f"登录尚未开放，将于 {iso(exam.login_opens_at)} 开放。",
            opens_at=iso(exam.login_opens_at),
        )
    if attempt is None:
        return
    if now >= attempt.uploads_close_at or (attempt.entered_at is None and now >= attempt.deadline):
        raise APIError(403, "exam_over", "本场考试已结束，无法登录。")


def login_target(
    session: Session, exam_id: str, ticket: str, now: datetime
) -> tuple[Exam, Candidate, Attempt]:
    """The exam, candidate and attempt a login (or a request for manual approval) is for,
    once the login window allows it."""
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise APIError(404, "unknown_exam", "找不到这场考试，请检查考试链接是否正确。")
    check_login_window(exam, None, now)
    candidate = session.scalar(
        select(Candidate).where(Candidate.exam_id == exam.id, Candidate.ticket == ticket.strip())
    )
    if candidate is None:
        log.info("login with unknown ticket for exam %s", exam.id)
        raise APIError(404, "unknown_candidate", "准考证号不存在，请核对后重新输入。")
    attempt = session.scalars(select(Attempt).where(Attempt.candidate_id == candidate.id)).one()
    check_login_window(exam, attempt, now)
    return exam, candidate, attempt


def login(
    session: Session,
    ctx: AppContext,
    exam_id: str,
    ticket: str,
    face_jpeg: bytes,
    presented_token: str | None,
    client_info: dict[str, str],
    challenge_id: str | None = None,
    frames: list[bytes] | None = None,
) -> LoginResult:
    now = ctx.clock.now()
    # Rate limits (per client address, per ticket) are the endpoint's: attempts/api.py.
    exam, candidate, attempt = login_target(session, exam_id, ticket, now)
    if consent.refused(session, attempt):
        # The candidate declined face recognition (attempts.consent): their face is not processed.
        raise APIError(
            409,
            "face_consent_refused",
            "您已选择不使用人脸识别，系统未处理这张照片。请等待技术服务人工核验身份，或在页面上改为同意后再登录。",
        )

    # With liveness "off" the one image decides, exactly as before; with "required" the
    # photo also passes the quality gate and the challenge's frames are judged below.
    challenge = _redeem_challenge(session, exam, attempt, now, challenge_id)
    photo: faces.Pixels | None = None
    try:
        if challenge is None:
            embedding = faces.embed_single_face(face_jpeg)
        else:
            photo, located, _ = quality.check_photo(face_jpeg)
            embedding = faces.embed_located(photo, located)
    except faces.FaceError as exc:
        raise _login_refused(session, attempt, now, 422, exc.code, exc.message, {}) from None

    distance: float | None = None
    if candidate.face_embedding is None:
        if not exam.practice:
            raise APIError(
                409, "not_enrolled", "您没有报名照片，无法进行人脸比对，请联系技术服务。"
            )
        # 模拟考试: the first successful login's face becomes the reference. Its image is kept
        # where an enrolment photo would be, so tech support and reviewers see what it is.
        candidate.face_embedding = faces.embedding_to_bytes(embedding)
        candidate.photo_key = f"exams/{exam.id}/reference/{candidate.id}.jpg"
        ctx.blobs.put(candidate.photo_key, face_jpeg)
    else:
        distance = faces.face_distance(
            faces.embedding_from_bytes(candidate.face_embedding), embedding
        )
        if distance > faces.MATCH_THRESHOLD:
            raise _login_refused(
                session,
                attempt,
                now,
                403,
                "face_mismatch",
                "人脸与报名照片不一致。请正对摄像头、摘下眼镜或帽子、保持光线充足后重试。",
                {"distance": round(distance, 4)},
            )

    live: dict[str, Any] | None = None
    if challenge is not None and photo is not None:
        try:
            verdict = liveness.check_frames(
                challenge.steps.split(","), frames or [], photo, embedding
            )
        except liveness.LivenessFailed as exc:
            # A login_failed event like any other, so it counts towards asking tech support.
            raise _login_refused(
                session,
                attempt,
                now,
                403,
                "liveness_failed",
                exc.message,
                exc.data,
                reason=exc.data.get("reason"),
                not_seen=exc.data.get("not_seen", []),
            ) from None
        live = verdict.log_data()

    alive = timedelta(seconds=ctx.settings.session_alive_seconds)
    presented = sessions.find(session, ctx, presented_token)
    others = [
        s
        for s in sessions.live_sessions(session, attempt.id, "candidate", now, alive)
        if presented is None or s.id != presented.id
    ]
    if others:
        raise _login_refused(
            session,
            attempt,
            now,
            409,
            "session_active_elsewhere",
            "您的账号正在另一台设备上使用。如需更换设备，请先关闭原设备上的考试页面，约 20 秒后再试。",
            {"client": client_info},
        )

    issued = sessions.issue(
        session, ctx, "candidate", now, attempt_id=attempt.id, client_info=client_info
    )
    sessions.revoke_others(session, attempt.id, "candidate", issued.session.id, now, "replaced")
    attempt.face_verified_at = attempt.face_verified_at or now
    events.append(
        session,
        attempt.id,
        "login",
        at=now,
        actor="candidate",
        data={
            "distance": None if distance is None else round(distance, 4),
            "enrolled_now": distance is None,
            "client": client_info,
            **({"liveness": live} if live is not None else {}),
        },
    )
    return LoginResult(issued.token, attempt, current_stage(session, attempt, now))


def _redeem_challenge(
    session: Session, exam: Exam, attempt: Attempt, now: datetime, challenge_id: str | None
) -> LivenessChallenge | None:
    if not exam.liveness:
        return None
    if not challenge_id:
        # A client that skipped the challenge, not a failed face: not logged, not counted.
        raise APIError(
            400,
            "liveness_required",
            "本场考试的人脸登录需要先完成活体检测（按提示转头），请刷新页面后重试。",
        )
    try:
        return liveness.redeem(session, attempt.id, challenge_id, now)
    except liveness.ChallengeError as exc:
        raise _login_refused(session, attempt, now, 403, exc.code, exc.message, {}) from None


def liveness_challenge(
    session: Session, ctx: AppContext, exam_id: str, ticket: str
) -> dict[str, Any]:
    """A new head-turn challenge for the candidate's next login, or ``required: false`` when
    the exam's login is the single photo."""
    now = ctx.clock.now()
    exam, _, attempt = login_target(session, exam_id, ticket, now)
    if not exam.liveness:
        return {"required": False}
    # Limited per client address by the endpoint (attempts/api.py), never per ticket: anyone
    # could otherwise use up a candidate's challenges.
    return {"required": True, **liveness.describe(liveness.issue(session, attempt.id, now))}


# --- the exam day after login -----------------------------------------------------------------


def state(session: Session, ctx: AppContext, attempt: Attempt, auth: AuthSession) -> dict[str, Any]:
    now = ctx.clock.now()
    exam = attempt.exam
    candidate = attempt.candidate
    read = set(
        session.scalars(
            select(AttachmentRead.attachment_id).where(AttachmentRead.attempt_id == attempt.id)
        )
    )
    unread = sum(1 for a in exam.attachments if a.id not in read)
    return {
        "now": iso(now),
        "stage": stage_of(exam, attempt, now, unread),
        "lot": attempt.lot_number,
        "attempt_id": attempt.id,
        "exam": {
            "id": exam.id,
            "title": exam.title,
            "help_phone": exam.help_phone,
            "practice": exam.practice,
            "evidence_camera": "required" if exam.evidence_camera else "off",
            "liveness": "required" if exam.liveness else "off",
            "question_count": len(exam.questions),
            "utc_offset_minutes": exam.utc_offset_minutes,
        },
        "candidate": {
            "ticket": candidate.ticket,
            "name": candidate.name,
            "room": {"id": candidate.room.code, "name": candidate.room.name},
        },
        "schedule": schedule(exam, attempt),
        "attachments": [
            {
                "id": a.id,
                "title": a.title,
                "read": a.id in read,
                "content_type": a.content_type,
                "size": a.size,
                "url": f"/api/v1/candidate/attachments/{a.id}",
            }
            for a in exam.attachments
        ],
        "entered_at": iso(attempt.entered_at) if attempt.entered_at else None,
        "finished_at": iso(attempt.finished_at) if attempt.finished_at else None,
        "evidence": phone.evidence_status(session, ctx, attempt),
        "recordings": recording_status.for_attempt(session, attempt.id),
        "warnings": warnings_for(session, attempt.id),
        "session": {"kind": auth.kind, "expires_at": iso(auth.expires_at)},
    }


def draw_lot(session: Session, ctx: AppContext, attempt: Attempt) -> int:
    return lots.draw(session, attempt.id, ctx.clock.now(), by="candidate")


def attachment_for(session: Session, attempt: Attempt, attachment_id: str) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.exam_id != attempt.exam_id:
        raise not_found("附件")
    return attachment


def mark_read(session: Session, ctx: AppContext, attempt: Attempt, attachment_id: str) -> None:
    attachment = attachment_for(session, attempt, attachment_id)
    if session.get(AttachmentRead, (attempt.id, attachment.id)) is not None:
        return
    now = ctx.clock.now()
    session.add(AttachmentRead(attempt_id=attempt.id, attachment_id=attachment.id, read_at=now))
    events.append(
        session,
        attempt.id,
        "attachment_read",
        at=now,
        actor="candidate",
        data={"attachment_id": attachment.id, "title": attachment.title},
    )


def enter(session: Session, ctx: AppContext, attempt: Attempt) -> None:
    now = ctx.clock.now()
    exam = attempt.exam
    if attempt.finished_at is not None:
        raise APIError(409, "already_finished", "您已交卷，不能再次进入考试。")
    if attempt.entered_at is not None:
        return
    if now < exam.entry_opens_at:
        raise APIError(
            403,
            "entry_not_open",
            f"尚未到入场时间，将于 {iso(exam.entry_opens_at)} 开放，请稍候点击【刷新】。",
            opens_at=iso(exam.entry_opens_at),
        )
    if now >= attempt.entry_closes_at:
        raise APIError(
            403,
            "entry_closed",
            "入场时间已过（开考后 3 分钟内须入场），按缺考处理。如有疑问请联系监考员。",
        )
    unread = unread_attachment_ids(session, attempt)
    if unread:
        raise APIError(
            409,
            "attachments_unread",
            "请先阅读全部考试附件，并逐一点击【已阅】。",
            unread=unread,
        )
    if (
        exam.evidence_camera
        and phone.evidence_status(session, ctx, attempt)["status"] != "recording"
    ):
        raise APIError(
            409,
            "evidence_not_ready",
            "请先用手机扫码绑定佐证摄像头，完成环拍并开始录制后，再进入考试。",
        )
    if attempt.lot_number is None:
        lots.draw(session, attempt.id, now, by="auto")
    attempt.entered_at = now
    events.append(session, attempt.id, "entered", at=now, actor="candidate")
    presence.schedule(session, exam.id, now)


def questions(session: Session, ctx: AppContext, attempt: Attempt) -> dict[str, Any]:
    now = ctx.clock.now()
    exam = attempt.exam
    if now < exam.starts_at:
        raise APIError(
            403,
            "not_started",
            "考试尚未开始，试题将在开考时自动显示。",
            starts_at=iso(exam.starts_at),
        )
    if attempt.entered_at is None:
        raise APIError(403, "not_entered", "您未进入考试，无法查看试题。")
    delivered = select(Event.seq).where(
        Event.attempt_id == attempt.id, Event.kind == QUESTIONS_DELIVERED
    )
    if session.scalar(delivered.limit(1)) is None:
        # When the questions first reached this candidate's computer, in the log: a reviewer
        # facing "they never showed" or "they showed late" answers it from the server's time.
        events.append(session, attempt.id, QUESTIONS_DELIVERED, at=now, data={})
    items = session.scalars(
        select(Question).where(Question.exam_id == exam.id).order_by(Question.position)
    )
    return {
        "questions": [{"number": q.position, "text": q.text} for q in items],
        "deadline": iso(attempt.deadline),
        "now": iso(now),
    }


def finish(session: Session, ctx: AppContext, attempt: Attempt, reason: str) -> None:
    now = ctx.clock.now()
    if attempt.finished_at is not None:
        return
    if attempt.entered_at is None:
        raise APIError(409, "not_entered", "您尚未进入考试。")
    # At or after the deadline the attempt is over whenever the client says so.
    attempt.finished_at = min(now, attempt.deadline)
    data: dict[str, Any] = {"reason": reason, "early": now < attempt.deadline}
    if now < ensure_utc(attempt.exam.starts_at):
        data["before_start"] = True  # gave up before the questions were out
    events.append(session, attempt.id, "finished", at=now, actor="candidate", data=data)


def record_client_event(
    session: Session, ctx: AppContext, attempt: Attempt, kind: str, data: dict[str, Any]
) -> Event:
    at, data = events.dated_report(ctx.clock.now(), data)
    return events.append(session, attempt.id, kind, at=at, actor="candidate", data=data)
