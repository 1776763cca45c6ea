"""个别安排: what the exam office decides for one candidate.

- **Extra time** (``Attempt.extra_time_s``): the candidate's deadline moves, and with it every
  window that follows the deadline (the questions' deadline, the desk's countdown, finishing,
  the upload grace, the proctor console's per-candidate deadline): ``Attempt.deadline``.
- **A move to another room**: the attempt and the candidate change room, so the new room's
  proctors see them; a lot number already drawn is drawn again in the new room (numbers are
  unique per room).
- **A late entry** (``Attempt.late_entry_until``): entering stays open for this candidate past
  the exam's ``entry_closes_after``, with the reason on record.
- **Re-sit proposals**: computed, never stored, from the outages the candidate's log records
  (the desk's ``online`` reports and the phone's ``evidence_gap`` reports, each with its
  length) against the exam's ``rules.resit``; the office confirms or dismisses each, and only
  that decision is stored (``ResitDecision``).

Every decision is an event in the candidate's log (tamper-evident, what reviewers read) and an
entry in the audit log. Events publish on the room's bus channel, so consoles and the overview
follow at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from invigil.attempts import events, presence
from invigil.attempts.models import Attempt, Event, ResitDecision
from invigil.attempts.service import current_stage
from invigil.core.bus import publish_after_commit
from invigil.core.clock import ensure_utc, iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, not_found
from invigil.exams import lots
from invigil.exams.models import Candidate, Exam, Room
from invigil.review import audit
from invigil.staff.models import StaffUser

MAX_EXTRA_MINUTES = 240
MAX_LATE_MINUTES = 120
SEARCH_LIMIT = 50

# exam.rules.resit, in seconds (exams.examfile parses the file's form).
RESIT_DEFAULTS: dict[str, Any] = {"min_outage_s": 120, "short_outages": 2, "short_from_s": 10}
# The reports that carry an outage's length: the desk's own, the phone's, and the server's
# when the desk was out of contact (attempts/presence.py; open while it has not come back).
OUTAGE_KINDS = ("online", "evidence_gap", presence.SILENT, presence.BACK)
CONFIRMED, DISMISSED, PROPOSED = "confirmed", "dismissed", "proposed"


def attempt_of(session: Session, exam: Exam, attempt_id: str) -> Attempt:
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.exam_id != exam.id:
        raise not_found("考生记录")
    return attempt


def describe(session: Session, ctx: AppContext, attempt: Attempt) -> dict[str, Any]:
    c = attempt.candidate
    room = session.get(Room, attempt.room_id)
    assert room is not None
    decision = session.get(ResitDecision, attempt.id)
    return {
        "attempt_id": attempt.id,
        "ticket": c.ticket,
        "name": c.name,
        "room": {"room_id": room.id, "code": room.code, "name": room.name},
        "stage": current_stage(session, attempt, ctx.clock.now()),
        "lot": attempt.lot_number,
        "entered_at": iso(attempt.entered_at) if attempt.entered_at else None,
        "finished_at": iso(attempt.finished_at) if attempt.finished_at else None,
        "extra_time_s": attempt.extra_time_s,
        "deadline": iso(attempt.deadline),
        "exam_deadline": iso(attempt.exam.deadline),
        "entry_closes_at": iso(attempt.entry_closes_at),
        "late_entry_until": iso(attempt.late_entry_until) if attempt.late_entry_until else None,
        "resit": decision.status if decision else None,
    }


def search(session: Session, ctx: AppContext, exam: Exam, q: str) -> list[dict[str, Any]]:
    """Candidates by ticket (prefix) or name (part of it)."""
    q = q.strip()
    if not q:
        return []
    like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = session.scalars(
        select(Attempt)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .where(
            Attempt.exam_id == exam.id,
            or_(
                Candidate.ticket.like(f"{like}%", escape="\\"),
                Candidate.name.like(f"%{like}%", escape="\\"),
            ),
        )
        .order_by(Candidate.ticket)
        .limit(SEARCH_LIMIT)
    )
    return [describe(session, ctx, a) for a in rows]


def _reason(text: str, required: bool) -> str:
    reason = text.strip()[:500]
    if required and not reason:
        raise APIError(422, "reason_required", "请填写原因。")
    return reason


def _log(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    attempt: Attempt,
    kind: str,
    data: dict[str, Any],
) -> None:
    """The decision in the candidate's log and in the audit log."""
    events.append(
        session,
        attempt.id,
        kind,
        at=ctx.clock.now(),
        actor=f"staff:{user.username}",
        data={**data, "by": user.username},
        severity="info",
    )
    audit.record(
        session, ctx, user, kind, exam_id=attempt.exam_id, attempt_id=attempt.id, detail=data
    )
    publish_after_commit(
        session, f"exam:{attempt.exam_id}", {"type": "arrangement", "attempt_id": attempt.id}
    )


