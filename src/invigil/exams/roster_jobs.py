"""The web roster import: upload → check (a background job with progress) → preview →
确认导入 (a background job with progress) → applied.

Both slow steps run as durable jobs (core/jobs) so no request waits minutes for 2,000 face
checks and a restart does not lose them (a job that dies is run again from the start). A job
writes its progress in short transactions of its own (the page polls the import row) and
extends its lease as it goes, so no second worker picks up a long check. The job's own session
stays untouched until the end: on SQLite its first write takes the database's write lock.

The uploads live in the blob store (put/get/delete only) under ``roster-imports/<id>/``,
so any process or machine may run the job; they are removed once the import is applied or
superseded.

Applying writes every row change in one transaction, and only while login has not opened and
no candidate has used the exam; photo files are stored first under keys no row uses yet, so a
failed transaction leaves the exam as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, delete, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.clock import iso
from invigil.core.db import Base, UTCDateTime, new_id, transaction
from invigil.core.errors import APIError
from invigil.core.jobs import JobContext
from invigil.core.storage import BlobStore
from invigil.exams import roster
from invigil.exams.durations import format_local
from invigil.exams.importer import add_candidate
from invigil.exams.models import Candidate, Exam, Room
from invigil.exams.removal import used

log = logging.getLogger(__name__)

CHECK, APPLY = "roster.check", "roster.apply"
CHECKING, INVALID, READY, APPLYING, APPLIED, FAILED = (
    "checking",
    "invalid",
    "ready",
    "applying",
    "applied",
    "failed",
)
# How often a running job writes its progress (and renews its lease).
PROGRESS_EVERY_S = 0.5


class RosterImport(Base):
    __tablename__ = "roster_imports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    exam_id: Mapped[str] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=CHECKING)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    roster_name: Mapped[str] = mapped_column(String(300))
    photos_name: Mapped[str | None] = mapped_column(String(300))
    # Problems, difference and counts once checked; the applied counts once applied.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The exam's candidates when checked (a digest): applying refuses if they changed since.
    basis: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def _key(import_id: str, what: str) -> str:
    return f"roster-imports/{import_id}/{what}"


# --- the exam's side --------------------------------------------------------------------


def _rooms(session: Session, exam_id: str) -> list[Room]:
    return list(session.scalars(select(Room).where(Room.exam_id == exam_id).order_by(Room.code)))


def _current(
    session: Session, blobs: BlobStore, exam_id: str, *, hashes: bool = True
) -> tuple[dict[str, roster.Existing], str]:
    """The exam's candidates as the difference sees them (``hashes``: with their photos'
    digests, which reads every photo), and a digest of the rows."""
    rows = session.execute(
        select(Candidate.ticket, Candidate.name, Room.code, Candidate.photo_key)
        .join(Room, Room.id == Candidate.room_id)
        .where(Candidate.exam_id == exam_id)
        .order_by(Candidate.ticket)
    ).all()
    existing: dict[str, roster.Existing] = {}
    digest = hashlib.sha256()
    for ticket, name, room, key in rows:
        sha = None
        if key and hashes:
            try:
                sha = hashlib.sha256(blobs.get(key)).hexdigest()
            except (FileNotFoundError, LookupError):
                sha = None
        existing[ticket] = roster.Existing(name, room, sha)
        digest.update(json.dumps([ticket, name, room, key or ""]).encode())
    return existing, digest.hexdigest()


def locked_reason(session: Session, exam: Exam, now: datetime) -> str | None:
    """Why the exam's roster can no longer change, or None."""
    if now >= exam.login_opens_at:
        opened = format_local(exam.login_opens_at, exam.utc_offset_minutes)
        return f"考生登录已于 {opened} 开放，不能再修改考生名单（已登录考生的记录是证据）。"
    if n := used(session, exam.id):
        return f"已有 {n} 名考生登录或留下记录，不能再修改考生名单。"
    return None


def _refuse_if_locked(session: Session, exam: Exam, now: datetime) -> None:
    reason = locked_reason(session, exam, now)
    if reason:
        raise APIError(409, "roster_locked", reason)


# --- starting, reading ------------------------------------------------------------------


def start(
    session: Session,
    blobs: BlobStore,
    exam: Exam,
    staff_id: str | None,
    roster_name: str,
    roster_data: bytes,
    photos_name: str | None,
    photos_data: bytes | None,
    now: datetime,
) -> RosterImport:
    """Store the uploads and queue their check (in the caller's transaction)."""
    _refuse_if_locked(session, exam, now)
    # An earlier import of this exam not yet applied is superseded: its files go.
    for old in session.scalars(
        select(RosterImport).where(
            RosterImport.exam_id == exam.id, RosterImport.state.in_((CHECKING, INVALID, READY))
        )
    ):
        old.state = FAILED
        old.message = "已被新上传的名单取代。"
        old.updated_at = now
        _drop_files(blobs, old.id)
    imp = RosterImport(
        exam_id=exam.id,
        staff_id=staff_id,
        state=CHECKING,
        done=0,
        total=0,
        roster_name=roster_name[:300],
        photos_name=photos_name[:300] if photos_name else None,
        created_at=now,
        updated_at=now,
    )
    session.add(imp)
    session.flush()
    blobs.put(_key(imp.id, "roster"), roster_data)
    if photos_data is not None:
        blobs.put(_key(imp.id, "photos"), photos_data)
    jobs.enqueue(session, CHECK, {"import_id": imp.id}, now=now, dedupe_key=f"{CHECK}:{imp.id}")
    return imp


