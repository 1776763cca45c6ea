"""Review and adjudication: triage of an exam, one candidate's evidence, rulings, verdicts.

Rulings and verdicts are never edited in place: a newer row supersedes an older one and both
stay, so an appeal can see how a decision came about. Every read and decision also goes to the
append-only audit log (``review.audit``).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invigil.analysis import audio_jobs
from invigil.attempts import helpchat
from invigil.attempts.locking import locked_attempt
from invigil.attempts.models import Attempt, Event
from invigil.attempts.service import current_stage
from invigil.attempts.stage import stage_of
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, forbidden, not_found
from invigil.exams.models import Candidate, Exam, Question, Room
from invigil.proctoring import service as proctoring
from invigil.proctoring.warnings import warnings_for
from invigil.recordings import status as recording_status
from invigil.recordings.models import Chunk, Recording, Snapshot
from invigil.review import audit
from invigil.review.models import Publication, Ruling, Verdict
from invigil.staff.models import StaffUser

REVIEW_ROLES = frozenset({"reviewer", "admin"})
# Flags that point at someone else answering or outside help weigh double in triage.
HEAVY_KINDS = frozenset(
    {
        "face_mismatch",
        "multiple_faces",
        "second_screen",
        "session_active_elsewhere",
        "left_mid_exam",
    }
)
# Which stream's snapshot shows a flag best.
SNAPSHOT_STREAM = {
    "no_face": "webcam",
    "multiple_faces": "webcam",
    "face_mismatch": "webcam",
    "focus_lost": "screen",
    "fullscreen_exit": "screen",
    "second_screen": "screen",
    "screenshot_key": "screen",
    "copy_paste": "screen",
    "evidence_gap": "evidence",
}
SNAPSHOT_NEAR = timedelta(seconds=30)
# Shorter breaks between two recordings are the normal hand-over, not a gap worth showing.
GAP_MIN = timedelta(seconds=2)
ANSWER_END = "answer_end"


def require_reviewer(user: StaffUser) -> None:
    if not set(user.roles) & REVIEW_ROLES:
        raise forbidden("只有考务工作小组和管理员可以审核。")


def require_admin(user: StaffUser) -> None:
    if "admin" not in user.roles:
        raise forbidden("只有管理员可以执行此操作。")


def get_exam(session: Session, exam_id: str) -> Exam:
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise not_found("考试")
    return exam


def get_attempt(session: Session, attempt_id: str) -> Attempt:
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        raise not_found("考生记录")
    return attempt


def questions_released(exam: Exam, now: datetime) -> bool:
    """The question text exists for review and scoring only from T, as for the candidates."""
    return now >= exam.starts_at


def is_published(session: Session, exam_id: str) -> bool:
    return session.get(Publication, exam_id) is not None


def exams(session: Session) -> list[dict[str, Any]]:
    counts = dict(
        session.execute(select(Attempt.exam_id, func.count()).group_by(Attempt.exam_id)).all()
    )
    published = set(session.scalars(select(Publication.exam_id)))
    return [
        {
            "id": e.id,
            "title": e.title,
            "starts_at": iso(e.starts_at),
            "deadline": iso(e.deadline),
            "uploads_close_at": iso(e.uploads_close_at),
            # Minutes east of UTC: the pages show every time in the exam's zone.
            "utc_offset_minutes": e.utc_offset_minutes,
            "published": e.id in published,
            "candidates": int(counts.get(e.id, 0)),
        }
        for e in session.scalars(select(Exam).order_by(Exam.starts_at.desc(), Exam.id))
    ]


# --- flags ------------------------------------------------------------------------------------


def confidence_of(event: Event) -> float:
    """The analysis' confidence when the event carries one; a client or server fact is 1."""
    value = (event.data or {}).get("confidence")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return 1.0


def weight_of(kind: str) -> float:
    return 2.0 if kind in HEAVY_KINDS else 1.0