# --- extra time --------------------------------------------------------------------------------


def set_extra_time(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    attempt: Attempt,
    minutes: int,
    reason: str,
) -> dict[str, Any]:
    """The candidate's extra time in total (0 takes it back); their deadline moves by it."""
    if not 0 <= minutes <= MAX_EXTRA_MINUTES:
        raise APIError(422, "invalid_minutes", f"延长时间应在 0 到 {MAX_EXTRA_MINUTES} 分钟之间。")
    now = ctx.clock.now()
    if attempt.finished_at is not None:
        raise APIError(409, "already_finished", "该考生已交卷，不能再延长时间。")
    if now >= attempt.deadline:
        raise APIError(409, "deadline_passed", "该考生的考试时间已结束，不能再延长。")
    new_deadline = attempt.exam.deadline + timedelta(minutes=minutes)
    if minutes * 60 < attempt.extra_time_s and new_deadline <= now:
        raise APIError(409, "deadline_passed", "缩短后的截止时间已过，不能这样修改。")
    before = attempt.extra_time_s
    attempt.extra_time_s = minutes * 60
    _log(
        session,
        ctx,
        user,
        attempt,
        "extra_time",
        {
            "minutes": minutes,
            "previous_minutes": before // 60,
            "deadline": iso(attempt.deadline),
            "reason": _reason(reason, False),
        },
    )
    return describe(session, ctx, attempt)


# --- moving to another room --------------------------------------------------------------------


def move(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    attempt: Attempt,
    room_id: str,
    reason: str,
) -> dict[str, Any]:
    target = session.get(Room, room_id)
    if target is None or target.exam_id != attempt.exam_id:
        raise not_found("考场")
    if target.id == attempt.room_id:
        raise APIError(409, "same_room", "考生已在该考场。")
    if attempt.finished_at is not None:
        raise APIError(409, "already_finished", "该考生已交卷，不能再调换考场。")
    # Both rooms locked in a fixed order (lot draws lock the room too): no deadlock, and no
    # draw in either room sees a half-done move.
    for rid in sorted((attempt.room_id, target.id)):
        session.execute(select(Room.id).where(Room.id == rid).with_for_update())
    source = session.get(Room, attempt.room_id)
    assert source is not None
    old_lot = attempt.lot_number
    attempt.room_id = target.id
    attempt.candidate.room_id = target.id
    attempt.lot_number = None
    session.flush()
    new_lot = lots.draw(session, attempt.id, ctx.clock.now(), by="move") if old_lot else None
    _log(
        session,
        ctx,
        user,
        attempt,
        "room_moved",
        {
            "from": source.code,
            "to": target.code,
            "lot_from": old_lot,
            "lot_to": new_lot,
            "reason": _reason(reason, False),
        },
    )
    # The room left behind drops the candidate at its next status check; this tells it now.
    publish_after_commit(
        session,
        f"room:{source.id}",
        {"type": "moved_out", "attempt_id": attempt.id, "room_id": source.id, "to": target.code},
    )
    return describe(session, ctx, attempt)


# --- late entry --------------------------------------------------------------------------------


