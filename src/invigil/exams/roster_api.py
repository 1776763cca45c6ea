"""考生导入 endpoints (admin only, audited): the template, the upload that starts a check,
the import's progress and result, 确认导入, and the exam's current roster."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.core.clock import iso
from invigil.core.context import Ctx
from invigil.core.errors import APIError, not_found
from invigil.exams import roster, roster_jobs
from invigil.exams.models import Candidate, Exam, Room
from invigil.exams.roster_jobs import RosterImport
from invigil.review import audit
from invigil.review.service import require_admin
from invigil.staff.api import as_staff

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NO_STORE = {"Cache-Control": "private, no-store"}


def _exam(session: Session, exam_id: str) -> Exam:
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise not_found("考试")
    return exam


def _import(session: Session, import_id: str) -> RosterImport:
    imp = session.get(RosterImport, import_id)
    if imp is None:
        raise not_found("导入记录")
    return imp


BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/roster/template",
    response_class=Response,
    responses={200: {"content": {XLSX: BINARY, "text/csv": BINARY}}},
)
def template(request: Request, ctx: Ctx, format: Literal["xlsx", "csv"] = "xlsx") -> Response:
    """The roster template: the header row and one example row."""
    with as_staff(request, ctx) as (_, user):
        require_admin(user)
    if format == "csv":
        body, media, name = roster.template_csv(), "text/csv; charset=utf-8", "考生名单模板.csv"
    else:
        body, media, name = roster.template_xlsx(), XLSX, "考生名单模板.xlsx"
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(
        body, media_type=media, headers={**NO_STORE, "Content-Disposition": disposition}
    )


def _read(upload: UploadFile, what: str, limit: int) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise APIError(413, "too_large", f"{what}太大（最多 {limit >> 20} MB）。")
    if not data:
        raise APIError(422, "empty_file", f"{what}是空文件。")
    return data


@router.post("/exams/{exam_id}/roster", status_code=202)
def upload(
    request: Request,
    exam_id: str,
    ctx: Ctx,
    roster_file: Annotated[UploadFile, File(alias="roster")],
    photos: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    """Store a roster (XLSX/CSV) and its photos (ZIP, optional on a re-import that keeps the
    photos) and start checking them; poll ``/roster-imports/{id}`` for progress and result."""
    limit = ctx.settings.max_import_bytes
    with as_staff(request, ctx) as (session, user):
        require_admin(user)
        exam = _exam(session, exam_id)
        data = _read(roster_file, "考生名单", limit)
        photos_data = _read(photos, "照片压缩包", limit) if photos and photos.filename else None
        now = ctx.clock.now()
        imp = roster_jobs.start(
            session,
            ctx.blobs,
            exam,
            user.id,
            roster_file.filename or "roster",
            data,
            photos.filename if photos_data is not None and photos else None,
            photos_data,
            now,
        )
        audit.record(
            session,
            ctx,
            user,
            "roster_upload",
            exam_id=exam.id,
            detail={
                "import_id": imp.id,
                "roster": imp.roster_name,
                "photos": imp.photos_name,
                "bytes": len(data) + len(photos_data or b""),
            },
        )
        return roster_jobs.status(session, imp, now)


@router.get("/roster-imports/{import_id}")
def import_status(request: Request, import_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        require_admin(user)
        return roster_jobs.status(session, _import(session, import_id), ctx.clock.now())


@router.post("/roster-imports/{import_id}/apply", status_code=202)
def apply(request: Request, import_id: str, ctx: Ctx) -> dict[str, Any]:
    """确认导入: apply the previewed difference (a job; poll the import for its progress)."""
    with as_staff(request, ctx) as (session, user):
        require_admin(user)
        imp = _import(session, import_id)
        now = ctx.clock.now()
        roster_jobs.request_apply(session, imp, now)
        diff = (imp.result or {}).get("diff") or {}
        audit.record(
            session,
            ctx,
            user,
            "roster_apply",
            exam_id=imp.exam_id,
            detail={
                "import_id": imp.id,
                "added": len(diff.get("added", [])),
                "changed": len(diff.get("changed", [])),
                "removed": len(diff.get("removed", [])),
            },
        )
        return roster_jobs.status(session, imp, now)


@router.get("/exams/{exam_id}/roster")
def current_roster(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    """The exam's candidates and rooms as the import page lists them, with the latest import."""
    with as_staff(request, ctx) as (session, user):
        require_admin(user)
        exam = _exam(session, exam_id)
        now = ctx.clock.now()
        rows = session.execute(
            select(Candidate.ticket, Candidate.name, Room.code, Candidate.photo_key)
            .join(Room, Room.id == Candidate.room_id)
            .where(Candidate.exam_id == exam_id)
            .order_by(Candidate.ticket)
        ).all()
        latest = session.scalar(
            select(RosterImport)
            .where(RosterImport.exam_id == exam_id)
            .order_by(RosterImport.created_at.desc())
            .limit(1)
        )
        return {
            "exam": {"id": exam.id, "title": exam.title, "practice": exam.practice},
            "rooms": [{"id": r.code, "name": r.name} for r in exam.rooms],
            "candidates": [
                {"ticket": t, "name": n, "room": r, "photo": bool(k)} for t, n, r, k in rows
            ],
            "login_opens_at": iso(exam.login_opens_at),
            "locked": roster_jobs.locked_reason(session, exam, now),
            "latest": roster_jobs.status(session, latest, now) if latest else None,
        }
