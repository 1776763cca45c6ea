"""Recording, snapshot and upload-status endpoints."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from invigil.attempts import sessions
from invigil.attempts.models import Attempt
from invigil.core.blob_response import blob_response, jpeg_response
from invigil.core.clock import iso
from invigil.core.context import AppContext, Ctx
from invigil.core.errors import APIError, forbidden, not_found, unauthorized
from invigil.core.security import token_digest
from invigil.core.storage import BlobPurged
from invigil.exams.models import Candidate, Exam, Room
from invigil.recordings import assembly, ingest, service, snapshots, status
from invigil.recordings.access import WRITES, Actor, actor, recording_for
from invigil.recordings.models import FINALIZED, Snapshot
from invigil.recordings.tx import transaction
from invigil.staff.api import current_staff
from invigil.staff.service import ALL_ROOMS_ROLES, ROOM_ROLES, can_see_room

router = APIRouter(prefix="/api/v1", tags=["recordings"])

# Endpoints open their own transaction inside the endpoint's thread (no session dependency):
# a request never holds a database lock while it waits for another worker thread.


class CreateBody(BaseModel):
    kind: str = Field(max_length=16)
    mime: str = Field(min_length=1, max_length=200)
    started_at: datetime | None = None  # the client's claim; the server's time is kept too


class FinalizeBody(BaseModel):
    chunks: int = Field(ge=1, le=service.MAX_SEQ + 1)
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


@router.post("/recordings", status_code=201)
def create_recording(body: CreateBody, request: Request, ctx: Ctx) -> dict[str, Any]:
    with transaction(ctx.db) as session:
        who = actor(session, ctx, request, ("candidate", "phone"))
        rec = service.create(session, ctx, who, body.kind, body.mime, body.started_at)
        return {"recording_id": rec.id, "kind": rec.kind, "created_at": iso(rec.created_at)}


@router.put("/recordings/{recording_id}/chunks/{seq}", status_code=201)
async def put_chunk(recording_id: str, seq: str, request: Request) -> JSONResponse:
    token = await _token_gate(request)
    return await ingest.put_chunk(request, recording_id, seq, token)


# Tokens seen live recently, so the gate costs a query only on a token's first chunk (the
# group commit checks every chunk fully anyway). Keyed by digest: no token is kept in memory.
_GATE_TTL = 30.0
_GATE_MAX = 20_000


async def _token_gate(request: Request) -> str | None:
    """Refuse an unknown, revoked or expired token before the body is read: a stranger cannot
    make the server receive and hash megabytes it will throw away. Returns the token's keyed
    digest (None: no token), which the group commit finds the session by."""
    token = sessions.bearer_token(request)
    if token is None:
        return None  # ingest answers 401 for a missing token, also before reading
    ctx: AppContext = request.app.state.ctx
    digest = token_digest(ctx.settings.effective_secret(), token)
    seen: dict[str, float] = request.app.state.__dict__.setdefault("chunk_token_gate", {})
    now = time.monotonic()
    if seen.get(digest, 0.0) > now:
        return digest
    if not await run_in_threadpool(_token_live, ctx, token):
        raise unauthorized("登录凭证无效，请重新登录。")
    if len(seen) >= _GATE_MAX:
        seen.clear()
    seen[digest] = now + _GATE_TTL
    return digest


def _token_live(ctx: AppContext, token: str) -> bool:
    with ctx.db.session() as session:
        auth = sessions.find(session, ctx, token)
        return (
            auth is not None
            and auth.kind in ("candidate", "phone", "staff")
            and auth.revoked_at is None
            and auth.expires_at > ctx.clock.now()
        )


@router.get("/recordings/{recording_id}")
def get_recording(recording_id: str, request: Request, ctx: Ctx) -> dict[str, Any]:
    with transaction(ctx.db) as session:
        who = actor(session, ctx, request)
        found = recording_for(session, who, recording_id, write=False)
        service.log_staff_read(session, ctx, who, found, "status", None)
        return service.describe(session, found.recording)


@router.post("/recordings/{recording_id}/finalize")
def finalize(recording_id: str, body: FinalizeBody, request: Request, ctx: Ctx) -> dict[str, Any]:
    def who_of(session: Session) -> Actor:
        return actor(session, ctx, request, ("candidate", "phone", "staff"))

    return service.finalize(ctx, who_of, recording_id, body.chunks, body.sha256)


@router.get("/recordings/{recording_id}/media")
def media(
    recording_id: str,
    request: Request,
    ctx: Ctx,
    original: Annotated[bool, Query()] = False,
) -> Response:
    byte_range = request.headers.get("range")
    with transaction(ctx.db) as session:
        who = actor(session, ctx, request, ("staff",))
        found = recording_for(session, who, recording_id, write=False)
        rec = found.recording
        if rec.state == FINALIZED and rec.original_key is None:
            raise BlobPurged()  # finalizing always writes the original: only a purge clears it
        if rec.state != FINALIZED or rec.original_key is None:
            raise APIError(409, "not_finalized", "录像尚未完成上传。")
        ready = original or (rec.media_key is not None and ctx.blobs.exists(rec.media_key))
        # Logged before the bytes go out, in the same commit as nothing else.
        service.log_staff_read(
            session, ctx, who, found, "original" if original else "media", byte_range
        )
    if not ready:
        try:
            rec = assembly.ensure_media(
                ctx.db, ctx.blobs, ctx.clock, rec.id, ctx.settings.scratch_dir
            )
        except assembly.AssemblyError as exc:
            raise APIError(
                409,
                "assembly_failed",
                "录像转封装失败；可用 ?original=1 获取原始拼接文件。",
                detail=str(exc)[:300],
            ) from None
    if original:
        assert rec.original_key is not None
        key, mime, name = rec.original_key, rec.mime, "original"
        ext = ".mp4" if "mp4" in mime else ".webm"
    else:
        assert rec.media_key is not None and rec.media_mime is not None
        key, mime, name = rec.media_key, rec.media_mime, "media"
        ext = "." + key.rsplit(".", 1)[-1]
    # Streamed from the store with Range on every backend (core/blob_response.py).
    return blob_response(
        ctx.blobs,
        key,
        byte_range,
        media_type=mime.split(";")[0],
        filename=f"{rec.kind}-{rec.id}-{name}{ext}",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


# --- snapshots -------------------------------------------------------------------------------


@router.post("/snapshots", status_code=201)
async def post_snapshot(request: Request) -> JSONResponse:
    return await snapshots.post_snapshot(request)


@router.get("/snapshots/{snapshot_id}")
def get_snapshot(request: Request, snapshot_id: str, ctx: Ctx) -> Response:
    with transaction(ctx.db) as session:
        user = current_staff(request, session, ctx)
        snap = session.get(Snapshot, snapshot_id)
        if snap is None:
            raise not_found("截图")
        attempt = session.get(Attempt, snap.attempt_id)
        assert attempt is not None
        if not can_see_room(session, user, attempt.room_id):
            raise forbidden("您不是该考生所在考场的工作人员。")
        key = snap.blob_key
    return jpeg_response(ctx.blobs, key, {"Cache-Control": "private, no-store"})


@router.get("/staff/attempts/{attempt_id}/snapshots")
def attempt_snapshots(
    request: Request,
    attempt_id: str,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with transaction(ctx.db) as session:
        return _attempt_snapshots(session, ctx, request, attempt_id, limit)


def _attempt_snapshots(
    session: Session, ctx: Any, request: Request, attempt_id: str, limit: int
) -> dict[str, Any]:
    user = current_staff(request, session, ctx)
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        raise not_found("考生记录")
    if not can_see_room(session, user, attempt.room_id):
        raise forbidden("您不是该考生所在考场的工作人员。")
    newest = snapshots.latest(session, [attempt_id]).get(attempt_id, {})
    recent = session.scalars(
        select(Snapshot)
        .where(Snapshot.attempt_id == attempt_id)
        .order_by(Snapshot.taken_at.desc())
        .limit(limit)
    )
    return {
        "latest": {kind: snapshots.describe(s) for kind, s in sorted(newest.items())},
        "snapshots": [snapshots.describe(s) for s in recent],
    }


# --- upload status ---------------------------------------------------------------------------


@router.get("/candidate/uploads")
def candidate_uploads(request: Request, ctx: Ctx) -> dict[str, Any]:
    with transaction(ctx.db) as session:
        return _candidate_uploads(session, ctx, request)


def _candidate_uploads(session: Session, ctx: Any, request: Request) -> dict[str, Any]:
    who = actor(session, ctx, request, ("candidate", "phone"))
    attempt = session.get(Attempt, who.attempt_id)
    assert attempt is not None
    exam = attempt.exam
    if ctx.clock.now() >= attempt.uploads_close_at:
        raise APIError(
            403, "uploads_closed", "上传查询时间已过。", closed_at=iso(attempt.uploads_close_at)
        )
    recordings = status.for_attempt(session, attempt.id)
    problems = status.problems(recordings, exam.evidence_camera)
    if who.kind == "phone":
        # The phone sees its own streams only (recordings/access.py), not the desk's.
        own = WRITES["phone"]
        recordings = [r for r in recordings if r["kind"] in own]
        problems = [p for p in problems if p["kind"] in own]
    return {
        "uploads_close_at": iso(attempt.uploads_close_at),
        "recordings": recordings,
        "problems": problems,
        "complete": not problems,
    }


@router.get("/staff/exams/{exam_id}/missing-uploads")
def missing_uploads(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with transaction(ctx.db) as session:
        return _missing_uploads(session, ctx, request, exam_id)


def _missing_uploads(session: Session, ctx: Any, request: Request, exam_id: str) -> dict[str, Any]:
    user = current_staff(request, session, ctx)
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise not_found("考试")
    if not set(user.roles) & (ALL_ROOMS_ROLES | ROOM_ROLES):
        raise forbidden()
    if ctx.clock.now() < exam.uploads_close_at:
        raise APIError(
            409,
            "uploads_open",
            f"上传将于 {iso(exam.uploads_close_at)} 截止，届时才能确定缺失的录像。",
            closes_at=iso(exam.uploads_close_at),
        )
    rows = [
        (a, c, r)
        for a, c, r in session.execute(
            select(Attempt, Candidate, Room)
            .join(Candidate, Candidate.id == Attempt.candidate_id)
            .join(Room, Room.id == Attempt.room_id)
            .where(Attempt.exam_id == exam.id, Attempt.entered_at.is_not(None))
            .order_by(Room.code, Candidate.ticket)
        ).all()
        if can_see_room(session, user, r.id)
    ]
    recordings = status.summaries(session, [a.id for a, _, _ in rows])
    out = []
    for a, c, r in rows:
        problems = status.problems(recordings.get(a.id, []), exam.evidence_camera)
        if problems:
            out.append(
                {
                    "attempt_id": a.id,
                    "ticket": c.ticket,
                    "name": c.name,
                    "room": r.code,
                    "problems": problems,
                }
            )
    return {
        "exam_id": exam.id,
        "uploads_closed_at": iso(exam.uploads_close_at),
        "checked": len(rows),
        "attempts": out,
    }
