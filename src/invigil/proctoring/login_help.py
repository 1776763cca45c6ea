"""Face-login help: a candidate whose face login kept failing asks tech support to let them in.

The candidate has no token: the request returns a one-time ``poll_token`` (stored as a keyed
digest) to poll with. Tech support (and admins) of the room see the live capture beside the
enrolment photo and approve or reject with a reason; both are audited in the candidate's event
log. An approval counts as face verification; the first poll after it issues the candidate's
session, once, under the same rules as a face login (login window, exam over, one live
session).

Anyone who knows a ticket number can ask, so requests are limited in sliding windows (per
address, per attempt and address, per attempt) and a request never cancels another address's
pending one: tech support sees every client's capture and approves the candidate's, which
cancels the rest. Before approving they see whether the candidate is logged in elsewhere.
"""

from __future__ import annotations

import hmac
import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from invigil.attempts import consent, events, sessions
from invigil.attempts.models import Attempt, Event
from invigil.attempts.service import check_login_window, current_stage, login_target
from invigil.core.clock import ensure_utc, iso
from invigil.core.context import AppContext
from invigil.core.db import new_id
from invigil.core.errors import APIError, forbidden, not_found
from invigil.core.security import new_token, token_digest
from invigil.exams.models import Candidate
from invigil.proctoring.models import (
    APPROVED,
    CANCELLED,
    PENDING,
    REJECTED,
    LoginHelpRequest,
)
from invigil.staff import service as staff_service
from invigil.staff.models import StaffUser

# Failed face logins before a candidate may ask (the desk offers the button from then on).
FAILURES_BEFORE_HELP = 3
# Requests are unauthenticated (the candidate has no token yet), so they are limited in a
# sliding window of the app's clock, not for the attempt's whole life: whoever uses up a
# budget waits WINDOW, never forever. Per attempt and asking address, so someone else
# asking for a candidate does not use up the candidate's own budget; and per attempt over all
# addresses, which bounds what tech support has to look at. (The API also limits each address
# over all tickets: PER_ADDRESS_LIMIT in proctoring/api.py.)
WINDOW = timedelta(minutes=15)
PER_CLIENT_IN_WINDOW = 5
PER_ATTEMPT_IN_WINDOW = 12
DECIDING_ROLES = frozenset({"tech", "admin"})
JPEG_MAGIC = b"\xff\xd8\xff"


def _too_many(exam_help_phone: str | None, oldest: datetime, now: datetime) -> APIError:
    retry = max(1, math.ceil((ensure_utc(oldest) + WINDOW - now).total_seconds()))
    minutes = (retry + 59) // 60
    return APIError(
        429,
        "too_many_requests",
        f"人工审核申请过于频繁，请 {minutes} 分钟后再试，或拨打考务电话联系技术服务。",
        help_phone=exam_help_phone,
        retry_after=retry,
        headers={"Retry-After": str(retry)},
    )


def _check_window(
    session: Session, attempt: Attempt, client_ip: str, now: datetime, help_phone: str | None
) -> None:
    recent = list(
        session.execute(
            select(LoginHelpRequest.created_at, LoginHelpRequest.client_ip)
            .where(
                LoginHelpRequest.attempt_id == attempt.id,
                LoginHelpRequest.created_at > now - WINDOW,
            )
            .order_by(LoginHelpRequest.created_at)
        )
    )
    mine = [at for at, ip in recent if ip == client_ip]
    if len(mine) >= PER_CLIENT_IN_WINDOW:
        raise _too_many(help_phone, mine[-PER_CLIENT_IN_WINDOW], now)
    if len(recent) >= PER_ATTEMPT_IN_WINDOW:
        raise _too_many(help_phone, recent[-PER_ATTEMPT_IN_WINDOW][0], now)


def request_help(
    session: Session,
    ctx: AppContext,
    exam_id: str,
    ticket: str,
    face: bytes | None,
    text: str,
    client_ip: str = "",
) -> dict[str, Any]:
    now = ctx.clock.now()
    exam, candidate, attempt = login_target(session, exam_id, ticket, now)
    failures = session.scalar(
        select(func.count()).where(Event.attempt_id == attempt.id, Event.kind == "login_failed")
    )
    enrolled = candidate.face_embedding is not None or exam.practice
    # Who declined face recognition goes to the manual check at once, without a capture.
    declined = consent.refused(session, attempt)
    if declined:
        face = None
    if enrolled and not declined and (failures or 0) < FAILURES_BEFORE_HELP:
        raise APIError(
            409,
            "login_help_too_early",
            f"人脸登录失败 {FAILURES_BEFORE_HELP} 次后才能申请人工审核，请先按提示重试。",
            failures=failures or 0,
            required=FAILURES_BEFORE_HELP,
        )
    _check_window(session, attempt, client_ip, now, exam.help_phone)
    if face is not None and not face.startswith(JPEG_MAGIC):
        raise APIError(422, "not_jpeg", "照片须为 JPEG 图片。")

    # A newer request from the same address replaces its pending one (tech support sees the
    # latest capture). A pending request from another address stays: it may be the real
    # candidate's, and tech support, seeing both captures side by side, approves the right one.
    session.execute(
        update(LoginHelpRequest)
        .where(
            LoginHelpRequest.attempt_id == attempt.id,
            LoginHelpRequest.status == PENDING,
            LoginHelpRequest.client_ip == client_ip,
        )
        .values(status=CANCELLED, decided_at=now)
    )
    request_id = new_id()
    face_key = None
    if face:
        face_key = f"login-help/{attempt.id}/{request_id}.jpg"
        ctx.blobs.put(face_key, face)
    poll_token = new_token()
    session.add(
        LoginHelpRequest(
            id=request_id,
            attempt_id=attempt.id,
            room_id=attempt.room_id,
            created_at=now,
            text=text.strip(),
            face_key=face_key,
            poll_digest=token_digest(ctx.settings.effective_secret(), poll_token),
            status=PENDING,
            client_ip=client_ip,
        )
    )
    events.append(
        session,
        attempt.id,
        "login_help_requested",
        at=now,
        actor="candidate",
        data={
            "request_id": request_id,
            "text": text.strip(),
            "has_face": face_key is not None,
            "failures": failures or 0,
            "face_consent_refused": declined,
            "client_ip": client_ip,
        },
        severity="warning",
    )
    return {"request_id": request_id, "poll_token": poll_token, "status": PENDING}