def flag_events(session: Session, attempt_ids: list[str]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    if not attempt_ids:
        return out
    for e in session.scalars(
        select(Event)
        .where(Event.attempt_id.in_(attempt_ids), Event.severity == "violation")
        .order_by(Event.attempt_id, Event.seq)
    ):
        out[e.attempt_id].append(e)
    return out


def summarize_flags(evs: list[Event]) -> tuple[list[dict[str, Any]], float]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for e in evs:
        by_kind[e.kind].append(confidence_of(e))
    flags = [
        {"kind": kind, "count": len(cs), "max_confidence": round(max(cs), 3)}
        for kind, cs in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    score = sum(weight_of(e.kind) * confidence_of(e) for e in evs)
    return flags, round(score, 3)


# --- verdicts ---------------------------------------------------------------------------------


def describe_verdict(v: Verdict) -> dict[str, Any]:
    return {
        "id": v.id,
        "state": v.state,
        "violation": v.violation,
        "rule": v.rule,
        "reason": v.reason,
        "proposed_by": v.proposed_by,
        "proposed_at": iso(v.proposed_at),
        "confirmed_by": v.confirmed_by,
        "confirmed_at": iso(v.confirmed_at) if v.confirmed_at else None,
        "confirm_reason": v.confirm_reason,
        "superseded_at": iso(v.superseded_at) if v.superseded_at else None,
        "replaces": v.replaces_id,
    }


def is_pending(v: Verdict) -> bool:
    """A proposal waiting to replace a confirmed verdict: not in force yet."""
    return v.replaces_id is not None and v.state == "proposed" and v.superseded_at is None


def current_verdicts(session: Session, attempt_ids: list[str]) -> dict[str, Verdict]:
    if not attempt_ids:
        return {}
    rows = session.scalars(
        select(Verdict).where(Verdict.attempt_id.in_(attempt_ids), Verdict.superseded_at.is_(None))
    )
    return {v.attempt_id: v for v in rows if not is_pending(v)}


def require_open(session: Session, exam_id: str) -> None:
    """Published results are frozen: decisions change only after an admin re-opens them."""
    if is_published(session, exam_id):
        raise APIError(
            409,
            "published",
            "成绩已发布，裁定已冻结；如需更改，请管理员在考试管理中重新开放审核。",
        )


def verdict_brief(v: Verdict | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"id": v.id, "state": v.state, "violation": v.violation, "rule": v.rule}


# --- triage -----------------------------------------------------------------------------------


def _stage(session: Session, exam: Exam, attempt: Attempt, now: datetime) -> str:
    # Unread attachments only matter before entry closes; after the exam (when triage is used)
    # this skips one query per candidate.
    if attempt.entered_at is None and now < attempt.entry_closes_at:
        return current_stage(session, attempt, now)
    return stage_of(exam, attempt, now, 0)


def triage(
    session: Session,
    ctx: AppContext,
    exam: Exam,
    *,
    kind: str | None = None,
    room: str | None = None,
    min_confidence: float | None = None,
    only_flagged: bool = False,
) -> dict[str, Any]:
    now = ctx.clock.now()
    query = (
        select(Attempt, Candidate, Room)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .join(Room, Room.id == Attempt.room_id)
        .where(Attempt.exam_id == exam.id)
    )
    if room:
        query = query.where((Room.code == room) | (Room.id == room))
    rows = session.execute(query).all()
    ids = [a.id for a, _, _ in rows]
    out: list[dict[str, Any]] = []
    flagged = flag_events(session, ids)
    entered = [a.id for a, _, _ in rows if a.entered_at is not None]
    recordings = recording_status.summaries(session, entered)
    verdicts = current_verdicts(session, ids)
    for a, c, r in rows:
        evs = flagged.get(a.id, [])
        flags, score = summarize_flags(evs)
        relevant = [f for f in flags if kind is None or f["kind"] == kind]
        if kind and not relevant:
            continue
        if min_confidence is not None and not any(
            f["max_confidence"] >= min_confidence for f in relevant
        ):
            continue
        if only_flagged and not flags:
            continue
        absent = a.entered_at is None and now >= a.entry_closes_at
        missing = (
            recording_status.problems(recordings.get(a.id, []), exam.evidence_camera)
            if a.entered_at is not None
            else []
        )
        out.append(
            {
                "attempt_id": a.id,
                "ticket": c.ticket,
                "name": c.name,
                "room": r.code,
                "room_name": r.name,
                "lot": a.lot_number,
                "stage": _stage(session, exam, a, now),
                "absent": absent,
                # None: never entered, so nothing was expected (neither 完整 nor 缺失).
                "entered": a.entered_at is not None,
                "uploads_complete": (not missing) if a.entered_at is not None else None,
                "missing_uploads": missing,
                # Until the candidate's uploads close, what is missing may still arrive: the
                # desk and the phone keep retrying (上传中, not 缺失).
                "uploads_open": now < a.uploads_close_at,
                "flags": flags,
                "flag_score": score,
                "verdict": verdict_brief(verdicts.get(a.id)),
            }
        )
    # Most suspicious first; among equals, incomplete evidence and absences before the rest.
    out.sort(
        key=lambda x: (
            -float(x["flag_score"]),
            x["uploads_complete"] is not False or x["uploads_open"],
            not x["absent"],
            x["room"],
            x["lot"] if x["lot"] is not None else 1 << 30,
            x["ticket"],
        )
    )
    return {
        "exam": {"id": exam.id, "title": exam.title},
        "rooms": [{"id": r.code, "name": r.name} for r in exam.rooms],
        # Every flag kind present in the exam, whatever the filters: the kind filter's options.
        "kinds": sorted(
            session.scalars(
                select(Event.kind)
                .join(Attempt, Attempt.id == Event.attempt_id)
                .where(Attempt.exam_id == exam.id, Event.severity == "violation")
                .distinct()
            )
        ),
        "candidates": out,
    }


# --- one candidate's evidence -----------------------------------------------------------------


def _recording_rows(session: Session, attempt: Attempt) -> list[dict[str, Any]]:
    recs = list(
        session.scalars(
            select(Recording)
            .where(Recording.attempt_id == attempt.id)
            .order_by(Recording.kind, Recording.created_at, Recording.id)
        )
    )
    last_chunk = dict(
        session.execute(
            select(Chunk.recording_id, func.max(Chunk.received_at))
            .where(Chunk.recording_id.in_([r.id for r in recs]))
            .group_by(Chunk.recording_id)
        ).all()
    )
    sizes = dict(
        session.execute(
            select(Chunk.recording_id, func.sum(Chunk.size))
            .where(Chunk.recording_id.in_([r.id for r in recs]))
            .group_by(Chunk.recording_id)
        ).all()
    )
    out = []
    for r in recs:
        if r.duration_s:
            ended: datetime | None = r.created_at + timedelta(seconds=r.duration_s)
        else:
            # Without a measured duration the last chunk's arrival bounds the recording.
            ended = last_chunk.get(r.id)
        out.append(
            {
                "id": r.id,
                "kind": r.kind,
                "state": r.state,
                "closed_by": r.closed_by,  # "server": its browser was lost (recordings/closeout)
                "mime": r.media_mime or r.mime,
                "started_at": iso(r.created_at),
                "ended_at": iso(ended) if ended else None,
                "duration_s": r.duration_s,
                "bytes": int(sizes.get(r.id) or 0),
                "media_url": f"/api/v1/recordings/{r.id}/media",
                "_start": r.created_at,
                "_end": ended,
            }
        )
    return out


def _gaps(recs: list[dict[str, Any]], attempt: Attempt, exam: Exam) -> list[dict[str, Any]]:
    """Stretches of the exam without a recording, per stream."""
    if attempt.entered_at is None:
        return []
    stop = attempt.finished_at or attempt.deadline
    out: list[dict[str, Any]] = []
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        by_kind[r["kind"]].append(r)
    for kind, items in sorted(by_kind.items()):
        cursor: datetime | None = attempt.entered_at
        for r in items:
            if cursor is not None and r["_start"] - cursor > GAP_MIN:
                out.append({"kind": kind, "from": iso(cursor), "to": iso(r["_start"])})
            end = r["_end"]
            cursor = max(cursor, end) if cursor is not None and end is not None else end
        if cursor is not None and stop - cursor > GAP_MIN:
            out.append({"kind": kind, "from": iso(cursor), "to": iso(stop)})
    return out


def _ruling_dict(r: Ruling) -> dict[str, Any]:
    return {
        "id": r.id,
        "event_seq": r.event_seq,
        "violation": r.violation,
        "rule": r.rule,
        "reason": r.reason,
        "by": r.username,
        "at": iso(r.at),
    }


def _nearest_snapshot(snaps: dict[str, list[Snapshot]], kind: str, at: datetime) -> Snapshot | None:
    items = snaps.get(SNAPSHOT_STREAM.get(kind, "webcam"), [])
    if not items:
        return None
    times = [s.taken_at for s in items]
    i = bisect.bisect_left(times, at)
    near = [items[j] for j in (i - 1, i) if 0 <= j < len(items)]
    best = min(near, key=lambda s: abs((s.taken_at - at).total_seconds()))
    return best if abs(best.taken_at - at) <= SNAPSHOT_NEAR else None


def attempt_review(
    session: Session, ctx: AppContext, user: StaffUser, attempt: Attempt
) -> dict[str, Any]:
    now = ctx.clock.now()
    exam: Exam = attempt.exam
    c: Candidate = attempt.candidate
    recs = _recording_rows(session, attempt)
    evs = list(
        session.scalars(select(Event).where(Event.attempt_id == attempt.id).order_by(Event.seq))
    )
    snapshot_rows = list(
        session.scalars(
            select(Snapshot)
            .where(Snapshot.attempt_id == attempt.id)
            .order_by(Snapshot.taken_at, Snapshot.id)
        )
    )
    snaps_by_kind: dict[str, list[Snapshot]] = defaultdict(list)
    snap_ids = set()
    for s in snapshot_rows:
        snaps_by_kind[s.kind].append(s)
        snap_ids.add(s.id)
    rulings: dict[int, list[Ruling]] = defaultdict(list)
    for r in session.scalars(
        select(Ruling).where(Ruling.attempt_id == attempt.id).order_by(Ruling.at, Ruling.id)
    ):
        rulings[r.event_seq].append(r)
    flags = []
    for e in evs:
        if e.severity != "violation":
            continue
        named = (e.data or {}).get("snapshot_id")
        if isinstance(named, str) and named in snap_ids:
            snapshot_url: str | None = f"/api/v1/snapshots/{named}"
        else:
            near = _nearest_snapshot(snaps_by_kind, e.kind, e.at)
            snapshot_url = f"/api/v1/snapshots/{near.id}" if near else None
        history = rulings.get(e.seq, [])
        flags.append(
            {
                "seq": e.seq,
                "kind": e.kind,
                "at": iso(e.at),
                "confidence": confidence_of(e),
                "data": e.data,
                "snapshot_url": snapshot_url,
                "ruling": _ruling_dict(history[-1]) if history else None,
                "history": [_ruling_dict(r) for r in history],
            }
        )
    verdicts = list(
        session.scalars(
            select(Verdict)
            .where(Verdict.attempt_id == attempt.id)
            .order_by(Verdict.proposed_at, Verdict.id)
        )
    )
    live = [v for v in verdicts if v.superseded_at is None]
    current = next((v for v in reversed(live) if not is_pending(v)), None)
    pending = next((v for v in reversed(live) if is_pending(v)), None)
    released = questions_released(exam, now)
    # Before T the question text reaches no staff role (only the admin's audited exam editing).
    questions: list[Question] = (
        list(
            session.scalars(
                select(Question).where(Question.exam_id == exam.id).order_by(Question.position)
            )
        )
        if released
        else []
    )
    audit.record(session, ctx, user, "view", exam_id=exam.id, attempt_id=attempt.id)
    return {
        "attempt_id": attempt.id,
        "exam": {
            "id": exam.id,
            "title": exam.title,
            "evidence_camera": "required" if exam.evidence_camera else "off",
            "utc_offset_minutes": exam.utc_offset_minutes,
        },
        "candidate": {
            "ticket": c.ticket,
            "name": c.name,
            "room": c.room.code,
            "room_name": c.room.name,
            "lot": attempt.lot_number,
            "photo_url": f"/api/v1/review/attempts/{attempt.id}/photo" if c.photo_key else None,
        },
        "stage": current_stage(session, attempt, now),
        "schedule": {
            "starts_at": iso(exam.starts_at),
            "questions_at": iso(exam.starts_at),
            "questions_released": released,
            "deadline": iso(exam.deadline),
            "uploads_close_at": iso(exam.uploads_close_at),
            "entered_at": iso(attempt.entered_at) if attempt.entered_at else None,
            "finished_at": iso(attempt.finished_at) if attempt.finished_at else None,
        },
        "recordings": [{k: v for k, v in r.items() if not k.startswith("_")} for r in recs],
        "audio": audio_jobs.progress(
            [r["id"] for r in recs if r["kind"] == "webcam"],
            [(e.kind, e.data) for e in evs if e.kind in audio_jobs.DONE_KINDS],
        ),
        "gaps": _gaps(recs, attempt, exam),
        "events": [
            {
                "seq": e.seq,
                "at": iso(e.at),
                "kind": e.kind,
                "severity": e.severity,
                "actor": e.actor,
                "data": e.data,
                "hash": e.hash,
            }
            for e in evs
        ],
        "flags": flags,
        "snapshots": [
            {"id": s.id, "kind": s.kind, "at": iso(s.taken_at), "url": f"/api/v1/snapshots/{s.id}"}
            for s in snapshot_rows
        ],
        "questions": [
            {"position": q.position, "text": q.text, "points": q.points} for q in questions
        ],
        "answer_boundaries": [
            {"at": iso(e.at), "source": (e.data or {}).get("source", "audio"), "data": e.data}
            for e in evs
            if e.kind == ANSWER_END
        ],
        "notes": proctoring.notes(session, attempt),
        "warnings": warnings_for(session, attempt.id),
        "help": [
            {"from": m["from"], "text": m["text"], "at": m["at"]}
            for m in helpchat.messages(session, attempt)
        ],
        "verdict": describe_verdict(current) if current else None,
        "pending_verdict": describe_verdict(pending) if pending else None,
        "verdicts": [describe_verdict(v) for v in verdicts],
        "published": is_published(session, exam.id),
    }


# --- decisions --------------------------------------------------------------------------------


def _check_decision(violation: bool, rule: str | None, reason: str) -> tuple[str | None, str]:
    rule = (rule or "").strip() or None
    reason = reason.strip()
    if not reason:
        raise APIError(422, "reason_required", "请填写认定理由。")
    if violation and rule is None:
        raise APIError(422, "rule_required", "认定违纪时须写明所依据的规则条款。")
    return (rule if violation else None), reason


def rule_on_flag(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    attempt: Attempt,
    event_seq: int,
    violation: bool,
    rule: str | None,
    reason: str,
) -> dict[str, Any]:
    event = session.scalar(
        select(Event).where(Event.attempt_id == attempt.id, Event.seq == event_seq)
    )
    if event is None:
        raise APIError(404, "event_not_found", "该事件不存在。")
    if event.severity != "violation":
        raise APIError(422, "not_a_flag", "该事件不是疑似违纪事件，无需认定。")
    require_open(session, attempt.exam_id)
    rule, reason = _check_decision(violation, rule, reason)
    ruling = Ruling(
        attempt_id=attempt.id,
        event_seq=event_seq,
        violation=violation,
        rule=rule,
        reason=reason,
        staff_id=user.id,
        username=user.username,
        at=ctx.clock.now(),
    )
    session.add(ruling)
    session.flush()
    out = _ruling_dict(ruling)
    audit.record(
        session,
        ctx,
        user,
        "ruling",
        exam_id=attempt.exam_id,
        attempt_id=attempt.id,
        detail={**out, "event_kind": event.kind, "event_hash": event.hash},
    )
    return out


def propose_verdict(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    attempt: Attempt,
    violation: bool,
    rule: str | None,
    reason: str,
) -> dict[str, Any]:
    rule, reason = _check_decision(violation, rule, reason)
    now = ctx.clock.now()
    # Serialize verdicts per attempt so exactly one stays current.
    session.scalars(locked_attempt(attempt.id)).one()
    require_open(session, attempt.exam_id)
    live = list(
        session.scalars(
            select(Verdict).where(Verdict.attempt_id == attempt.id, Verdict.superseded_at.is_(None))
        )
    )
    current = next((v for v in live if not is_pending(v)), None)
    for old in live:
        if is_pending(old):
            old.superseded_at = now  # a newer proposal replaces an unconfirmed one at once
    verdict = Verdict(
        attempt_id=attempt.id,
        violation=violation,
        rule=rule,
        reason=reason,
        state="proposed",
        proposed_by_id=user.id,
        proposed_by=user.username,
        proposed_at=now,
    )
    if current is not None and current.state == "confirmed":
        # Two people made it final; one alone cannot undo it. It stays in force until a
        # second reviewer confirms its replacement.
        verdict.replaces_id = current.id
    else:
        if current is not None:
            current.superseded_at = now
        if not violation:
            # "Not a violation" clears the candidate; only a finding against them needs two.
            verdict.state = "confirmed"
            verdict.confirmed_by_id, verdict.confirmed_by, verdict.confirmed_at = (
                user.id,
                user.username,
                now,
            )
    session.add(verdict)
    session.flush()
    out = describe_verdict(verdict)
    audit.record(
        session, ctx, user, "verdict", exam_id=attempt.exam_id, attempt_id=attempt.id, detail=out
    )
    return out


def confirm_verdict(
    session: Session, ctx: AppContext, user: StaffUser, verdict_id: str, reason: str
) -> dict[str, Any]:
    verdict = session.get(Verdict, verdict_id)
    if verdict is None:
        raise not_found("认定")
    # The same lock as proposing: a confirmation and a newer proposal cannot cross.
    session.scalars(locked_attempt(verdict.attempt_id)).one()
    session.refresh(verdict)
    if verdict.superseded_at is not None:
        raise APIError(409, "superseded", "该认定已被新的认定取代。")
    if verdict.state == "confirmed":
        raise APIError(409, "already_confirmed", "该认定已确认。")
    attempt = session.get(Attempt, verdict.attempt_id)
    if attempt is not None:
        require_open(session, attempt.exam_id)
    if verdict.proposed_by_id == user.id:
        raise APIError(
            409,
            "second_reviewer_required",
            "违纪认定及对已确认裁定的更改，须由另一名审核人员复核确认。",
        )
    reason = reason.strip()
    if not reason:
        raise APIError(422, "reason_required", "请填写复核意见。")
    now = ctx.clock.now()
    if verdict.replaces_id is not None:
        replaced = session.get(Verdict, verdict.replaces_id)
        if replaced is not None and replaced.superseded_at is None:
            replaced.superseded_at = now
    verdict.state = "confirmed"
    verdict.confirmed_by_id = user.id
    verdict.confirmed_by = user.username
    verdict.confirmed_at = now
    verdict.confirm_reason = reason
    session.flush()
    out = describe_verdict(verdict)
    audit.record(
        session,
        ctx,
        user,
        "confirm",
        exam_id=attempt.exam_id if attempt else None,
        attempt_id=verdict.attempt_id,
        detail=out,
    )
    return out


def rulings_for_attempt(session: Session, attempt_id: str) -> list[dict[str, Any]]:
    """Every ruling, verdict and confirmation of an attempt, JSON-ready, oldest first (for the
    evidence package)."""
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    for r in session.scalars(select(Ruling).where(Ruling.attempt_id == attempt_id)):
        items.append((r.at, r.id, {"type": "ruling", **_ruling_dict(r)}))
    for v in session.scalars(select(Verdict).where(Verdict.attempt_id == attempt_id)):
        items.append((v.proposed_at, 0, {"type": "verdict", **describe_verdict(v)}))
        if v.confirmed_at is not None and v.proposed_at != v.confirmed_at:
            items.append(
                (
                    v.confirmed_at,
                    1,
                    {
                        "type": "confirmation",
                        "verdict_id": v.id,
                        "by": v.confirmed_by,
                        "at": iso(v.confirmed_at),
                        "reason": v.confirm_reason,
                    },
                )
            )
    items.sort(key=lambda t: (t[0], t[1]))
    return [d for _, _, d in items]
