"""考务总览: the exam day on one screen, per room and in total, live.

:func:`overview` counts every candidate of an exam by status in a fixed number of aggregate
queries (no per-candidate query), so 2,000 candidates cost about as much as 20. The statuses,
one per candidate, in the order of the day:

- ``not_logged_in``: no face login yet (entry still open);
- ``logged_in``: face login done, phone not bound (or not needed), not entered;
- ``phone_bound``: the evidence phone is bound, not entered yet;
- ``entered``: entered, waiting for the start;
- ``answering``: answering (from T to their own deadline);
- ``finished``: finished (by 结束考试 or the deadline);
- ``absent``: never entered and entry has closed (a late entry reopens it).

Besides: who is online now (desk heartbeat within the alive window), upload problems (open
recordings with missing chunks, stale uploads while answering, recordings still not finalized
a while after finishing), open help requests and violation alerts no staff member has
acknowledged, and per room the link into its proctor console.

Live: ``/api/v1/admin/overview/ws`` subscribes to the bus channels of the exam's rooms (every
event of every candidate) and of the exam (arrangements); a message marks the overview dirty
and it is recomputed at most every ``MIN_GAP_S`` (debounced), and at least every
``REFRESH_S`` (the clock moves stages too: T, the deadline, entry closing). One computation is
shared by every connection of the process watching the same exam (:class:`Shared`). A pushed
overview reaches the page within about a second of the event; the page never reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from invigil.attempts import sessions
from invigil.attempts.helpchat import KIND as HELP_KIND
from invigil.attempts.models import AttachmentRead, Attempt, AuthSession, Event
from invigil.attempts.stage import ABSENT, ANSWERING, FINISHED
from invigil.core.clock import ensure_utc, iso
from invigil.core.context import AppContext, unit_of_work
from invigil.exams.models import Attachment, Candidate, Exam, Room
from invigil.proctoring.models import AlertAck
from invigil.proctoring.service import HELP_DISMISSED_KIND
from invigil.recordings.models import OPEN, Chunk, Recording
from invigil.staff.models import StaffUser

log = logging.getLogger(__name__)

STATUSES = (
    "not_logged_in",
    "logged_in",
    "phone_bound",
    "entered",
    "answering",
    "finished",
    "absent",
)
STALE_AFTER = timedelta(seconds=60)  # an answering candidate's stream with no chunk this long
FINALIZE_GRACE = timedelta(minutes=5)  # after finishing, the last chunks still upload
UPLOAD_PROBLEMS_LISTED = 200
MIN_GAP_S = 0.5
REFRESH_S = 2.0
UPLOADS_EVERY_S = 10.0  # the chunk aggregate is the one costly query: computed less often


def _status(exam: Exam, a: Any, now: datetime, unread: int, phone: bool) -> str:
    """What ``attempts.stage.stage_of`` says, folded into the overview's statuses."""
    deadline = exam.deadline + timedelta(seconds=a.extra_time_s or 0)
    entry_closes = exam.entry_closes_at
    if a.late_entry_until is not None and ensure_utc(a.late_entry_until) > entry_closes:
        entry_closes = ensure_utc(a.late_entry_until)
    if a.finished_at is not None:
        return FINISHED
    if a.entered_at is not None:
        if now >= deadline:
            return FINISHED
        return ANSWERING if now >= exam.starts_at else "entered"
    if now >= entry_closes:
        return ABSENT
    if a.face_verified_at is None:
        return "not_logged_in"
    return "phone_bound" if phone else "logged_in"


def _attempt_rows(session: Session, exam: Exam) -> list[Any]:
    return list(
        session.execute(
            select(
                Attempt.id,
                Attempt.room_id,
                Attempt.face_verified_at,
                Attempt.entered_at,
                Attempt.finished_at,
                Attempt.extra_time_s,
                Attempt.late_entry_until,
            ).where(Attempt.exam_id == exam.id)
        )
    )


def _live_sessions(session: Session, exam: Exam, kind: str, since: datetime) -> set[str]:
    return set(
        session.scalars(
            select(AuthSession.attempt_id)
            .join(Attempt, Attempt.id == AuthSession.attempt_id)
            .where(
                Attempt.exam_id == exam.id,
                AuthSession.kind == kind,
                AuthSession.revoked_at.is_(None),
                AuthSession.last_seen_at > since,
            )
            .distinct()
        )
    )


def _phones(session: Session, exam: Exam) -> set[str]:
    """Attempts with a bound phone (a phone session that was not replaced or revoked)."""
    return set(
        session.scalars(
            select(AuthSession.attempt_id)
            .join(Attempt, Attempt.id == AuthSession.attempt_id)
            .where(
                Attempt.exam_id == exam.id,
                AuthSession.kind == "phone",
                AuthSession.revoked_at.is_(None),
            )
            .distinct()
        )
    )