def _by_poll(session: Session, ctx: AppContext, request_id: str, poll: str) -> LoginHelpRequest:
    req = session.get(LoginHelpRequest, request_id)
    digest = token_digest(ctx.settings.effective_secret(), poll or "")
    if req is None or not hmac.compare_digest(req.poll_digest, digest):
        raise not_found("求助申请")
    return req


def poll(
    session: Session,
    ctx: AppContext,
    request_id: str,
    poll_token: str,
    client_info: dict[str, str],
) -> dict[str, Any]:
    req = _by_poll(session, ctx, request_id, poll_token)
    out: dict[str, Any] = {"request_id": req.id, "status": req.status, "reason": req.reason}
    if req.status != APPROVED:
        return out
    if req.token_issued_at is not None:
        return {**out, "token_issued": True}
    now = ctx.clock.now()
    attempt = session.get(Attempt, req.attempt_id)
    assert attempt is not None
    check_login_window(attempt.exam, attempt, now)
    alive = timedelta(seconds=ctx.settings.session_alive_seconds)
    if sessions.live_sessions(session, attempt.id, "candidate", now, alive):
        # Logged once per request: the waiting desk polls every few seconds, and one flag says
        # it all (tech support was warned before approving).
        logged = session.scalars(
            select(Event.data).where(
                Event.attempt_id == attempt.id, Event.kind == "session_active_elsewhere"
            )
        )
        if not any(d.get("request_id") == req.id for d in logged):
            events.append(
                session,
                attempt.id,
                "session_active_elsewhere",
                at=now,
                actor="candidate",
                data={
                    "code": "session_active_elsewhere",
                    "client": client_info,
                    "manual": True,
                    "request_id": req.id,
                },
            )
        raise APIError(
            409,
            "session_active_elsewhere",
            "您的账号正在另一台设备上使用。如需更换设备，请先关闭原设备上的考试页面，约 20 秒后再试。",
            keep_changes=True,
            request_status="approved",
        )
    issued = sessions.issue(
        session, ctx, "candidate", now, attempt_id=attempt.id, client_info=client_info
    )
    sessions.revoke_others(session, attempt.id, "candidate", issued.session.id, now, "replaced")
    attempt.face_verified_at = attempt.face_verified_at or now
    req.token_issued_at = now
    events.append(
        session,
        attempt.id,
        "login",
        at=now,
        actor="candidate",
        data={"manual": True, "request_id": req.id, "approved_by": req.decided_by},
    )
    return {
        **out,
        "token": issued.token,
        "stage": current_stage(session, attempt, now),
        "attempt_id": attempt.id,
    }


# --- tech support ------------------------------------------------------------------------------


def _require_decider(user: StaffUser) -> None:
    if not set(user.roles) & DECIDING_ROLES:
        raise forbidden("只有技术服务和管理员可以审核人脸登录。")


def request_for(session: Session, user: StaffUser, request_id: str) -> LoginHelpRequest:
    _require_decider(user)
    req = session.get(LoginHelpRequest, request_id)
    if req is None:
        raise not_found("求助申请")
    if not staff_service.can_see_room(session, user, req.room_id):
        raise forbidden("您不是该考生所在考场的工作人员。")
    return req


def _active_session(
    session: Session, ctx: AppContext, attempt_id: str, now: datetime
) -> dict[str, Any] | None:
    """The candidate's desk session seen within the liveness window, if any: approving then
    does not log the candidate in until that device goes quiet (one live session)."""
    alive = timedelta(seconds=ctx.settings.session_alive_seconds)
    live = sessions.live_sessions(session, attempt_id, "candidate", now, alive)
    if not live:
        return None
    newest = max(live, key=lambda s: ensure_utc(s.last_seen_at))
    info = newest.client_info or {}
    return {
        "last_seen_at": iso(ensure_utc(newest.last_seen_at)),
        "ip": info.get("ip"),
        "user_agent": info.get("user_agent"),
        "alive_seconds": ctx.settings.session_alive_seconds,
    }


