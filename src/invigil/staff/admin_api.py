"""The exam office's endpoints for 考场与人员, 考务总览 and 个别安排 (``/api/v1/admin/...``).

Admins only; every change is audited (the services do it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, WebSocket
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from invigil.attempts import arrangements
from invigil.core.context import AppContext, Ctx
from invigil.core.errors import APIError, forbidden
from invigil.proctoring import overview
from invigil.staff import admin, xlsx
from invigil.staff.api import as_staff
from invigil.staff.models import StaffUser

router = APIRouter(prefix="/api/v1/admin", tags=["admin office"])

MAX_STAFF_XLSX = 5 * 1024 * 1024


@contextmanager
def as_admin(request: Request, ctx: AppContext) -> Iterator[tuple[Session, StaffUser]]:
    with as_staff(request, ctx) as (session, user):
        if "admin" not in user.roles:
            raise forbidden("只有管理员可以执行此操作。")
        yield session, user


# --- rooms -------------------------------------------------------------------------------------


class RoomBody(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class RoomRename(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@router.get("/exams/{exam_id}/rooms")
def rooms(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, _):
        return {"rooms": admin.rooms(session, admin.exam_of(session, exam_id))}


@router.post("/exams/{exam_id}/rooms", status_code=201)
def create_room(request: Request, exam_id: str, body: RoomBody, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        return admin.create_room(session, ctx, user, exam, body.code, body.name)


@router.patch("/exams/{exam_id}/rooms/{room_id}")
def rename_room(
    request: Request, exam_id: str, room_id: str, body: RoomRename, ctx: Ctx
) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        return admin.rename_room(session, ctx, user, exam, room_id, body.name)


@router.delete("/exams/{exam_id}/rooms/{room_id}")
def delete_room(request: Request, exam_id: str, room_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        return admin.delete_room(session, ctx, user, exam, room_id)


# --- staff accounts ----------------------------------------------------------------------------


class StaffBody(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    name: str = Field(default="", max_length=200)
    roles: list[str] = Field(min_length=1, max_length=5)
    room_ids: list[str] = Field(default_factory=list, max_length=200)
    password: str | None = Field(default=None, max_length=200)
    exam_id: str | None = Field(default=None, max_length=32)


class StaffPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    roles: list[str] | None = Field(default=None, max_length=5)
    room_ids: list[str] | None = Field(default=None, max_length=200)
    disabled: bool | None = None


@router.get("/staff")
def staff_list(
    request: Request, ctx: Ctx, exam: Annotated[str | None, Query(max_length=32)] = None
) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, _):
        found = admin.exam_of(session, exam) if exam else None
        return {"staff": admin.list_staff(session, found)}


@router.post("/staff", status_code=201)
def staff_create(request: Request, body: StaffBody, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, body.exam_id) if body.exam_id else None
        return admin.create_staff(
            session,
            ctx,
            user,
            username=body.username,
            name=body.name,
            roles=body.roles,
            room_ids=body.room_ids,
            password=body.password,
            exam=exam,
        )


@router.patch("/staff/{staff_id}")
def staff_update(request: Request, staff_id: str, body: StaffPatch, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        target = admin.staff_of(session, staff_id)
        out = admin.update_staff(
            session, ctx, user, target, name=body.name, roles=body.roles, room_ids=body.room_ids
        )
        if body.disabled is not None:
            out = admin.set_disabled(session, ctx, user, target, body.disabled)
        return out


@router.post("/staff/{staff_id}/password")
def staff_reset_password(request: Request, staff_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        return admin.reset_password(session, ctx, user, admin.staff_of(session, staff_id))


@router.post("/exams/{exam_id}/staff/import")
def staff_import(
    request: Request,
    exam_id: str,
    ctx: Ctx,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Staff from an XLSX sheet: every problem at once (422, nothing created), a preview with
    ``dry_run``, else the accounts with their passwords, shown this once."""
    data = file.file.read(MAX_STAFF_XLSX + 1)
    if len(data) > MAX_STAFF_XLSX:
        raise APIError(413, "too_large", "文件过大（最多 5 MB）。")
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        parsed = xlsx.parse(session, exam, data)
        if parsed.problems:
            raise APIError(
                422, "import_problems", "表格有问题，未导入任何账号。", problems=parsed.problems
            )
        rows = [
            {
                "row": r.row,
                "username": r.username,
                "name": r.name,
                "roles": r.roles,
                "rooms": r.room_codes,
            }
            for r in parsed.rows
        ]
        if dry_run:
            return {"preview": rows, "created": []}
        created = []
        for r in parsed.rows:
            made = admin.create_staff(
                session,
                ctx,
                user,
                username=r.username,
                name=r.name,
                roles=r.roles,
                room_ids=r.room_ids,
                password=None,
                exam=exam,
                audit_action="staff_import",
            )
            created.append({**made, "row": r.row})
        return {"preview": rows, "created": created}