def status(session: Session, imp: RosterImport, now: datetime) -> dict[str, Any]:
    exam = session.get(Exam, imp.exam_id)
    assert exam is not None
    result = imp.result or {}
    locked = locked_reason(session, exam, now)
    return {
        "id": imp.id,
        "exam_id": imp.exam_id,
        "state": imp.state,
        "done": imp.done,
        "total": imp.total,
        "roster_name": imp.roster_name,
        "photos_name": imp.photos_name,
        "problems": result.get("problems", []),
        "errors": result.get("errors", 0),
        "warnings": result.get("warnings", 0),
        "rows": result.get("rows", 0),
        "diff": result.get("diff"),
        "applied": result.get("applied"),
        "message": imp.message,
        "created_at": iso(imp.created_at),
        "applied_at": iso(imp.applied_at) if imp.applied_at else None,
        "login_opens_at": iso(exam.login_opens_at),
        "locked": locked,
        "can_apply": imp.state == READY and locked is None,
    }


def request_apply(session: Session, imp: RosterImport, now: datetime) -> None:
    if imp.state != READY:
        told = {
            INVALID: "名单还有问题，改正后请重新上传检查。",
            CHECKING: "名单还在检查中。",
            APPLYING: "正在导入。",
            APPLIED: "这份名单已经导入。",
        }
        raise APIError(409, "not_ready", told.get(imp.state, imp.message or "请重新上传名单。"))
    exam = session.get(Exam, imp.exam_id)
    assert exam is not None
    _refuse_if_locked(session, exam, now)
    imp.state, imp.done, imp.total, imp.updated_at = APPLYING, 0, 0, now
    jobs.enqueue(session, APPLY, {"import_id": imp.id}, now=now, dedupe_key=f"{APPLY}:{imp.id}")


# --- the jobs ---------------------------------------------------------------------------


class _Progress:
    """Writes done/total every PROGRESS_EVERY_S in its own transaction and renews the job's
    lease, so the page's bar moves and no other worker takes the job over."""

    def __init__(self, ctx: JobContext, import_id: str, job_key: str) -> None:
        self.ctx, self.import_id, self.job_key = ctx, import_id, job_key
        self.last = 0.0

    def __call__(self, done: int, total: int, force: bool = False) -> None:
        if not force and time.monotonic() - self.last < PROGRESS_EVERY_S and done < total:
            return
        self.last = time.monotonic()
        now = self.ctx.clock.now()
        lease = timedelta(seconds=float(getattr(self.ctx.settings, "job_lease_seconds", 300)))
        with transaction(self.ctx.db) as s:
            s.execute(
                update(RosterImport)
                .where(RosterImport.id == self.import_id)
                .values(done=done, total=total, updated_at=now)
            )
            s.execute(
                update(jobs.Job)
                .where(jobs.Job.dedupe_key == self.job_key, jobs.Job.state == jobs.RUNNING)
                .values(lease_expires_at=now + lease)
            )


def _blobs(ctx: JobContext) -> BlobStore:
    from invigil.core.storage import blob_store

    return blob_store(ctx.settings)


def _finish(ctx: JobContext, import_id: str, **values: Any) -> None:
    with transaction(ctx.db) as s:
        s.execute(
            update(RosterImport)
            .where(RosterImport.id == import_id)
            .values(updated_at=ctx.clock.now(), **values)
        )


@jobs.handler(CHECK)
def run_check(_: Session, payload: dict[str, Any], ctx: JobContext) -> None:
    import_id = payload["import_id"]
    blobs = _blobs(ctx)
    with transaction(ctx.db) as s:
        imp = s.get(RosterImport, import_id)
        if imp is None or imp.state != CHECKING:
            return  # superseded, or already checked by a run before a crash
        exam = s.get(Exam, imp.exam_id)
        assert exam is not None
        rooms = [(r.code, r.name) for r in _rooms(s, exam.id)]
        existing, basis = _current(s, blobs, exam.id)
        practice, roster_name, has_photos = exam.practice, imp.roster_name, bool(imp.photos_name)
    progress = _Progress(ctx, import_id, f"{CHECK}:{import_id}")
    try:
        data = blobs.get(_key(import_id, "roster"))
        photos = blobs.get(_key(import_id, "photos")) if has_photos else None
        checked = roster.check_roster(
            roster_name,
            data,
            photos,
            rooms,
            existing=existing,
            practice=practice,
            progress=progress,
            spawn=True,
            workers=max(1, (os.cpu_count() or 1) - 1),  # one core stays with the server
        )
    except Exception:
        log.exception("roster check %s failed", import_id)
        _finish(
            ctx, import_id, state=FAILED, message="检查时出错，请重新上传；如仍失败请联系技术人员。"
        )
        return
    errors = len(checked.errors)
    result = {
        "problems": [p.as_dict() for p in checked.problems],
        "errors": errors,
        "warnings": len(checked.problems) - errors,
        "rows": len(checked.candidates),
        "diff": checked.diff if checked.ok else None,
    }
    if checked.ok:
        body = json.dumps([c.as_dict() for c in checked.candidates]).encode()
        blobs.put(_key(import_id, "checked"), body)
    else:
        _drop_files(blobs, import_id)
    _finish(ctx, import_id, state=READY if checked.ok else INVALID, result=result, basis=basis)