def listing(
    session: Session, ctx: AppContext, user: StaffUser, status: str
) -> list[dict[str, Any]]:
    _require_decider(user)
    now = ctx.clock.now()
    query = (
        select(LoginHelpRequest, Attempt, Candidate)
        .join(Attempt, Attempt.id == LoginHelpRequest.attempt_id)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .order_by(LoginHelpRequest.created_at)
    )
    if status != "all":
        query = query.where(LoginHelpRequest.status == status)
    if not set(user.roles) & staff_service.ALL_ROOMS_ROLES:
        query = query.where(LoginHelpRequest.room_id.in_(staff_service.room_ids_of(session, user)))
    rows = list(session.execute(query))
    pending_per_attempt: dict[str, int] = {}
    if rows:
        counted = session.execute(
            select(LoginHelpRequest.attempt_id, func.count())
            .where(
                LoginHelpRequest.attempt_id.in_({a.id for _, a, _ in rows}),
                LoginHelpRequest.status == PENDING,
            )
            .group_by(LoginHelpRequest.attempt_id)
        )
        pending_per_attempt = {aid: n for aid, n in counted}
    out = []
    for req, attempt, cand in rows:
        failures = session.scalars(
            select(Event)
            .where(Event.attempt_id == attempt.id, Event.kind == "login_failed")
            .order_by(Event.seq.desc())
            .limit(5)
        )
        out.append(
            {
                "request_id": req.id,
                "attempt_id": attempt.id,
                "status": req.status,
                "created_at": iso(req.created_at),
                "text": req.text,
                "face_consent_refused": consent.refused(session, attempt),
                "ticket": cand.ticket,
                "name": cand.name,
                "room": {"id": cand.room.code, "name": cand.room.name},
                "exam": {
                    "id": attempt.exam.id,
                    "title": attempt.exam.title,
                    "utc_offset_minutes": attempt.exam.utc_offset_minutes,
                },
                "face_url": f"/api/v1/staff/login-help/{req.id}/face" if req.face_key else None,
                # The enrolment photo, or a practice exam's reference face (its first login's).
                "photo_url": f"/api/v1/staff/login-help/{req.id}/photo" if cand.photo_key else None,
                "practice": attempt.exam.practice,
                "active_session": (
                    _active_session(session, ctx, attempt.id, now)
                    if req.status == PENDING
                    else None
                ),
                "recent_failures": [
                    {
                        "at": iso(e.at),
                        "code": e.data.get("code"),
                        "distance": e.data.get("distance"),
                    }
                    for e in failures
                ],
                "client_ip": req.client_ip,
                # More than one: requests from different addresses wait for this candidate.
                "pending_for_candidate": pending_per_attempt.get(attempt.id, 0),
                "decided_at": iso(req.decided_at) if req.decided_at else None,
                "decided_by": req.decided_by,
                "reason": req.reason,
            }
        )
    return out


def decide(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    request_id: str,
    approve: bool,
    reason: str,
) -> dict[str, Any]:
    req = request_for(session, user, request_id)
    if req.status != PENDING:
        raise APIError(
            409, "already_decided", "该申请已处理或已被新的申请取代。", request_status=req.status
        )
    now = ctx.clock.now()
    attempt = session.get(Attempt, req.attempt_id)
    assert attempt is not None
    if approve:
        check_login_window(attempt.exam, attempt, now)
        attempt.face_verified_at = attempt.face_verified_at or now
    req.status = APPROVED if approve else REJECTED
    req.decided_at = now
    req.decided_by = user.username
    req.reason = reason.strip()
    data: dict[str, Any] = {"request_id": req.id, "reason": req.reason, "by": user.username}
    if approve:
        # One candidate, one way in: the other clients' pending requests end with this one.
        others = list(
            session.scalars(
                select(LoginHelpRequest).where(
                    LoginHelpRequest.attempt_id == attempt.id,
                    LoginHelpRequest.status == PENDING,
                    LoginHelpRequest.id != req.id,
                )
            )
        )
        for other in others:
            other.status = CANCELLED
            other.decided_at = now
            other.decided_by = user.username
            other.reason = "已通过该考生的另一申请。"
        if others:
            data["cancelled"] = [o.id for o in others]
    events.append(
        session,
        attempt.id,
        "login_approved_manually" if approve else "login_help_rejected",
        at=now,
        actor=f"staff:{user.username}",
        data=data,
    )
    return {"request_id": req.id, "status": req.status, "reason": req.reason}


def image(session: Session, ctx: AppContext, user: StaffUser, request_id: str, which: str) -> bytes:
    req = request_for(session, user, request_id)
    if which == "face":
        key = req.face_key
    else:
        attempt = session.get(Attempt, req.attempt_id)
        assert attempt is not None
        key = attempt.candidate.photo_key
    if not key:
        raise not_found("照片")
    return ctx.blobs.get(key)