def allow_late_entry(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    attempt: Attempt,
    minutes: int,
    reason: str,
) -> dict[str, Any]:
    """Entering stays open for this candidate ``minutes`` from now (or from the exam's entry
    close, if that is still ahead)."""
    if not 1 <= minutes <= MAX_LATE_MINUTES:
        raise APIError(422, "invalid_minutes", f"补入场时限应在 1 到 {MAX_LATE_MINUTES} 分钟之间。")
    why = _reason(reason, True)
    if attempt.entered_at is not None:
        raise APIError(409, "already_entered", "该考生已入场。")
    now = ctx.clock.now()
    if now >= attempt.deadline:
        raise APIError(409, "deadline_passed", "考试时间已结束，不能再补入场。")
    until = max(now, attempt.exam.entry_closes_at) + timedelta(minutes=minutes)
    attempt.late_entry_until = min(until, attempt.deadline)
    _log(
        session,
        ctx,
        user,
        attempt,
        "late_entry_allowed",
        {"until": iso(attempt.late_entry_until), "minutes": minutes, "reason": why},
    )
    return describe(session, ctx, attempt)


# --- re-sit proposals --------------------------------------------------------------------------


def rule_of(exam: Exam) -> dict[str, Any] | None:
    """The exam's re-sit rule in seconds, or None when the exam turned proposals off."""
    rule = exam.resit_rule
    if rule is None:
        return dict(RESIT_DEFAULTS)
    if rule.get("off"):
        return None
    return {**RESIT_DEFAULTS, **rule}


@dataclass
class Outage:
    start: datetime
    end: datetime
    sources: set[str]

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "seconds": round(self.seconds),
            "sources": sorted(self.sources),
        }


def _interval(e: Event, cap_s: float) -> tuple[datetime, datetime, str] | None:
    data = e.data or {}
    ms = data.get("duration_ms")
    if isinstance(ms, bool) or not isinstance(ms, int | float) or ms <= 0:
        return None
    # A client's report arrives when it is back; queued ones say how late they are. Those
    # dated back on arrival (they carry ``received_at``) already are.
    delayed = data.get("delayed_s")
    delay = 0.0
    if "received_at" not in data and isinstance(delayed, int | float) and 0 <= delayed <= cap_s:
        delay = delayed
    end = ensure_utc(e.at) - timedelta(seconds=delay)
    start = end - timedelta(seconds=min(ms / 1000, cap_s))
    source = (
        "desk" if e.kind in ("online", presence.BACK) else f"phone:{data.get('reason') or 'gap'}"
    )
    return start, end, source


def _parsed(value: Any) -> datetime | None:
    try:
        return ensure_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def outages(attempt: Attempt, rows: list[Event]) -> list[Outage]:
    """The attempt's outages during its answering time, overlapping ones (desk and phone at
    once) merged into one."""
    if attempt.entered_at is None:
        return []
    exam = attempt.exam
    lo = max(exam.starts_at, ensure_utc(attempt.entered_at))
    hi = ensure_utc(attempt.finished_at) if attempt.finished_at else attempt.deadline
    cap = float(exam.duration_s + attempt.extra_time_s)
    spans = []
    silent_since: datetime | None = None  # out of contact, not (yet) back
    for e in rows:
        if e.kind == presence.SILENT:
            silent_since = _parsed((e.data or {}).get("last_seen_at"))
            continue
        if e.kind == presence.BACK:
            silent_since = None
        got = _interval(e, cap)
        if got is None:
            continue
        start, end, source = got
        start, end = max(start, lo), min(end, hi)
        if end > start:
            spans.append((start, end, source))
    if silent_since is not None and hi > max(silent_since, lo):  # it never came back
        spans.append((max(silent_since, lo), hi, "desk"))
    merged: list[Outage] = []
    for start, end, source in sorted(spans):
        if merged and start <= merged[-1].end:
            merged[-1].end = max(merged[-1].end, end)
            merged[-1].sources.add(source)
        else:
            merged.append(Outage(start, end, {source}))
    return merged


def meets(rule: dict[str, Any], found: list[Outage]) -> tuple[bool, str]:
    long = [o for o in found if o.seconds >= rule["min_outage_s"]]
    short = [o for o in found if rule["short_from_s"] <= o.seconds < rule["min_outage_s"]]
    if long:
        return True, "long_outage"
    if len(short) >= rule["short_outages"]:
        return True, "short_outages"
    return False, ""


