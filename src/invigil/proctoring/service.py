"""What proctors do and see: warnings, notes, alert acknowledgements, the live room status.

Warnings and notes are events in the candidate's log (kinds ``warning`` and ``proctor_note``),
so they are ordered, tamper-evident and part of the evidence reviewers read. Acknowledgements
are per staff member (a table): a reloaded console knows which alerts it still has open.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.helpchat import KIND as HELP_KIND
from invigil.attempts.models import Attempt, AuthSession, Event
from invigil.core.bus import publish_after_commit
from invigil.core.clock import ensure_utc, iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, forbidden, not_found
from invigil.exams.models import Candidate, Exam, Room
from invigil.proctoring.models import AlertAck
from invigil.proctoring.warnings import WARNING_KIND, warnings_for
from invigil.recordings import snapshots
from invigil.recordings import status as recording_status
from invigil.staff import service as staff_service
from invigil.staff.models import StaffUser

NOTE_KIND = "proctor_note"
# A proctor closes a help request without replying (e.g. solved at the desk by phone); logged
# like a reply so every console drops the alert and reviewers see who closed it.
HELP_DISMISSED_KIND = "help_dismissed"
ACTING_ROLES = frozenset({"proctor", "tech", "admin"})
# Events a proctor console replays at most per attempt (newest kept) on a fresh connect.
REPLAY_LIMIT = 5000

__all__ = ["warnings_for"]


def require_acting(user: StaffUser) -> None:
    if not set(user.roles) & ACTING_ROLES:
        raise forbidden("只有监考员、技术服务和管理员可以执行此操作。")


def warn(
    session: Session, ctx: AppContext, user: StaffUser, attempt: Attempt, text: str
) -> dict[str, Any]:
    require_acting(user)
    event = events.append(
        session,
        attempt.id,
        WARNING_KIND,
        at=ctx.clock.now(),
        actor=f"staff:{user.username}",
        data={"text": text.strip(), "by": user.username},
        severity="warning",
    )
    return {"seq": event.seq, "at": iso(event.at), "text": event.data["text"]}


def add_note(
    session: Session, ctx: AppContext, user: StaffUser, attempt: Attempt, text: str
) -> dict[str, Any]:
    require_acting(user)
    event = events.append(
        session,
        attempt.id,
        NOTE_KIND,
        at=ctx.clock.now(),
        actor=f"staff:{user.username}",
        data={"text": text.strip(), "author": user.username},
    )
    return _note(event)


def _note(e: Event) -> dict[str, Any]:
    return {"seq": e.seq, "at": iso(e.at), "author": e.data.get("author"), "text": e.data["text"]}


def notes(session: Session, attempt: Attempt) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Event)
        .where(Event.attempt_id == attempt.id, Event.kind == NOTE_KIND)
        .order_by(Event.seq)
    )
    return [_note(e) for e in rows]


def dismiss_help(
    session: Session, ctx: AppContext, user: StaffUser, attempt: Attempt, seq: int
) -> dict[str, Any]:
    """Close the candidate's help message ``seq`` without a reply (an explicit, logged act)."""
    require_acting(user)
    message = session.scalar(
        select(Event).where(
            Event.attempt_id == attempt.id, Event.seq == seq, Event.kind == HELP_KIND
        )
    )
    if message is None or message.data.get("from") != "candidate":
        raise APIError(422, "not_a_help_request", "该事件不是考生的求助消息。")
    event = events.append(
        session,
        attempt.id,
        HELP_DISMISSED_KIND,
        at=ctx.clock.now(),
        actor=f"staff:{user.username}",
        data={"seq": seq, "by": user.username},
    )
    return {"attempt_id": attempt.id, "seq": event.seq, "dismissed": seq}


# --- alerts ------------------------------------------------------------------------------------


def ack(
    session: Session, ctx: AppContext, user: StaffUser, attempt: Attempt, seq: int
) -> dict[str, Any]:
    event = session.scalar(select(Event).where(Event.attempt_id == attempt.id, Event.seq == seq))
    if event is None:
        raise not_found("事件")
    if event.severity != "violation":
        raise APIError(422, "not_an_alert", "该事件不是疑似违纪提醒，无需确认。")
    now = ctx.clock.now()
    if session.get(AlertAck, (user.id, attempt.id, seq)) is None:
        session.add(AlertAck(staff_id=user.id, attempt_id=attempt.id, seq=seq, acked_at=now))
        # The same staff member's other consoles close the alert too.
        publish_after_commit(
            session,
            f"staff:{user.id}",
            {"type": "ack", "attempt_id": attempt.id, "seq": seq, "at": iso(now)},
        )
    return {"attempt_id": attempt.id, "seq": seq, "acked": True}