# --- 考务总览 -----------------------------------------------------------------------------------


@router.get("/exams/{exam_id}/overview")
def exam_overview(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, _):
        return overview.overview(session, ctx, admin.exam_of(session, exam_id))


@router.websocket("/overview/ws")
async def overview_ws(websocket: WebSocket) -> None:
    await overview.overview_ws(websocket)


# --- 个别安排 -----------------------------------------------------------------------------------


class MinutesBody(BaseModel):
    minutes: int = Field(ge=0, le=1000)
    reason: str = Field(default="", max_length=500)


class MoveBody(BaseModel):
    room_id: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=500)


class DecisionBody(BaseModel):
    status: str = Field(pattern="^(confirmed|dismissed)$")
    note: str = Field(default="", max_length=1000)


@router.get("/exams/{exam_id}/candidates")
def find_candidates(
    request: Request,
    exam_id: str,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=100)] = "",
) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, _):
        exam = admin.exam_of(session, exam_id)
        return {"candidates": arrangements.search(session, ctx, exam, q)}


@router.get("/exams/{exam_id}/arrangements")
def list_arrangements(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, _):
        return arrangements.arrangements(session, ctx, admin.exam_of(session, exam_id))


@router.post("/exams/{exam_id}/attempts/{attempt_id}/extra-time")
def extra_time(
    request: Request, exam_id: str, attempt_id: str, body: MinutesBody, ctx: Ctx
) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        attempt = arrangements.attempt_of(session, exam, attempt_id)
        return arrangements.set_extra_time(session, ctx, user, attempt, body.minutes, body.reason)


@router.post("/exams/{exam_id}/attempts/{attempt_id}/move")
def move(
    request: Request, exam_id: str, attempt_id: str, body: MoveBody, ctx: Ctx
) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        attempt = arrangements.attempt_of(session, exam, attempt_id)
        return arrangements.move(session, ctx, user, attempt, body.room_id, body.reason)


@router.post("/exams/{exam_id}/attempts/{attempt_id}/late-entry")
def late_entry(
    request: Request, exam_id: str, attempt_id: str, body: MinutesBody, ctx: Ctx
) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        attempt = arrangements.attempt_of(session, exam, attempt_id)
        return arrangements.allow_late_entry(session, ctx, user, attempt, body.minutes, body.reason)


@router.get("/exams/{exam_id}/resit")
def resit(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, _):
        return arrangements.proposals(session, ctx, admin.exam_of(session, exam_id))


@router.post("/exams/{exam_id}/attempts/{attempt_id}/resit")
def resit_decide(
    request: Request, exam_id: str, attempt_id: str, body: DecisionBody, ctx: Ctx
) -> dict[str, Any]:
    with as_admin(request, ctx) as (session, user):
        exam = admin.exam_of(session, exam_id)
        attempt = arrangements.attempt_of(session, exam, attempt_id)
        return arrangements.decide(session, ctx, user, attempt, body.status, body.note)
