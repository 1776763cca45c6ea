"""Staff endpoints (``/api/v1/staff/...``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from invigil.attempts import helpchat, sessions
from invigil.core.context import AppContext, Ctx, unit_of_work
from invigil.core.errors import forbidden, unauthorized
from invigil.core.limits import MAX_INT
from invigil.core.ratelimit import client_address
from invigil.staff import service
from invigil.staff.models import StaffUser

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])


def current_staff(request: Request, session: Session, ctx: AppContext) -> StaffUser:
    auth = sessions.authenticate(session, ctx, request, ("staff",))
    user = session.get(StaffUser, auth.staff_id)
    if user is None or user.disabled_at is not None:
        raise unauthorized("该账号已停用，请联系管理员。")
    return user


@contextmanager
def as_staff(request: Request, ctx: AppContext) -> Iterator[tuple[Session, StaffUser]]:
    """The request's unit of work and the staff member behind its token."""
    with unit_of_work(ctx) as session:
        yield session, current_staff(request, session, ctx)


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


@router.post("/login")
def login(body: LoginBody, request: Request, ctx: Ctx) -> dict[str, str]:
    address = client_address(request, ctx.settings)
    with unit_of_work(ctx) as session:
        return {"token": service.login(session, ctx, body.username, body.password, address)}


@router.post("/logout")
def logout(request: Request, ctx: Ctx) -> dict[str, bool]:
    """Ends the session: its token and every signed media link it issued stop working."""
    with unit_of_work(ctx) as session:
        auth = sessions.authenticate(session, ctx, request, ("staff",))
        auth.revoked_at = ctx.clock.now()
        auth.revoked_reason = "logout"
        return {"logged_out": True}


@router.get("/me")
def me(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return {
            "username": user.username,
            "roles": user.roles,
            "room_ids": sorted(service.room_ids_of(session, user)),
        }


@router.get("/rooms/{room_id}")
def room(
    request: Request,
    room_id: str,
    ctx: Ctx,
    exam: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        found = service.resolve_room(session, ctx, user, room_id, exam)
        return service.room_view(session, ctx, found)


@router.get("/attempts/{attempt_id}")
def attempt(request: Request, attempt_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return service.attempt_view(session, ctx, service.attempt_for(session, user, attempt_id))


@router.get("/attempts/{attempt_id}/events")
def attempt_events(
    request: Request,
    attempt_id: str,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return service.attempt_events(
            session, service.attempt_for(session, user, attempt_id), after
        )


class HelpReply(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


@router.post("/attempts/{attempt_id}/help", status_code=201)
def help_reply(request: Request, attempt_id: str, body: HelpReply, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        attempt = service.attempt_for(session, user, attempt_id)
        if not set(user.roles) & {"proctor", "tech", "admin"}:
            raise forbidden("只有监考员、技术服务和管理员可以回复求助。")
        return helpchat.post(session, ctx, attempt, body.text, staff=user.username)


@router.get("/attempts/{attempt_id}/help")
def help_messages(request: Request, attempt_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return {
            "messages": helpchat.messages(session, service.attempt_for(session, user, attempt_id))
        }
