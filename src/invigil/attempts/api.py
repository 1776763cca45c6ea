"""Candidate endpoints (``/api/v1/candidate/...``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from invigil.attempts import consent, helpchat, phone, presence, service, sessions
from invigil.attempts.models import Attempt, AuthSession
from invigil.core import ratelimit
from invigil.core.clock import iso
from invigil.core.context import AppContext, Ctx, unit_of_work
from invigil.core.db import new_id, transaction
from invigil.core.errors import APIError
from invigil.core.ratelimit import client_address, window_for
from invigil.exams.models import Exam
from invigil.identity import liveness
from invigil.identity.models import LivenessChallenge
from invigil.proctoring.warnings import warnings_for

router = APIRouter(prefix="/api/v1/candidate", tags=["candidate"])

# What a desk client may report about itself; anything else is refused so a client cannot forge
# server-side kinds such as "login" or "lot_drawn".
CLIENT_EVENT_KINDS = frozenset(
    {
        "focus_lost",
        "focus_back",
        "fullscreen_exit",
        "fullscreen_enter",
        "visibility_hidden",
        "visibility_visible",
        "screenshot_key",
        "copy_paste",
        "context_menu",
        "second_screen",
        "track_ended",
        "device_change",
        "offline",
        "online",
        "device_check",
        "client_error",
        "help_requested",
    }
)
MAX_EVENT_DATA_BYTES = 4096


class CandidateAuth:
    def __init__(self, auth: AuthSession, attempt: Attempt) -> None:
        self.auth = auth
        self.attempt = attempt


def current_candidate(request: Request, session: Session, ctx: AppContext) -> CandidateAuth:
    auth = sessions.authenticate(session, ctx, request, ("candidate",))
    attempt = session.get(Attempt, auth.attempt_id)
    if attempt is None:
        raise APIError(401, "unauthorized", "登录凭证无效，请重新登录。")
    return CandidateAuth(auth, attempt)


@contextmanager
def as_candidate(request: Request, ctx: AppContext) -> Iterator[tuple[Session, CandidateAuth]]:
    """The request's unit of work and the candidate behind its token."""
    with unit_of_work(ctx) as session:
        yield session, current_candidate(request, session, ctx)


def _client_info(request: Request) -> dict[str, str]:
    return {
        "ip": client_address(request, request.app.state.ctx.settings),
        "user_agent": request.headers.get("user-agent", "")[:300],
    }


# Face login limits (docs/security.md). Every refused login counts against the client
# address; only a refusal that judged a face (mismatch, failed liveness) from an address that
# has logged this ticket in before counts against the ticket, so a stranger's images —
# empty ones or anyone's face — cannot lock the real candidate out.
FACE_ADDRESS_RULE = ratelimit.Rule(limit=20, window=timedelta(minutes=10))
LIVENESS_ADDRESS_RULE = ratelimit.Rule(limit=40, window=timedelta(minutes=10))
FACE_JUDGED = frozenset({"face_mismatch", "liveness_failed"})
# Refusals that say nothing about the ticket or the face: not counted anywhere.
NOT_COUNTED = frozenset(
    {"login_not_open", "exam_over", "too_many_attempts", "liveness_required", "too_large"}
)
TOO_MANY = "登录尝试过于频繁，请稍后再试，或点击【求助】联系技术服务。"


def _ticket_rule(ctx: AppContext) -> ratelimit.Rule:
    return ratelimit.Rule(
        limit=ctx.settings.login_attempts_per_window,
        window=timedelta(seconds=ctx.settings.login_window_seconds),
    )


