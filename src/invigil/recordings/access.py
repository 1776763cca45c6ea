"""Who may touch which recording.

A candidate token reaches its own attempt's webcam and screen recordings, a phone token only its
attempt's evidence recordings, staff read within their rooms and roles and never write. Another
attempt's recording answers 404, as if it did not exist, so ids cannot be probed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from fastapi import Request
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from invigil.attempts import sessions
from invigil.attempts.models import Attempt, AuthSession
from invigil.core.clock import ensure_utc, iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, forbidden, not_found
from invigil.core.security import token_digest
from invigil.exams.models import Exam
from invigil.recordings.batch import Batch
from invigil.recordings.models import Recording
from invigil.staff.models import StaffUser
from invigil.staff.service import can_see_room

ID = re.compile(r"^[0-9a-f]{32}$")
# Which recording kinds each device writes.
WRITES = {"candidate": frozenset({"webcam", "screen"}), "phone": frozenset({"evidence"})}

# --- the upload fast paths (ingest.put_chunk, snapshots.post_snapshot) ---------------------------
# The group commit (batch.py) looks up the tokens of all its uploads in one statement, with their
# attempts' upload windows; `live_writer` makes the checks the two paths share. Anything it
# refuses goes through the full checks, which refuse it with the right error.


class Writer(NamedTuple):
    """A token as the upload fast paths check it, with its attempt's upload window."""

    auth_id: str
    kind: str
    revoked_at: datetime | None
    expires_at: datetime
    last_seen_at: datetime
    attempt_id: str
    closes: datetime  # the attempt's uploads_close_at, its extra time included


_WRITERS = (
    select(
        AuthSession.token_digest,
        AuthSession.id,
        AuthSession.kind,
        AuthSession.revoked_at,
        AuthSession.expires_at,
        AuthSession.last_seen_at,
        Attempt.id,
        Attempt.extra_time_s,
        Exam.starts_at,
        Exam.duration_s,
        Exam.upload_grace_after_s,
    )
    .select_from(AuthSession)
    .join(Attempt, Attempt.id == AuthSession.attempt_id)
    .join(Exam, Exam.id == Attempt.exam_id)
    .where(AuthSession.token_digest.in_(bindparam("digests", expanding=True)))
)


def writers(conn: Connection, digests: list[str]) -> dict[str, Writer]:
    """The group commit's lookup of its uploads' tokens, by keyed digest (tokens without an
    attempt, i.e. staff, are not found: the full checks refuse their uploads)."""
    found: dict[str, Writer] = {}
    for row in conn.execute(_WRITERS, {"digests": digests}):
        digest, auth_id, kind, revoked, expires, seen, attempt_id = row[:7]
        extra_s, starts_at, duration_s, grace_s = row[7:]
        closes = ensure_utc(starts_at) + timedelta(seconds=duration_s + (extra_s or 0) + grace_s)
        found[digest] = Writer(auth_id, kind, revoked, expires, seen, attempt_id, closes)
    return found


def bearer_digest(ctx: AppContext, request: Request) -> str | None:
    """The keyed digest of the request's bearer token, as sessions are found by (None: none)."""
    token = sessions.bearer_token(request)
    return token_digest(ctx.settings.effective_secret(), token) if token else None


def live_writer(batch: Batch, writer: Writer | None, kind: str, now: datetime) -> bool:
    """Whether ``writer`` is a live token whose device writes ``kind`` before its uploads
    close; if so, marks the session seen with the batch when that is due."""
    if (
        writer is None
        or writer.revoked_at is not None
        or ensure_utc(writer.expires_at) <= now
        or kind not in WRITES.get(writer.kind, frozenset())
        or now >= writer.closes
    ):
        return False
    if now - ensure_utc(writer.last_seen_at) >= sessions.TOUCH_EVERY:
        batch.touch(writer.auth_id, now)
    return True


@dataclass
class Actor:
    kind: str  # candidate | phone | staff
    auth: AuthSession
    attempt_id: str | None = None
    staff: StaffUser | None = None

    @property
    def label(self) -> str:
        return f"staff:{self.staff.username}" if self.staff else self.kind


def actor(
    session: Session,
    ctx: AppContext,
    request: Request,
    kinds: tuple[str, ...] = ("candidate", "phone", "staff"),
) -> Actor:
    auth = sessions.authenticate(session, ctx, request, kinds)
    if auth.kind == "staff":
        user = session.get(StaffUser, auth.staff_id)
        if user is None:
            raise APIError(401, "unauthorized", "登录凭证无效，请重新登录。")
        return Actor("staff", auth, staff=user)
    if auth.attempt_id is None:
        raise APIError(401, "unauthorized", "登录凭证无效，请重新登录。")
    return Actor(auth.kind, auth, attempt_id=auth.attempt_id)


@dataclass
class Found:
    recording: Recording
    attempt: Attempt
    exam: Exam


def recording_for(
    session: Session,
    who: Actor,
    recording_id: str,
    *,
    write: bool,
    lock: bool = False,
) -> Found:
    """The recording if ``who`` may read it (``write=False``) or upload to it (``write=True``)."""
    if not ID.match(recording_id):
        raise not_found("录像")
    query = (
        select(Recording, Attempt, Exam)
        .join(Attempt, Attempt.id == Recording.attempt_id)
        .join(Exam, Exam.id == Attempt.exam_id)
        .where(Recording.id == recording_id)
    )
    if lock:
        # Uploads share the row; finalize takes it exclusively (PostgreSQL; SQLite serializes).
        query = query.with_for_update(read=True, of=Recording)
    row = session.execute(query).first()
    if row is None:
        raise not_found("录像")
    rec, attempt, exam = row
    if who.kind == "staff":
        assert who.staff is not None
        if write:
            raise forbidden("工作人员不能上传或修改录像。")
        if not can_see_room(session, who.staff, attempt.room_id):
            raise forbidden("您不是该考生所在考场的工作人员。")
        return Found(rec, attempt, exam)
    if rec.attempt_id != who.attempt_id:
        raise not_found("录像")
    if not write and rec.kind not in WRITES.get(who.kind, frozenset()):
        # Reading follows the same rule as writing: each device sees only its own streams.
        raise not_found("录像")
    if write and rec.kind not in WRITES.get(who.kind, frozenset()):
        device = "手机佐证端" if rec.kind == "evidence" else "考试电脑"
        raise forbidden(f"该录像只能由{device}上传。")
    return Found(rec, attempt, exam)


def check_upload_window(exam: Exam, now: datetime, attempt: Attempt | None = None) -> None:
    """Uploads close ``upload_grace_after`` past the deadline (the candidate's own with
    ``attempt``: extra time moves it)."""
    closes = attempt.uploads_close_at if attempt is not None else exam.uploads_close_at
    if now >= closes:
        raise APIError(
            403,
            "uploads_closed",
            "上传时间已过，无法继续上传。如有未上传完的录像，请联系技术服务。",
            closed_at=iso(closes),
        )