def _reads(session: Session, exam: Exam) -> dict[str, int]:
    return dict(
        session.execute(
            select(AttachmentRead.attempt_id, func.count())
            .join(Attempt, Attempt.id == AttachmentRead.attempt_id)
            .where(Attempt.exam_id == exam.id)
            .group_by(AttachmentRead.attempt_id)
        ).all()
    )


def _open_help(session: Session, exam: Exam) -> list[dict[str, Any]]:
    """Candidates whose last help message is theirs, neither answered nor dismissed."""
    last = (
        select(Event.attempt_id, func.max(Event.seq).label("seq"))
        .join(Attempt, Attempt.id == Event.attempt_id)
        .where(Attempt.exam_id == exam.id, Event.kind.in_((HELP_KIND, HELP_DISMISSED_KIND)))
        .group_by(Event.attempt_id)
        .subquery()
    )
    rows = session.execute(
        select(Event, Attempt.room_id, Candidate.ticket, Candidate.name)
        .join(last, and_(Event.attempt_id == last.c.attempt_id, Event.seq == last.c.seq))
        .join(Attempt, Attempt.id == Event.attempt_id)
        .join(Candidate, Candidate.id == Attempt.candidate_id)
        .order_by(Event.at)
    )
    return [
        {
            "attempt_id": e.attempt_id,
            "room_id": room_id,
            "ticket": ticket,
            "name": name,
            "text": e.data.get("text"),
            "at": iso(e.at),
        }
        for e, room_id, ticket, name in rows
        if e.kind == HELP_KIND and e.data.get("from") == "candidate"
    ]


def _open_alerts(session: Session, exam: Exam) -> dict[str, int]:
    """Per room, violation events that no staff member has acknowledged."""
    acked = select(AlertAck.seq).where(
        AlertAck.attempt_id == Event.attempt_id, AlertAck.seq == Event.seq
    )
    return dict(
        session.execute(
            select(Attempt.room_id, func.count())
            .join(Event, Event.attempt_id == Attempt.id)
            .where(
                Attempt.exam_id == exam.id,
                Event.severity == "violation",
                ~acked.exists(),
            )
            .group_by(Attempt.room_id)
        ).all()
    )


def upload_problems(
    session: Session, exam: Exam, now: datetime, status_of: dict[str, str]
) -> list[dict[str, Any]]:
    """Open recordings that are in trouble: chunks missing below the highest received, no chunk
    for a while although the candidate is answering, or still open well after finishing."""
    listed = list(
        session.execute(
            select(
                Recording.id,
                Recording.kind,
                Recording.attempt_id,
                Recording.created_at,
                Attempt.room_id,
                Attempt.finished_at,
                Attempt.extra_time_s,
                Candidate.ticket,
                Candidate.name,
            )
            .join(Attempt, Attempt.id == Recording.attempt_id)
            .join(Candidate, Candidate.id == Attempt.candidate_id)
            .where(Attempt.exam_id == exam.id, Recording.state == OPEN)
            .order_by(Candidate.ticket, Recording.created_at)
        )
    )
    # Per open recording: chunks held, the highest seq, the last arrival. By recording id (the
    # chunks' primary key leads with it), not by a join the planner may scan the table for.
    stats: dict[str, tuple[int, int | None, datetime | None]] = {}
    ids = [r.id for r in listed]
    for i in range(0, len(ids), 1000):
        for rid, held, highest, arrived in session.execute(
            select(
                Chunk.recording_id,
                func.count(),
                func.max(Chunk.seq),
                func.max(Chunk.received_at),
            )
            .where(Chunk.recording_id.in_(ids[i : i + 1000]))
            .group_by(Chunk.recording_id)
        ):
            stats[rid] = (int(held), highest, arrived)
    # A newer recording of the same kind supersedes an older open one (a reload or crash):
    # only the newest of each kind can be stale; any can miss chunks.
    newest: dict[tuple[str, str], datetime] = {}
    for r in listed:
        key = (r.attempt_id, r.kind)
        newest[key] = max(newest.get(key, ensure_utc(r.created_at)), ensure_utc(r.created_at))
    out: list[dict[str, Any]] = []
    for r in listed:
        reason = None
        count, top, seen = stats.get(r.id, (0, None, None))
        last = ensure_utc(seen) if seen else ensure_utc(r.created_at)
        done_at = ensure_utc(r.finished_at) if r.finished_at else None
        if done_at is None and status_of.get(r.attempt_id) == FINISHED:
            done_at = exam.deadline + timedelta(seconds=r.extra_time_s or 0)
        if top is not None and count != top + 1:
            reason = "missing_chunks"
        elif done_at is not None and now - done_at >= FINALIZE_GRACE:
            reason = "not_finalized"
        elif (
            status_of.get(r.attempt_id) == ANSWERING
            and ensure_utc(r.created_at) == newest[(r.attempt_id, r.kind)]
            and now - last >= STALE_AFTER
        ):
            reason = "stale"
        if reason:
            out.append(
                {
                    "attempt_id": r.attempt_id,
                    "room_id": r.room_id,
                    "ticket": r.ticket,
                    "name": r.name,
                    "recording_id": r.id,
                    "kind": r.kind,
                    "reason": reason,
                    "received": count,
                    "missing": (top + 1 - count) if top is not None else 0,
                    "last_chunk_at": iso(last),
                }
            )
    return out