def proposals(session: Session, ctx: AppContext, exam: Exam) -> dict[str, Any]:
    """Every candidate whose recorded outages meet the exam's rule, with the office's decision
    (or ``proposed``), plus decisions on candidates who no longer meet it."""
    rule = rule_of(exam)
    decisions = {
        d.attempt_id: d
        for d in session.scalars(
            select(ResitDecision)
            .join(Attempt, Attempt.id == ResitDecision.attempt_id)
            .where(Attempt.exam_id == exam.id)
        )
    }
    per_attempt: dict[str, list[Event]] = {}
    if rule is not None:
        for e in session.scalars(
            select(Event)
            .join(Attempt, Attempt.id == Event.attempt_id)
            .where(
                Attempt.exam_id == exam.id,
                Attempt.entered_at.is_not(None),
                Event.kind.in_(OUTAGE_KINDS),
            )
            .order_by(Event.attempt_id, Event.seq)
        ):
            per_attempt.setdefault(e.attempt_id, []).append(e)
    ids = set(per_attempt) | set(decisions)
    attempts = (
        {a.id: a for a in session.scalars(select(Attempt).where(Attempt.id.in_(ids)))}
        if ids
        else {}
    )
    out = []
    for attempt_id in sorted(ids, key=lambda i: attempts[i].candidate.ticket):
        attempt = attempts[attempt_id]
        found = outages(attempt, per_attempt.get(attempt_id, []))
        hit, why = meets(rule, found) if rule is not None else (False, "")
        decision = decisions.get(attempt_id)
        if not hit and decision is None:
            continue
        c = attempt.candidate
        out.append(
            {
                "attempt_id": attempt_id,
                "ticket": c.ticket,
                "name": c.name,
                "room": c.room.code,
                "meets_rule": hit,
                "why": why,
                "outages": [o.as_dict() for o in found],
                "status": decision.status if decision else PROPOSED,
                "decided_by": decision.decided_by if decision else None,
                "decided_at": iso(decision.decided_at) if decision else None,
                "note": decision.note if decision else "",
            }
        )
    return {"rule": rule, "proposals": out}


def decide(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    attempt: Attempt,
    status: str,
    note: str,
) -> dict[str, Any]:
    if status not in (CONFIRMED, DISMISSED):
        raise APIError(422, "invalid_status", "只能确认或驳回。")
    rule = rule_of(attempt.exam)
    rows = list(
        session.scalars(
            select(Event)
            .where(Event.attempt_id == attempt.id, Event.kind.in_(OUTAGE_KINDS))
            .order_by(Event.seq)
        )
    )
    found = outages(attempt, rows)
    existing = session.get(ResitDecision, attempt.id)
    if existing is None and (rule is None or not meets(rule, found)[0]):
        raise APIError(409, "no_proposal", "该考生没有符合规则的重考建议。")
    now = ctx.clock.now()
    if existing is None:
        existing = ResitDecision(attempt_id=attempt.id)
        session.add(existing)
    existing.status = status
    existing.decided_at = now
    existing.decided_by = user.username
    existing.note = note.strip()[:1000]
    existing.outages = [o.as_dict() for o in found]
    _log(
        session,
        ctx,
        user,
        attempt,
        f"resit_{status}",
        {"outages": existing.outages, "note": existing.note},
    )
    return {"attempt_id": attempt.id, "status": status}


def arrangements(session: Session, ctx: AppContext, exam: Exam) -> dict[str, Any]:
    """What the office has decided for this exam's candidates so far."""
    special = session.scalars(
        select(Attempt)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .where(
            Attempt.exam_id == exam.id,
            or_(Attempt.extra_time_s > 0, Attempt.late_entry_until.is_not(None)),
        )
        .order_by(Candidate.ticket)
    )
    moves = session.execute(
        select(Event, Candidate)
        .join(Attempt, Attempt.id == Event.attempt_id)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .where(Attempt.exam_id == exam.id, Event.kind == "room_moved")
        .order_by(Event.at)
    )
    return {
        "utc_offset_minutes": exam.utc_offset_minutes,
        "candidates": [describe(session, ctx, a) for a in special],
        "moves": [
            {
                "attempt_id": e.attempt_id,
                "ticket": c.ticket,
                "name": c.name,
                "at": iso(e.at),
                **{k: e.data.get(k) for k in ("from", "to", "lot_from", "lot_to", "reason", "by")},
            }
            for e, c in moves
        ],
    }