def _throttled(verdicts: list[ratelimit.Verdict]) -> None:
    waits = [v.retry_after for v in verdicts if not v.allowed]
    if waits:
        wait = max(waits)
        raise APIError(
            429, "too_many_attempts", TOO_MANY, headers={"Retry-After": str(wait)}, retry_after=wait
        )


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    exam_id: Annotated[str, Form(max_length=64)],
    ticket: Annotated[str, Form(max_length=64)],
    face: Annotated[UploadFile, File()],
    challenge_id: Annotated[str | None, Form(max_length=64)] = None,
    frames: Annotated[list[UploadFile] | None, File()] = None,
) -> dict[str, Any]:
    now = ctx.clock.now()
    address = client_address(request, ctx.settings)
    by_address = None if ratelimit.exempt(address, ctx.settings) else f"face-login:addr:{address}"
    by_ticket = f"face-login:ticket:{exam_id}:{ticket.strip()}"
    succeeded_here = f"face-login:ok:{exam_id}:{ticket.strip()}:{address}"
    # The address's hit is counted before the face is judged and given back when the login
    # succeeds or is refused for a reason that does not count (see ratelimit.reserve).
    reserved: int | None = None
    if by_address:
        verdict, reserved = ratelimit.reserve(ctx.db, by_address, FACE_ADDRESS_RULE, now)
        _throttled([verdict])
    try:
        with unit_of_work(ctx) as session:
            _throttled([ratelimit.check(session, by_ticket, _ticket_rule(ctx), now)])
            data = face.file.read(ctx.settings.max_photo_bytes + 1)
            if len(data) > ctx.settings.max_photo_bytes:
                raise APIError(413, "too_large", "照片过大，请重新拍摄。")
            result = service.login(
                session,
                ctx,
                exam_id,
                ticket,
                data,
                sessions.bearer_token(request),
                _client_info(request),
                challenge_id=challenge_id,
                frames=_liveness_frames(frames),
            )
            ratelimit.record(session, succeeded_here, now)
            outcome = {
                "token": result.token,
                "stage": result.stage,
                "attempt_id": result.attempt.id,
            }
    except APIError as exc:
        if exc.code in NOT_COUNTED:
            if reserved is not None:
                ratelimit.release(ctx.db, reserved)
        else:
            _count_judged(ctx, exc.code, by_ticket, succeeded_here, now)
        raise
    except BaseException:
        if reserved is not None:
            ratelimit.release(ctx.db, reserved)  # a server error is not the client's attempt
        raise
    if reserved is not None:
        ratelimit.release(ctx.db, reserved)
    return outcome


def _count_judged(
    ctx: AppContext, code: str, by_ticket: str, succeeded_here: str, now: datetime
) -> None:
    """After the login's own transaction ended (it may have rolled back)."""
    lifetime = timedelta(hours=ctx.settings.session_lifetime_hours)
    with transaction(ctx.db) as session:
        if code in FACE_JUDGED and ratelimit.count(session, succeeded_here, now - lifetime):
            ratelimit.record(session, by_ticket, now)


def _liveness_frames(frames: list[UploadFile] | None) -> list[bytes]:
    if not frames:
        return []
    if len(frames) > liveness.MAX_FRAMES:
        raise APIError(413, "too_large", "活体检测画面过多，请刷新页面后重试。")
    out = []
    for f in frames:
        data = f.file.read(liveness.MAX_FRAME_BYTES + 1)
        if len(data) > liveness.MAX_FRAME_BYTES:
            raise APIError(413, "too_large", "活体检测画面过大，请刷新页面后重试。")
        out.append(data)
    return out


class LivenessBody(BaseModel):
    exam_id: str = Field(max_length=64)
    ticket: str = Field(max_length=64)


@router.post("/liveness")
def liveness_challenge(body: LivenessBody, request: Request, ctx: Ctx) -> dict[str, Any]:
    """The head-turn challenge to perform before the next face login (docs/liveness.md).
    Unknown tickets get a challenge of the same shape (which no login can use), so this
    route does not tell who is on the roster; it is limited per client address."""
    now = ctx.clock.now()
    address = client_address(request, ctx.settings)
    with unit_of_work(ctx) as session:
        if not ratelimit.exempt(address, ctx.settings):
            bucket = f"liveness:addr:{address}"
            ratelimit.lock(session, bucket)
            _throttled([ratelimit.check(session, bucket, LIVENESS_ADDRESS_RULE, now)])
            ratelimit.record(session, bucket, now)
        try:
            return service.liveness_challenge(session, ctx, body.exam_id, body.ticket)
        except APIError as exc:
            if exc.code != "unknown_candidate":
                raise
            exam = session.get(Exam, body.exam_id)
            assert exam is not None  # login_target checked the exam before the ticket
            return _decoy_challenge(exam, now)


