"""Staff endpoints (``/api/v1/staff/...``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from invigil.attempts import sessions
from invigil.core.context import Ctx, DbSession
from invigil.core.errors import unauthorized
from invigil.staff import service
from invigil.staff.models import StaffUser

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])


def current_staff(request: Request, session: DbSession, ctx: Ctx) -> StaffUser:
    auth = sessions.authenticate(session, ctx, request, ("staff",))
    user = session.get(StaffUser, auth.staff_id)
    if user is None:
        raise unauthorized()
    return user


Staff = Annotated[StaffUser, Depends(current_staff)]


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


@router.post("/login")
def login(body: LoginBody, session: DbSession, ctx: Ctx) -> dict[str, str]:
    return {"token": service.login(session, ctx, body.username, body.password)}


@router.get("/me")
def me(session: DbSession, user: Staff) -> dict[str, Any]:
    return {
        "username": user.username,
        "roles": user.roles,
        "room_ids": sorted(service.room_ids_of(session, user)),
    }


@router.get("/rooms/{room_id}")
def room(
    room_id: str,
    session: DbSession,
    ctx: Ctx,
    user: Staff,
    exam: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    found = service.resolve_room(session, ctx, user, room_id, exam)
    return service.room_view(session, ctx, found)


@router.get("/attempts/{attempt_id}")
def attempt(attempt_id: str, session: DbSession, ctx: Ctx, user: Staff) -> dict[str, Any]:
    return service.attempt_view(session, ctx, service.attempt_for(session, user, attempt_id))


@router.get("/attempts/{attempt_id}/events")
def attempt_events(
    attempt_id: str,
    session: DbSession,
    user: Staff,
    after: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    return service.attempt_events(session, service.attempt_for(session, user, attempt_id), after)