def alerts(session: Session, user: StaffUser, room: Room, only_open: bool) -> list[dict[str, Any]]:
    """Suspected-violation events of a room, oldest first, with this staff member's acks."""
    query = (
        select(Event, Candidate, AlertAck.acked_at)
        .join(Attempt, Attempt.id == Event.attempt_id)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .outerjoin(
            AlertAck,
            and_(
                AlertAck.staff_id == user.id,
                AlertAck.attempt_id == Event.attempt_id,
                AlertAck.seq == Event.seq,
            ),
        )
        .where(Attempt.room_id == room.id, Event.severity == "violation")
        .order_by(Event.at, Event.id)
    )
    if only_open:
        query = query.where(AlertAck.acked_at.is_(None))
    return [
        {
            "attempt_id": e.attempt_id,
            "seq": e.seq,
            "kind": e.kind,
            "at": iso(e.at),
            "data": e.data,
            "ticket": c.ticket,
            "name": c.name,
            "acked_at": iso(acked_at) if acked_at else None,
        }
        for e, c, acked_at in session.execute(query)
    ]


def open_help(session: Session, room_ids: Collection[str]) -> list[dict[str, Any]]:
    """The rooms' unanswered help requests, oldest first: per candidate whose last help message
    is their own and was not dismissed, that message, with the candidate and the room."""
    if not room_ids:
        return []
    rows = session.execute(
        select(Event, Candidate, Room)
        .join(Attempt, Attempt.id == Event.attempt_id)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .join(Room, Room.id == Attempt.room_id)
        .where(
            Attempt.room_id.in_(list(room_ids)),
            Event.kind.in_((HELP_KIND, HELP_DISMISSED_KIND)),
        )
        .order_by(Event.attempt_id, Event.seq)
    )
    last: dict[str, tuple[Event, Candidate, Room]] = {}
    dismissed: set[tuple[str, Any]] = set()
    for event, candidate, room in rows:
        if event.kind == HELP_KIND:
            last[event.attempt_id] = (event, candidate, room)
        else:
            dismissed.add((event.attempt_id, event.data.get("seq")))
    open_ = [
        (e, c, r)
        for e, c, r in last.values()
        if e.data.get("from") == "candidate" and (e.attempt_id, e.seq) not in dismissed
    ]
    open_.sort(key=lambda row: row[0].at)
    return [
        {
            "attempt_id": e.attempt_id,
            "seq": e.seq,
            "at": iso(e.at),
            "text": e.data.get("text") or "",
            "name": c.name,
            "ticket": c.ticket,
            "room_id": r.id,
            "room": r.code,
            "room_name": r.name,
        }
        for e, c, r in open_
    ]


# --- the live room -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    at: datetime
    backlog: dict[str, int] | None  # the desk's own count of what it has still to upload


def _last_seen(session: Session, ids: list[str]) -> dict[tuple[str, str], _Seen]:
    """Per attempt and client kind, its newest live session: when it was last heard from and
    the upload backlog its last heartbeat reported."""
    rows = session.execute(
        select(
            AuthSession.attempt_id,
            AuthSession.kind,
            AuthSession.last_seen_at,
            AuthSession.upload_backlog_chunks,
            AuthSession.upload_backlog_bytes,
        ).where(AuthSession.attempt_id.in_(ids), AuthSession.revoked_at.is_(None))
    )
    out: dict[tuple[str, str], _Seen] = {}
    for attempt_id, kind, at, chunks, size in rows:
        if attempt_id is None or at is None:
            continue
        at = ensure_utc(at)
        known = out.get((attempt_id, kind))
        if known is None or at > known.at:
            backlog = None if chunks is None else {"chunks": chunks, "bytes": size or 0}
            out[(attempt_id, kind)] = _Seen(at, backlog)
    return out


