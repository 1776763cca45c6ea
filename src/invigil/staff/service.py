"""Staff login and what each staff member may see: proctors and tech support their rooms,
reviewers and admins every room. Examiners score blind and never see rosters."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts import events, sessions
from invigil.attempts.models import Attempt, AuthSession
from invigil.attempts.service import current_stage
from invigil.core import ratelimit
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, forbidden, not_found
from invigil.core.security import hash_password, verify_password
from invigil.exams.models import Candidate, Exam, Room
from invigil.recordings import status as recording_status
from invigil.staff.models import StaffRoom, StaffUser

log = logging.getLogger(__name__)

ALL_ROOMS_ROLES = frozenset({"admin", "reviewer"})
ROOM_ROLES = frozenset({"proctor", "tech"})


# Wrong passwords: per username, 5 free within 15 minutes, then a wait that doubles with each
# further failure (2 s, 4 s, … up to 15 min); per client address the same from 20 failures,
# so one machine cannot guess across many usernames. Both hold across server processes.
USER_RULE = ratelimit.Rule(limit=5, window=timedelta(minutes=15), backoff=2.0, max_wait=900)
ADDRESS_RULE = ratelimit.Rule(limit=20, window=timedelta(minutes=15), backoff=2.0, max_wait=900)


def login(session: Session, ctx: AppContext, username: str, password: str, address: str) -> str:
    now = ctx.clock.now()
    name = username.strip()
    buckets = [(f"staff-login:user:{name.lower()}", USER_RULE)]
    if not ratelimit.exempt(address, ctx.settings):
        buckets.append((f"staff-login:addr:{address}", ADDRESS_RULE))
    for bucket, _ in buckets:
        ratelimit.lock(session, bucket)
    waits = [ratelimit.check(session, b, r, now) for b, r in buckets]
    refused = [v.retry_after for v in waits if not v.allowed]
    if refused:
        wait = max(refused)
        log.warning(
            "staff login throttled: user=%r address=%s retry_after=%ss", name, address, wait
        )
        raise APIError(
            429,
            "too_many_attempts",
            f"登录失败次数过多，请 {wait} 秒后再试。",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )
    user = session.scalar(select(StaffUser).where(StaffUser.username == name))
    # Verify against a real hash even for unknown users, so timing does not reveal usernames.
    ok = verify_password(user.password_hash if user else _dummy_hash(), password)
    if user is None or not ok:
        for bucket, _ in buckets:
            ratelimit.record(session, bucket, now)
        log.warning("staff login failed: user=%r address=%s", name, address)
        # keep_changes: the failure counts even though the request fails.
        raise APIError(401, "invalid_credentials", "用户名或密码错误。", keep_changes=True)
    ratelimit.clear(session, buckets[0][0])  # the right password resets the username's count
    if user.disabled_at is not None:  # told only to whoever knows the password
        log.warning("staff login of a disabled account: user=%r address=%s", name, address)
        raise APIError(403, "account_disabled", "该账号已停用，请联系管理员。")
    log.info("staff login: user=%r address=%s", name, address)
    return sessions.issue(session, ctx, "staff", now, staff_id=user.id).token


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def room_ids_of(session: Session, user: StaffUser) -> set[str]:
    return set(session.scalars(select(StaffRoom.room_id).where(StaffRoom.staff_id == user.id)))


def can_see_room(session: Session, user: StaffUser, room_id: str) -> bool:
    roles = set(user.roles)
    if roles & ALL_ROOMS_ROLES:
        return True
    return bool(roles & ROOM_ROLES) and room_id in room_ids_of(session, user)


def resolve_room(
    session: Session, ctx: AppContext, user: StaffUser, ref: str, exam_id: str | None
) -> Room:
    """A room by its internal id, or by the exam file's code (e.g. R01) among the rooms this
    staff member may see; with several exams using the code, the one nearest in time."""
    room = session.get(Room, ref)
    if room is None:
        query = select(Room).where(Room.code == ref)
        if exam_id:
            query = query.where(Room.exam_id == exam_id)
        candidates = [r for r in session.scalars(query) if can_see_room(session, user, r.id)]
        if not candidates:
            raise not_found("考场")
        now = ctx.clock.now()
        room = min(candidates, key=lambda r: abs((r.exam.starts_at - now).total_seconds()))
    if not can_see_room(session, user, room.id):
        raise forbidden("您不是该考场的工作人员。")
    return room


def room_view(session: Session, ctx: AppContext, room: Room) -> dict[str, Any]:
    now = ctx.clock.now()
    alive = timedelta(seconds=ctx.settings.session_alive_seconds)
    rows = session.execute(
        select(Attempt, Candidate)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .where(Attempt.room_id == room.id)
        .order_by(Candidate.ticket)
    ).all()
    live = set(
        session.scalars(
            select(AuthSession.attempt_id).where(
                AuthSession.attempt_id.in_([a.id for a, _ in rows]),
                AuthSession.kind == "candidate",
                AuthSession.revoked_at.is_(None),
                AuthSession.last_seen_at > now - alive,
            )
        )
    )
    return {
        "room": {"id": room.code, "room_id": room.id, "name": room.name, "exam_id": room.exam_id},
        "now": iso(now),
        "candidates": [
            {
                "ticket": c.ticket,
                "name": c.name,
                "attempt_id": a.id,
                "stage": current_stage(session, a, now),
                "lot": a.lot_number,
                "online": a.id in live,
                "face_verified": a.face_verified_at is not None,
                "entered_at": iso(a.entered_at) if a.entered_at else None,
                "finished_at": iso(a.finished_at) if a.finished_at else None,
            }
            for a, c in rows
        ],
    }


def attempt_for(session: Session, user: StaffUser, attempt_id: str) -> Attempt:
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        raise not_found("考生记录")
    if not can_see_room(session, user, attempt.room_id):
        raise forbidden("您不是该考生所在考场的工作人员。")
    return attempt


def attempt_view(session: Session, ctx: AppContext, attempt: Attempt) -> dict[str, Any]:
    now = ctx.clock.now()
    exam: Exam = attempt.exam
    c = attempt.candidate
    return {
        "attempt_id": attempt.id,
        "exam_id": exam.id,
        "ticket": c.ticket,
        "name": c.name,
        "room": {"id": c.room.code, "name": c.room.name},
        "stage": current_stage(session, attempt, now),
        "lot": attempt.lot_number,
        "face_verified_at": iso(attempt.face_verified_at) if attempt.face_verified_at else None,
        "entered_at": iso(attempt.entered_at) if attempt.entered_at else None,
        "finished_at": iso(attempt.finished_at) if attempt.finished_at else None,
        # The candidate's own deadline and entry close (extra time, late entry: arrangements).
        "deadline": iso(attempt.deadline),
        "extra_time_s": attempt.extra_time_s,
        "late_entry_until": iso(attempt.late_entry_until) if attempt.late_entry_until else None,
        "event_count": attempt.last_event_seq,
        "recordings": recording_status.for_attempt(session, attempt.id),
    }


def attempt_events(session: Session, attempt: Attempt, after: int) -> dict[str, Any]:
    return {
        "events": [
            {
                "seq": e.seq,
                "at": iso(e.at),
                "kind": e.kind,
                "severity": e.severity,
                "actor": e.actor,
                "data": e.data,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            }
            for e in events.list_events(session, attempt.id, after)
        ]
    }
