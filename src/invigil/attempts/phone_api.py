"""Endpoints of the evidence phone (``/api/v1/phone/...``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from invigil.attempts import events, phone, sessions
from invigil.attempts.api import ClientEvent, _client_info
from invigil.attempts.models import Attempt
from invigil.attempts.service import schedule
from invigil.core.clock import iso
from invigil.core.context import AppContext, Ctx, unit_of_work
from invigil.core.errors import APIError, unauthorized
from invigil.core.ratelimit import client_address, window_for

router = APIRouter(prefix="/api/v1/phone", tags=["phone"])


@contextmanager
def as_phone(request: Request, ctx: AppContext) -> Iterator[tuple[Session, Attempt]]:
    with unit_of_work(ctx) as session:
        auth = sessions.authenticate(session, ctx, request, ("phone",))
        attempt = session.get(Attempt, auth.attempt_id)
        if attempt is None:
            raise unauthorized()
        yield session, attempt


def exam_end(attempt: Attempt, now: datetime) -> dict[str, Any]:
    """Whether this candidate's exam is over, for the phone to tell them to stop recording:
    ``ended`` is "submitted" (the desk finished), "time_over" (their deadline passed) or None;
    ``deadline`` is their own (extra time moves it)."""
    ended = None
    if attempt.finished_at is not None:
        ended = "submitted"
    elif now >= attempt.deadline:
        ended = "time_over"
    return {"ended": ended, "deadline": iso(attempt.deadline)}


class BindBody(BaseModel):
    code: str | None = Field(default=None, max_length=16)
    token: str | None = Field(default=None, max_length=100)


@router.post("/bind")
def bind(request: Request, body: BindBody, ctx: Ctx) -> dict[str, Any]:
    client = _client_info(request)
    # Binding codes are eight digits: cap the guesses one address can make.
    if not window_for(request, "phone-bind", limit=20, seconds=600).allow(
        client_address(request, ctx.settings)
    ):
        raise APIError(429, "too_many_attempts", "尝试次数过多，请 10 分钟后再试，或联系技术服务。")
    with unit_of_work(ctx) as session:
        return phone.bind(session, ctx, code=body.code, token=body.token, client=client)


@router.get("/state")
def state(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_phone(request, ctx) as (session, attempt):
        return {
            "now": iso(ctx.clock.now()),
            "attempt_id": attempt.id,
            "candidate": {"name": attempt.candidate.name, "ticket": attempt.candidate.ticket},
            "exam": {"id": attempt.exam.id, "title": attempt.exam.title},
            "schedule": schedule(attempt.exam, attempt),
            "evidence": phone.evidence_status(session, ctx, attempt),
            **exam_end(attempt, ctx.clock.now()),
        }


class StatusBody(BaseModel):
    state: str = Field(max_length=16)


@router.post("/status")
def status(request: Request, body: StatusBody, ctx: Ctx) -> dict[str, Any]:
    """The phone reports what it is doing; it doubles as the phone's heartbeat. The answer
    says whether the candidate's exam is over (``ended``, ``deadline``)."""
    with as_phone(request, ctx) as (session, attempt):
        phone.report_state(session, ctx, attempt, body.state)
        now = ctx.clock.now()
        return {"now": iso(now), "state": body.state, **exam_end(attempt, now)}


@router.post("/heartbeat")
def heartbeat(request: Request, ctx: Ctx) -> dict[str, str]:
    with unit_of_work(ctx) as session:
        auth = sessions.authenticate(session, ctx, request, ("phone",))
        auth.last_seen_at = ctx.clock.now()
        return {"now": iso(ctx.clock.now())}


# What the phone itself may log: the gaps in its evidence recording (page hidden, offline,
# camera lost), with their durations.
PHONE_EVENT_KINDS = frozenset({"evidence_gap"})


@router.post("/events", status_code=201)
def phone_event(request: Request, body: ClientEvent, ctx: Ctx) -> dict[str, int]:
    with as_phone(request, ctx) as (session, attempt):
        body.check(PHONE_EVENT_KINDS)
        at, data = events.dated_report(ctx.clock.now(), body.data)
        event = events.append(session, attempt.id, body.kind, at=at, actor="phone", data=data)
        return {"seq": event.seq}