@jobs.handler(APPLY)
def run_apply(session: Session, payload: dict[str, Any], ctx: JobContext) -> None:
    import_id = payload["import_id"]
    blobs = _blobs(ctx)
    with transaction(ctx.db) as s:
        imp = s.get(RosterImport, import_id)
        if imp is None or imp.state != APPLYING:
            return
        exam_id, has_photos = imp.exam_id, bool(imp.photos_name)
        known = {
            c.ticket: (c.id, c.photo_key)
            for c in s.scalars(select(Candidate).where(Candidate.exam_id == exam_id))
        }
    checked = [
        roster.CheckedCandidate.from_dict(d)
        for d in json.loads(blobs.get(_key(import_id, "checked")))
    ]
    # The photos first, under keys no row uses yet (the transaction below may still fail).
    archive = None
    if has_photos:
        archive, _ = roster.read_photos(blobs.get(_key(import_id, "photos")))
    with_photo = [c for c in checked if c.photo is not None]
    progress = _Progress(ctx, import_id, f"{APPLY}:{import_id}")
    stored: dict[str, tuple[str, str]] = {}  # ticket -> (candidate id, new photo key)
    for i, c in enumerate(with_photo, 1):
        assert archive is not None and c.photo is not None and c.photo_sha256
        the_id = known[c.ticket][0] if c.ticket in known else new_id()
        new_key = f"exams/{exam_id}/photos/{the_id}-{c.photo_sha256[:12]}.jpg"
        blobs.put(new_key, archive.read(c.photo))
        stored[c.ticket] = (the_id, new_key)
        progress(i, len(with_photo))

    now = ctx.clock.now()
    imp = session.get(RosterImport, import_id)
    exam = session.get(Exam, exam_id)
    assert imp is not None and exam is not None
    _, basis = _current(session, blobs, exam_id, hashes=False)
    reason = locked_reason(session, exam, now)
    if reason is None and basis != imp.basis:
        reason = "检查之后考生名单已被修改，请重新上传检查。"
    if reason is not None:
        for _, unused in stored.values():
            blobs.delete(unused)
        imp.state, imp.message, imp.updated_at = FAILED, reason, now
        return
    rooms = {r.code: r.id for r in _rooms(session, exam_id)}
    by_ticket = {
        c.ticket: c for c in session.scalars(select(Candidate).where(Candidate.exam_id == exam_id))
    }
    stale: list[str] = []
    listed = set()
    for c in checked:
        listed.add(c.ticket)
        cand_id: str | None = None
        key: str | None = None
        if c.ticket in stored:
            cand_id, key = stored[c.ticket]
        current = by_ticket.get(c.ticket)
        if current is None:
            add_candidate(
                session,
                blobs,
                exam_id,
                rooms[c.room],
                c.ticket,
                c.name,
                None,
                c.embedding,
                candidate_id=cand_id,
                stored_photo=key,
            )
            continue
        current.name = c.name
        if current.room_id != rooms[c.room]:
            current.room_id = rooms[c.room]
            session.execute(
                update(Attempt)
                .where(Attempt.candidate_id == current.id)
                .values(room_id=rooms[c.room])
            )
        if key is not None:
            if current.photo_key:
                stale.append(current.photo_key)
            current.photo_key, current.face_embedding = key, c.embedding
    removed = [c for t, c in by_ticket.items() if t not in listed]
    for gone in removed:
        if gone.photo_key:
            stale.append(gone.photo_key)
        session.execute(delete(Attempt).where(Attempt.candidate_id == gone.id))
        session.execute(delete(Candidate).where(Candidate.id == gone.id))
    diff = (imp.result or {}).get("diff") or {}
    imp.result = {
        **(imp.result or {}),
        "applied": {
            "added": len(diff.get("added", [])),
            "changed": len(diff.get("changed", [])),
            "removed": len(removed),
        },
    }
    imp.state, imp.applied_at, imp.updated_at = APPLIED, now, now
    imp.done = imp.total = len(with_photo)
    session.flush()

    # Replaced photos and the uploads go once the rows no longer name them.
    def cleanup(_: Session) -> None:
        for key in stale:
            blobs.delete(key)
        _drop_files(blobs, import_id)

    event.listen(session, "after_commit", cleanup, once=True)


def _drop_files(blobs: BlobStore, import_id: str) -> None:
    for what in ("roster", "photos", "checked"):
        blobs.delete(_key(import_id, what))