def overview(
    session: Session,
    ctx: AppContext,
    exam: Exam,
    uploads: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole exam's counts. ``uploads`` reuses a recent upload-problem list (the costly
    part) instead of computing it again."""
    now = ctx.clock.now()
    alive = now - timedelta(seconds=ctx.settings.session_alive_seconds)
    rooms = list(session.scalars(select(Room).where(Room.exam_id == exam.id).order_by(Room.code)))
    attachments = session.scalar(select(func.count()).where(Attachment.exam_id == exam.id)) or 0
    reads = _reads(session, exam) if attachments else {}
    online = _live_sessions(session, exam, "candidate", alive)
    phones = _phones(session, exam) if exam.evidence_camera else set()
    status_of: dict[str, str] = {}
    room_of: dict[str, str] = {}
    for a in _attempt_rows(session, exam):
        unread = attachments - reads.get(a.id, 0)
        status_of[a.id] = _status(exam, a, now, unread, a.id in phones)
        room_of[a.id] = a.room_id
    help_open = _open_help(session, exam)
    alerts = _open_alerts(session, exam)
    if uploads is None:
        uploads = upload_problems(session, exam, now, status_of)

    per_room: dict[str, dict[str, int]] = {
        r.id: dict.fromkeys((*STATUSES, "total", "online"), 0) for r in rooms
    }
    for attempt_id, status in status_of.items():
        counts = per_room[room_of[attempt_id]]
        counts[status] += 1
        counts["total"] += 1
        counts["online"] += attempt_id in online
    helps: dict[str, int] = defaultdict(int)
    for item in help_open:
        helps[item["room_id"]] += 1
    upload_rooms: dict[str, set[str]] = defaultdict(set)
    for item in uploads:
        upload_rooms[room_of.get(item["attempt_id"], item["room_id"])].add(item["attempt_id"])

    out_rooms = []
    for r in rooms:
        counts = per_room[r.id]
        out_rooms.append(
            {
                "room_id": r.id,
                "code": r.code,
                "name": r.name,
                "counts": counts,
                "help_open": helps.get(r.id, 0),
                "alerts_open": int(alerts.get(r.id, 0)),
                "upload_problems": len(upload_rooms.get(r.id, ())),
                "console_url": f"/proctor/?room={r.id}",
            }
        )
    total = dict.fromkeys((*STATUSES, "total", "online"), 0)
    for counts in per_room.values():
        for key, n in counts.items():
            total[key] += n
    return {
        "exam": {
            "id": exam.id,
            "title": exam.title,
            "starts_at": iso(exam.starts_at),
            "deadline": iso(exam.deadline),
            "entry_closes_at": iso(exam.entry_closes_at),
            "evidence_camera": exam.evidence_camera,
            "utc_offset_minutes": exam.utc_offset_minutes,
        },
        "now": iso(now),
        "statuses": list(STATUSES),
        "rooms": out_rooms,
        "total": {
            "counts": total,
            "help_open": len(help_open),
            "alerts_open": sum(int(n) for n in alerts.values()),
            "upload_problems": len({u["attempt_id"] for u in uploads}),
        },
        "help_requests": help_open[:UPLOAD_PROBLEMS_LISTED],
        "uploads": uploads[:UPLOAD_PROBLEMS_LISTED],
    }


# --- live ----------------------------------------------------------------------------------------


class Shared:
    """One overview computation per exam and process, shared by every watching connection.

    ``get`` returns the cached overview while it is fresh and nothing changed (``dirty``);
    the upload problems are kept for ``UPLOADS_EVERY_S`` between recomputations.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards the dicts; each exam computes under its own lock
        self.exam_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self.cache: dict[str, tuple[float, dict[str, Any], int]] = {}
        self.uploads: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self.versions: dict[str, int] = defaultdict(int)

    def touch(self, exam_id: str) -> None:
        with self.lock:
            self.versions[exam_id] += 1

    def get(self, ctx: AppContext, exam_id: str, max_age: float) -> dict[str, Any]:
        with self.lock:
            exam_lock = self.exam_locks[exam_id]
        with exam_lock:  # one computation per exam at a time; the others wait and reuse it
            with self.lock:
                version = self.versions[exam_id]
                hit = self.cache.get(exam_id)
                up = self.uploads.get(exam_id)
            if hit and hit[2] == version and time.monotonic() - hit[0] < max_age:
                return hit[1]
            uploads = up[1] if up and time.monotonic() - up[0] < UPLOADS_EVERY_S else None
            with unit_of_work(ctx) as session:
                exam = session.get(Exam, exam_id)
                if exam is None:
                    raise LookupError(exam_id)
                data = overview(session, ctx, exam, uploads)
            with self.lock:
                if uploads is None:
                    self.uploads[exam_id] = (time.monotonic(), data["uploads"])
                self.cache[exam_id] = (time.monotonic(), data, version)
            return data


