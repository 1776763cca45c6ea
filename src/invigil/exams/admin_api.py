"""考试管理 endpoints (``/api/v1/admin``, admin only): the form's schema, create, read, edit,
copy, delete, attachments, the exam's audit history, and the export as an exam file.

Reading an exam here returns its question text (the admin edits it), so every such read,
before T or after, is written to the audit log: the one way any staff role reads a question
before T (DESIGN: "only the admin's own exam-editing routes, audited").
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from invigil.core.context import AppContext, Ctx
from invigil.exams import editing, export, removal
from invigil.exams.examfile import DEFAULT_POINTS
from invigil.exams.models import Candidate, Exam, Room
from invigil.review import audit
from invigil.review.service import require_admin
from invigil.staff.api import as_staff
from invigil.staff.models import StaffUser

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
ATTACHMENT_TYPES = {
    t: _BINARY
    for t in ("application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain")
}
NO_STORE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


class QuestionIn(BaseModel):
    text: str = Field(max_length=10000)
    points: int = DEFAULT_POINTS


class ScoringIn(BaseModel):
    rule: str = Field("trimmed_mean", max_length=32)
    min_examiners: int | None = None


class ExamIn(BaseModel):
    """Fields in the exam file's terms; on edit, the ones left out stay as they are."""

    title: str | None = Field(None, max_length=1000)
    starts_at: str | None = Field(None, max_length=64, examples=["2026-12-01T09:00:00+08:00"])
    duration: str | None = Field(None, max_length=32, examples=["20m"])
    rules: dict[str, str] | None = Field(None, max_length=20)
    help_phone: str | None = Field(None, max_length=200)
    practice: bool | None = None
    scoring: ScoringIn | None = None
    flags: dict[str, dict[str, Any]] | None = Field(None, max_length=50)
    questions: list[QuestionIn] | None = Field(None, max_length=editing.MAX_QUESTIONS + 1)

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class CopyIn(BaseModel):
    title: str = Field(max_length=1000)
    starts_at: str = Field(max_length=64)
    candidates: bool = False


class AttachmentTitleIn(BaseModel):
    title: str = Field(max_length=1000)


def _admin(user: StaffUser) -> None:
    require_admin(user)


def detail(session: Session, ctx: AppContext, exam: Exam) -> dict[str, Any]:
    now = ctx.clock.now()
    counts = {
        "rooms": session.scalar(
            select(func.count()).select_from(Room).where(Room.exam_id == exam.id)
        ),
        "candidates": session.scalar(
            select(func.count()).select_from(Candidate).where(Candidate.exam_id == exam.id)
        ),
    }
    used = removal.used(session, exam.id)
    return {
        "id": exam.id,
        **editing.values(session, exam),
        "utc_offset_minutes": exam.utc_offset_minutes,
        "login_opens_at": editing.local_iso(exam.login_opens_at, exam.utc_offset_minutes),
        "locked": editing.login_opened(exam, now),
        "safe_after_login": list(editing.SAFE_AFTER_LOGIN),
        "published": editing.published(session, exam.id),
        "used": used,
        "deletable": used == 0,
        "rooms": int(counts["rooms"] or 0),
        "candidates": int(counts["candidates"] or 0),
        "attachments": [
            {
                "id": a.id,
                "title": a.title,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
            }
            for a in exam.attachments
        ],
    }