def _decoy_challenge(exam: Exam, now: datetime) -> dict[str, Any]:
    if not exam.liveness:
        return {"required": False}
    steps = liveness.SEQUENCES[secrets.randbelow(len(liveness.SEQUENCES))]
    decoy = LivenessChallenge(
        id=new_id(),
        attempt_id="",
        steps=",".join(steps),
        created_at=now,
        expires_at=now + timedelta(seconds=liveness.CHALLENGE_SECONDS),
    )
    return {"required": True, **liveness.describe(decoy)}


@router.get("/face-consent")
def face_consent_notice(
    ctx: Ctx, exam_id: Annotated[str, Query(min_length=1, max_length=64)]
) -> dict[str, Any]:
    """What the face-recognition notice says for this exam (retention), before any login."""
    with unit_of_work(ctx) as session:
        return consent.notice(session, exam_id)


class ConsentBody(BaseModel):
    exam_id: str = Field(max_length=64)
    ticket: str = Field(max_length=64)
    consent: bool


# Decisions are limited per client address only: a cap per candidate would let a stranger who
# knows a ticket number use it up and keep the real candidate from consenting (and logging in).
CONSENT_PER_ADDRESS = 30
CONSENT_WINDOW_SECONDS = 600


@router.post("/face-consent", status_code=201)
def face_consent(request: Request, body: ConsentBody, ctx: Ctx) -> dict[str, Any]:
    """The candidate's 同意 / 不同意 to face recognition, as an event in their log."""
    decisions = window_for(request, "face-consent", CONSENT_PER_ADDRESS, CONSENT_WINDOW_SECONDS)
    if not decisions.allow(client_address(request, ctx.settings)):
        raise APIError(
            429,
            "too_many_requests",
            "操作过于频繁，请稍后再试，或拨打考务电话联系技术服务。",
            headers={"Retry-After": str(CONSENT_WINDOW_SECONDS)},
        )
    with unit_of_work(ctx) as session:
        return consent.record(
            session, ctx, body.exam_id, body.ticket, body.consent, _client_info(request)
        )