SHARED = Shared()


def _admin(ctx: AppContext, token: str | None) -> str:
    """The admin behind a token, or PermissionError."""
    with unit_of_work(ctx) as session:
        auth = sessions.find(session, ctx, token)
        now = ctx.clock.now()
        if (
            auth is None
            or auth.kind != "staff"
            or auth.revoked_at is not None
            or auth.expires_at <= now
        ):
            raise PermissionError("unauthorized")
        user = session.get(StaffUser, auth.staff_id)
        if user is None or user.disabled_at is not None or "admin" not in user.roles:
            raise PermissionError("forbidden")
        return user.id


def _channels(ctx: AppContext, exam_id: str) -> set[str]:
    with unit_of_work(ctx) as session:
        if session.get(Exam, exam_id) is None:
            raise LookupError(exam_id)
        ids = session.scalars(select(Room.id).where(Room.exam_id == exam_id))
        return {f"room:{r}" for r in ids} | {f"exam:{exam_id}"}


async def overview_ws(ws: WebSocket) -> None:
    """``/api/v1/admin/overview/ws?exam=ID``, token as ``?token=`` or the first frame
    ``{"token": "..."}``. Sends ``{"type": "overview", ...}`` at once and after every change;
    ``{"type": "ping"}`` → ``{"type": "pong"}``. Closes 4401 (token), 4403 (not an admin),
    4404 (no such exam)."""
    ctx: AppContext = ws.app.state.ctx
    await ws.accept()
    token = ws.query_params.get("token")
    exam_id = ws.query_params.get("exam") or ""
    if not token:
        with contextlib.suppress(Exception):
            first = await asyncio.wait_for(ws.receive_json(), 10)
            token = str(first.get("token")) if isinstance(first, dict) else None
    try:
        await run_in_threadpool(_admin, ctx, token)
        channels = await run_in_threadpool(_channels, ctx, exam_id)
    except PermissionError as exc:
        code = 4401 if str(exc) == "unauthorized" else 4403
        with contextlib.suppress(Exception):
            await ws.close(code=code, reason=str(exc))
        return
    except LookupError:
        with contextlib.suppress(Exception):
            await ws.close(code=4404, reason="no such exam")
        return
    sub = await ctx.db.bus.subscribe(channels)
    changed = asyncio.Event()
    changed.set()

    async def listen() -> None:
        async for _ in sub:
            SHARED.touch(exam_id)
            changed.set()

    async def read() -> None:
        while True:
            frame = await ws.receive_text()
            with contextlib.suppress(ValueError):
                if json.loads(frame).get("type") == "ping":
                    await ws.send_text('{"type": "pong"}')

    async def push() -> None:
        last = ""
        checked = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), REFRESH_S)
            changed.clear()
            if time.monotonic() - checked > 10:  # a disabled or demoted admin is cut off
                await run_in_threadpool(_admin, ctx, token)
                checked = time.monotonic()
            data = await run_in_threadpool(SHARED.get, ctx, exam_id, MIN_GAP_S)
            body = json.dumps(
                {"type": "overview", **{k: v for k, v in data.items() if k != "now"}},
                ensure_ascii=False,
                sort_keys=True,
            )
            if body != last:
                last = body
                await ws.send_text(body)
            await asyncio.sleep(MIN_GAP_S)  # debounce: a burst of events is one push

    tasks = [asyncio.create_task(t) for t in (listen(), read(), push())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if isinstance(error, PermissionError):
                with contextlib.suppress(Exception):
                    await ws.close(code=4401, reason=str(error))
            elif error is not None and not isinstance(error, WebSocketDisconnect):
                log.warning("overview connection ended: %r", error)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await sub.close()