@router.get("/exam-schema")
def exam_schema(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (_, user):
        _admin(user)
        return editing.schema()


@router.post("/exams", status_code=201)
def create_exam(request: Request, body: ExamIn, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.create(session, ctx, user, body.fields())
        return {"exam": detail(session, ctx, exam)}


@router.get("/exams/{exam_id}")
def read_exam(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id)
        audit.record(session, ctx, user, "exam_read", exam_id=exam.id)
        return {"exam": detail(session, ctx, exam)}


@router.patch("/exams/{exam_id}")
def edit_exam(request: Request, exam_id: str, body: ExamIn, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id, lock=True)
        changes = editing.edit(session, ctx, user, exam, body.fields())
        return {"exam": detail(session, ctx, exam), "changed": sorted(changes)}


@router.post("/exams/{exam_id}/copy", status_code=201)
def copy_exam(request: Request, exam_id: str, body: CopyIn, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        source = editing.get_exam(session, exam_id)
        exam = editing.copy(session, ctx, user, source, body.title, body.starts_at, body.candidates)
        return {"exam": detail(session, ctx, exam)}


@router.delete("/exams/{exam_id}")
def delete_exam(request: Request, exam_id: str, ctx: Ctx) -> dict[str, bool]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id, lock=True)
        editing.delete_exam(session, ctx, user, exam)
        return {"deleted": True}


@router.get("/exams/{exam_id}/history")
def exam_history(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id)
        return {"entries": editing.history(session, exam.id)}


# --- attachments ----------------------------------------------------------------------------


@router.post("/exams/{exam_id}/attachments", status_code=201)
def add_attachment(
    request: Request,
    exam_id: str,
    ctx: Ctx,
    title: Annotated[str, Form(max_length=1000)],
    file: Annotated[UploadFile, File()],
) -> dict[str, Any]:
    # Read at most one byte past the limit: the size check needs no more.
    data = file.file.read(editing.ATTACHMENT_MAX_BYTES + 1)
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id, lock=True)
        a = editing.add_attachment(
            session, ctx, user, exam, title, file.filename or "attachment", data
        )
        return {
            "attachment": {
                "id": a.id,
                "title": a.title,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
            }
        }


@router.get(
    "/exams/{exam_id}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": ATTACHMENT_TYPES}},
)
def attachment_file(request: Request, exam_id: str, attachment_id: str, ctx: Ctx) -> Response:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id)
        a = editing.get_attachment(session, exam, attachment_id)
        data, ctype = ctx.blobs.get(a.blob_key), a.content_type
    return Response(
        data,
        media_type=ctype,
        headers={**NO_STORE, "Content-Disposition": "inline"},
    )


@router.patch("/exams/{exam_id}/attachments/{attachment_id}")
def rename_attachment(
    request: Request, exam_id: str, attachment_id: str, body: AttachmentTitleIn, ctx: Ctx
) -> dict[str, bool]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id, lock=True)
        a = editing.get_attachment(session, exam, attachment_id)
        editing.rename_attachment(session, ctx, user, exam, a, body.title)
        return {"saved": True}


@router.delete("/exams/{exam_id}/attachments/{attachment_id}")
def delete_attachment(
    request: Request, exam_id: str, attachment_id: str, ctx: Ctx
) -> dict[str, bool]:
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id, lock=True)
        a = editing.get_attachment(session, exam, attachment_id)
        editing.remove_attachment(session, ctx, user, exam, a)
        return {"deleted": True}


# --- export ---------------------------------------------------------------------------------


def _disposition(name: str) -> str:
    return (
        f"attachment; filename=\"exam.{name.rsplit('.', 1)[-1]}\"; filename*=UTF-8''{quote(name)}"
    )


@router.get(
    "/exams/{exam_id}/examfile",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {"schema": {"type": "object"}}}}},
)
def export_yaml(request: Request, exam_id: str, ctx: Ctx) -> Response:
    """The exam file (YAML, no passwords)."""
    with as_staff(request, ctx) as (session, user):
        _admin(user)
        exam = editing.get_exam(session, exam_id)
        text = export.exam_yaml(session, exam)
        audit.record(session, ctx, user, "exam_export", exam_id=exam.id, detail={"as": "yaml"})
        name = f"{exam.title}.yaml"
    return Response(
        text.encode(),
        media_type="application/yaml; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": _disposition(name)},
    )


@router.get(
    "/exams/{exam_id}/examfile.zip",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": _BINARY}}},
)
def export_zip(request: Request, exam_id: str, ctx: Ctx) -> FileResponse:
    """The exam file with its photos and attachments: unpack and ``invigil exam import``."""
    fd, tmp = tempfile.mkstemp(suffix=".zip", prefix="invigil-export-")
    try:
        with os.fdopen(fd, "wb") as out, as_staff(request, ctx) as (session, user):
            _admin(user)
            exam = editing.get_exam(session, exam_id)
            files = export.write_zip(session, ctx.blobs, exam, out)
            audit.record(
                session,
                ctx,
                user,
                "exam_export",
                exam_id=exam.id,
                detail={"as": "zip", "files": files},
            )
            name = f"{exam.title}.zip"
    except BaseException:
        os.unlink(tmp)
        raise
    return FileResponse(
        tmp,
        media_type="application/zip",
        headers={**NO_STORE, "Content-Disposition": _disposition(name)},
        background=BackgroundTask(os.unlink, tmp),
    )