@router.get("/state")
def state(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_candidate(request, ctx) as (session, me):
        return service.state(session, ctx, me.attempt, me.auth)


class UploadBacklog(BaseModel):
    chunks: int = Field(ge=0, le=1_000_000)
    bytes: int = Field(ge=0, le=10**12)


class HeartbeatBody(BaseModel):
    # What the desk still holds to upload; an older desk sends no body.
    backlog: UploadBacklog | None = None


@router.post("/heartbeat")
def heartbeat(request: Request, ctx: Ctx, body: HeartbeatBody | None = None) -> dict[str, Any]:
    with as_candidate(request, ctx) as (session, me):
        now = ctx.clock.now()
        me.auth.last_seen_at = now
        if body is not None and body.backlog is not None:
            me.auth.upload_backlog_chunks = body.backlog.chunks
            me.auth.upload_backlog_bytes = body.backlog.bytes
        presence.heard_from(session, me.attempt, now)
        answer: dict[str, Any] = {
            "now": iso(now),
            "stage": service.current_stage(session, me.attempt, now),
            # Extra time granted by the exam office reaches the desk's countdown within one beat.
            "deadline": iso(me.attempt.deadline),
            # Proctor warnings reach the desk within one heartbeat.
            "warnings": warnings_for(session, me.attempt.id),
        }
        if me.attempt.exam.evidence_camera:
            # The desk's header shows through the exam whether the phone still records.
            answer["evidence"] = phone.evidence_brief(session, ctx, me.attempt)
        return answer


@router.post("/lot")
def draw_lot(request: Request, ctx: Ctx) -> dict[str, int]:
    with as_candidate(request, ctx) as (session, me):
        return {"number": service.draw_lot(session, ctx, me.attempt)}


@router.get("/attachments/{attachment_id}")
def attachment_file(request: Request, attachment_id: str, ctx: Ctx) -> Response:
    with as_candidate(request, ctx) as (session, me):
        attachment = service.attachment_for(session, me.attempt, attachment_id)
        return Response(
            ctx.blobs.get(attachment.blob_key),
            media_type=attachment.content_type,
            headers={
                "Content-Disposition": "inline",
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )


@router.post("/attachments/{attachment_id}/read")
def attachment_read(request: Request, attachment_id: str, ctx: Ctx) -> dict[str, bool]:
    with as_candidate(request, ctx) as (session, me):
        service.mark_read(session, ctx, me.attempt, attachment_id)
        return {"read": True}


@router.post("/enter")
def enter(request: Request, ctx: Ctx) -> dict[str, str]:
    with as_candidate(request, ctx) as (session, me):
        service.enter(session, ctx, me.attempt)
        return {"stage": service.current_stage(session, me.attempt, ctx.clock.now())}


@router.get("/questions")
def questions(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_candidate(request, ctx) as (session, me):
        return service.questions(session, ctx, me.attempt)


class FinishBody(BaseModel):
    reason: str = Field(default="candidate", max_length=64)


@router.post("/finish")
def finish(request: Request, ctx: Ctx, body: FinishBody | None = None) -> dict[str, str]:
    with as_candidate(request, ctx) as (session, me):
        service.finish(session, ctx, me.attempt, (body or FinishBody()).reason)
        return {"stage": "finished"}


class ClientEvent(BaseModel):
    kind: str = Field(max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)

    def check(self, allowed: frozenset[str]) -> None:
        """Refuse kinds this device may not report, and oversized data."""
        if self.kind not in allowed:
            raise APIError(
                422, "unknown_event_kind", f"未知的事件类型：{self.kind}", allowed=sorted(allowed)
            )
        try:
            # allow_nan=False: NaN and Infinity are not JSON; PostgreSQL refuses them and no
            # page could read them back.
            size = len(json.dumps(self.data, ensure_ascii=False, allow_nan=False))
        except ValueError:
            raise APIError(422, "invalid_request", "事件数据含有无效的数值。") from None
        if size > MAX_EVENT_DATA_BYTES:
            raise APIError(413, "too_large", "事件数据过大。")


@router.post("/events", status_code=201)
def client_event(request: Request, body: ClientEvent, ctx: Ctx) -> dict[str, int]:
    with as_candidate(request, ctx) as (session, me):
        body.check(CLIENT_EVENT_KINDS)
        event = service.record_client_event(session, ctx, me.attempt, body.kind, body.data)
        return {"seq": event.seq}


@router.post("/binding")
def binding(request: Request, ctx: Ctx) -> dict[str, Any]:
    """A fresh QR code and binding code for the evidence phone."""
    with as_candidate(request, ctx) as (session, me):
        return phone.offer(session, ctx, me.attempt)


class HelpBody(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


@router.post("/help", status_code=201)
def help_post(request: Request, body: HelpBody, ctx: Ctx) -> dict[str, Any]:
    with as_candidate(request, ctx) as (session, me):
        return helpchat.post(session, ctx, me.attempt, body.text)


@router.get("/help")
def help_get(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_candidate(request, ctx) as (session, me):
        return {
            "messages": helpchat.messages(session, me.attempt),
            "help_phone": me.attempt.exam.help_phone,
        }


# The device check measures upload speed before login, so this takes no token; it only counts
# what it receives, caps the size, and limits how often one address may use it.
SPEEDTEST_MAX_BYTES = 1024 * 1024


@router.post("/speedtest")
async def speedtest(request: Request) -> dict[str, int]:
    speedtests = window_for(request, "speedtest", limit=30, seconds=600)
    address = client_address(request, request.app.state.ctx.settings)
    if not await run_in_threadpool(speedtests.allow, address):
        raise APIError(429, "too_many_attempts", "测速过于频繁，请稍后再试。")
    received = 0
    async for part in request.stream():
        received += len(part)
        if received > SPEEDTEST_MAX_BYTES:
            raise APIError(413, "too_large", "测速数据过大。", limit=SPEEDTEST_MAX_BYTES)
    return {"bytes": received}