def _open_help(session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per attempt, the last help message when it came from the candidate and was neither
    answered nor dismissed since."""
    last = (
        select(Event.attempt_id, func.max(Event.seq).label("seq"))
        .where(Event.attempt_id.in_(ids), Event.kind.in_((HELP_KIND, HELP_DISMISSED_KIND)))
        .group_by(Event.attempt_id)
        .subquery()
    )
    rows = session.scalars(
        select(Event).join(
            last, and_(Event.attempt_id == last.c.attempt_id, Event.seq == last.c.seq)
        )
    )
    return {
        e.attempt_id: {"seq": e.seq, "text": e.data.get("text"), "at": iso(e.at)}
        for e in rows
        if e.kind == HELP_KIND and e.data.get("from") == "candidate"
    }


def room_status(session: Session, ctx: AppContext, room: Room) -> dict[str, Any]:
    """Everything a tile shows, for every candidate of the room, in a handful of queries."""
    view = staff_service.room_view(session, ctx, room)
    now = ctx.clock.now()
    exam = room.exam
    ids = [c["attempt_id"] for c in view["candidates"]]
    seen = _last_seen(session, ids)
    latest = snapshots.latest(session, ids)
    uploads = recording_status.summaries(session, ids)
    help_open = _open_help(session, ids)
    attempts = {a.id: a for a in session.scalars(select(Attempt).where(Attempt.id.in_(ids)))}
    alive = timedelta(seconds=ctx.settings.session_alive_seconds)
    for c in view["candidates"]:
        aid = c["attempt_id"]
        attempt = attempts[aid]
        desk = seen.get((aid, "candidate"))
        desk_seen = desk.at if desk else None
        phone = seen.get((aid, "phone"))
        phone_seen = phone.at if phone else None
        if phone_seen is None:
            phone_state = "not_bound"
        elif now - phone_seen >= alive:
            phone_state = "offline"
        else:
            phone_state = attempt.evidence_state or "bound"
        late = (
            c["entered_at"] is None
            and c["stage"] not in ("absent", "finished")
            and now >= exam.entry_opens_at
        )
        c.update(
            {
                "last_seen_at": iso(desk_seen) if desk_seen else None,
                "evidence": {
                    "required": exam.evidence_camera,
                    "status": phone_state,
                    "last_seen_at": iso(phone_seen) if phone_seen else None,
                },
                "snapshots": {
                    kind: snapshots.describe(s) for kind, s in sorted(latest.get(aid, {}).items())
                },
                "desk_backlog": desk.backlog if desk else None,
                "uploads": [
                    {
                        "kind": r["kind"],
                        "state": r["state"],
                        "received": r["received"],
                        "missing": len(r["missing"]),
                        "bytes": r["bytes"],
                    }
                    for r in uploads.get(aid, [])
                ],
                "help_open": help_open.get(aid),
                "late": late,
                "absent": c["stage"] == "absent",
                "last_event_seq": attempt.last_event_seq,
                # The candidate's own deadline: extra time from the exam office moves it.
                "deadline": iso(attempt.deadline),
                "extra_time_s": attempt.extra_time_s,
            }
        )
    view["schedule"] = {
        "login_opens_at": iso(exam.login_opens_at),
        "entry_opens_at": iso(exam.entry_opens_at),
        "starts_at": iso(exam.starts_at),
        "entry_closes_at": iso(exam.entry_closes_at),
        "deadline": iso(exam.deadline),
    }
    view["exam"] = {
        "id": exam.id,
        "title": exam.title,
        "evidence_camera": exam.evidence_camera,
        "utc_offset_minutes": exam.utc_offset_minutes,
    }
    return view


def visible_rooms(session: Session, user: StaffUser) -> list[dict[str, Any]]:
    """The rooms this staff member may watch, newest exam first."""
    query = select(Room, Exam).join(Exam, Exam.id == Room.exam_id)
    if not set(user.roles) & staff_service.ALL_ROOMS_ROLES:
        query = query.where(Room.id.in_(staff_service.room_ids_of(session, user)))
    rows = session.execute(query.order_by(Exam.starts_at.desc(), Room.code))
    return [
        {
            "room_id": r.id,
            "id": r.code,
            "name": r.name,
            "exam_id": e.id,
            "exam_title": e.title,
            "starts_at": iso(e.starts_at),
            "utc_offset_minutes": e.utc_offset_minutes,
        }
        for r, e in rows
    ]


def replay(session: Session, room_ids: list[str], since: dict[str, int]) -> list[dict[str, Any]]:
    """Events of the rooms' attempts after each attempt's cursor, as the bus carries them."""
    attempts = list(
        session.execute(select(Attempt.id, Attempt.room_id).where(Attempt.room_id.in_(room_ids)))
    )
    if not attempts:
        return []
    room_of = {a: r for a, r in attempts}
    conditions = [and_(Event.attempt_id == a, Event.seq > max(since.get(a, 0), 0)) for a in room_of]
    rows = session.scalars(select(Event).where(or_(*conditions)).order_by(Event.at, Event.id))
    per_attempt: dict[str, list[Event]] = {}
    for e in rows:
        per_attempt.setdefault(e.attempt_id, []).append(e)
    kept = [e for evs in per_attempt.values() for e in evs[-REPLAY_LIMIT:]]
    kept.sort(key=lambda e: (e.at, e.id))
    return [
        {
            "type": "event",
            "attempt_id": e.attempt_id,
            "room_id": room_of[e.attempt_id],
            "event": events.event_as_dict(e),
            "replay": True,
        }
        for e in kept
    ]
