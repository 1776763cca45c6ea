"""Endpoints of review (``/api/v1/review``), blind scoring (``/api/v1/scoring``), publication
(``/api/v1/admin``) and the candidates' score lookup (``/api/v1/results``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from invigil.attempts import sessions
from invigil.core.blob_response import blob_response, jpeg_response
from invigil.core.context import AppContext, Ctx, unit_of_work
from invigil.core.errors import APIError, not_found
from invigil.core.ratelimit import client_address, window_for
from invigil.core.storage import BlobPurged
from invigil.evidence import retention
from invigil.recordings import assembly
from invigil.recordings.models import FINALIZED
from invigil.review import audit, exports, publication, scoring, service
from invigil.review.schemas import (
    ConfirmBody,
    LookupBody,
    PublishBody,
    ReopenBody,
    RulingBody,
    ScoresBody,
    VerdictBody,
)
from invigil.staff.api import as_staff

review_router = APIRouter(prefix="/api/v1/review", tags=["review"])
scoring_router = APIRouter(prefix="/api/v1/scoring", tags=["scoring"])
admin_router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
results_router = APIRouter(prefix="/api/v1/results", tags=["results"])
routers = (review_router, scoring_router, admin_router, results_router)

NO_STORE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _signed_media(
    request: Request, session: Session, ctx: AppContext, data: dict[str, Any]
) -> None:
    """Media URLs a <video> can stream with Range requests (it cannot send the bearer token)."""
    auth = sessions.authenticate(session, ctx, request, ("staff",))
    for rec in data.get("recordings", []):
        if rec.get("media_url"):
            rec["media_url"] = sessions.signed_link(ctx, auth, rec["media_url"])


# --- review -----------------------------------------------------------------------------------


@review_router.get("/exams")
def review_exams(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        return {"exams": service.exams(session)}


@review_router.get("/exams/{exam_id}/triage")
def triage(
    request: Request,
    exam_id: str,
    ctx: Ctx,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    room: Annotated[str | None, Query(max_length=64)] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    only_flagged: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        exam = service.get_exam(session, exam_id)
        return service.triage(
            session,
            ctx,
            exam,
            kind=kind or None,
            room=room or None,
            min_confidence=min_confidence,
            only_flagged=only_flagged,
        )


@review_router.get("/attempts/{attempt_id}")
def review_attempt(request: Request, attempt_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        attempt = service.get_attempt(session, attempt_id)
        data = service.attempt_review(session, ctx, user, attempt)
        _signed_media(request, session, ctx, data)
        return data


@review_router.get("/attempts/{attempt_id}/photo")
def review_photo(request: Request, attempt_id: str, ctx: Ctx) -> Response:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        attempt = service.get_attempt(session, attempt_id)
        key = attempt.candidate.photo_key
        if key is None or not ctx.blobs.exists(key):
            raise not_found("报名照片")
        audit.record(
            session, ctx, user, "view_photo", exam_id=attempt.exam_id, attempt_id=attempt.id
        )
    return jpeg_response(ctx.blobs, key, NO_STORE)


@review_router.post("/attempts/{attempt_id}/rulings", status_code=201)
def post_ruling(request: Request, attempt_id: str, body: RulingBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        attempt = service.get_attempt(session, attempt_id)
        ruling = service.rule_on_flag(
            session, ctx, user, attempt, body.event_seq, body.violation, body.rule, body.reason
        )
        return {"ruling": ruling}


@review_router.post("/attempts/{attempt_id}/verdict", status_code=201)
def post_verdict(request: Request, attempt_id: str, body: VerdictBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        attempt = service.get_attempt(session, attempt_id)
        verdict = service.propose_verdict(
            session, ctx, user, attempt, body.violation, body.rule, body.reason
        )
        return {"verdict": verdict}


@review_router.post("/verdicts/{verdict_id}/confirm")
def confirm(request: Request, verdict_id: str, body: ConfirmBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        return {"verdict": service.confirm_verdict(session, ctx, user, verdict_id, body.reason)}


@review_router.get("/audit")
def audit_log(
    request: Request,
    ctx: Ctx,
    attempt_id: Annotated[str | None, Query(max_length=32)] = None,
    exam_id: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_reviewer(user)
        return {"entries": audit.entries(session, attempt_id=attempt_id, exam_id=exam_id)}


# --- blind scoring ----------------------------------------------------------------------------


@scoring_router.get("/exams")
def scoring_exams(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return {"exams": scoring.exams_for(session, ctx, user)}


@scoring_router.get("/exams/{exam_id}/sheets")
def scoring_sheets(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        exam = scoring.require_examiner_of(session, user, exam_id)
        return scoring.sheets(session, ctx, user, exam)


@scoring_router.get("/sheets/{sheet_id}")
def scoring_sheet(request: Request, sheet_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        scoring.require_examiner(user)
        data = scoring.sheet_view(session, ctx, user, sheet_id)
        _signed_media(request, session, ctx, data)
        return data


@scoring_router.get("/sheets/{sheet_id}/media/{index}")
def scoring_media(request: Request, sheet_id: str, index: int, ctx: Ctx) -> Response:
    with as_staff(request, ctx) as (session, user):
        scoring.require_examiner(user)
        rec = scoring.media_recording(session, ctx, user, sheet_id, index)
        if rec.state == FINALIZED and rec.original_key is None:
            raise BlobPurged()  # finalizing always writes the original: only a purge clears it
        if rec.original_key is None:
            raise APIError(409, "not_finalized", "录像尚未完成上传。")
        recording_id, ready = rec.id, rec.media_key is not None and ctx.blobs.exists(rec.media_key)
    if not ready:
        try:
            rec = assembly.ensure_media(
                ctx.db, ctx.blobs, ctx.clock, recording_id, ctx.settings.scratch_dir
            )
        except assembly.AssemblyError:
            raise APIError(409, "assembly_failed", "录像转封装失败，请联系技术服务。") from None
    assert rec.media_key is not None and rec.media_mime is not None
    # No recording id or candidate in the file name: the examiner's browser may show it.
    return blob_response(
        ctx.blobs,
        rec.media_key,
        request.headers.get("range"),
        media_type=rec.media_mime.split(";")[0],
        filename=f"sheet-{sheet_id}-{index}.{rec.media_key.rsplit('.', 1)[-1]}",
        headers=NO_STORE,
    )


@scoring_router.post("/sheets/{sheet_id}/scores", status_code=201)
def submit_scores(request: Request, sheet_id: str, body: ScoresBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        scoring.require_examiner(user)
        return scoring.submit(session, ctx, user, sheet_id, body.scores)


# --- publication (admin) ----------------------------------------------------------------------


@admin_router.get("/exams")
def admin_exams(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_admin(user)
        return {"exams": publication.admin_exams(session, ctx)}


@admin_router.get("/exams/{exam_id}/results")
def admin_results(request: Request, exam_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_admin(user)
        exam = service.get_exam(session, exam_id)
        data = publication.results(session, ctx, exam)
        data["retention"] = retention.status(session, exam)
        return data


@admin_router.post("/exams/{exam_id}/publish")
def publish(
    request: Request, exam_id: str, ctx: Ctx, body: PublishBody | None = None
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_admin(user)
        exam = service.get_exam(session, exam_id)
        return publication.publish(session, ctx, user, exam, bool(body and body.force))


@admin_router.post("/exams/{exam_id}/reopen")
def reopen(request: Request, exam_id: str, body: ReopenBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        service.require_admin(user)
        exam = service.get_exam(session, exam_id)
        return publication.reopen(session, ctx, user, exam, body.reason)


@admin_router.get("/exams/{exam_id}/export")
def export(
    request: Request,
    exam_id: str,
    ctx: Ctx,
    what: Annotated[str, Query()] = "scores",
    format: Annotated[str, Query()] = "xlsx",
) -> Response:
    if what not in exports.WHATS or format not in exports.FORMATS:
        raise APIError(
            422,
            "invalid_export",
            "导出内容应为 scores、absences、uploads 或 rulings，格式应为 csv 或 xlsx。",
        )
    with as_staff(request, ctx) as (session, user):
        service.require_admin(user)
        exam = service.get_exam(session, exam_id)
        rows = exports.table(session, ctx, exam, what)
        audit.record(
            session, ctx, user, "export", exam_id=exam.id, detail={"what": what, "format": format}
        )
        title = exports.TITLES[what]
        name = f"{exam.title}-{title}.{format}"
    if format == "csv":
        content, mime = exports.to_csv(rows), "text/csv; charset=utf-8"
    else:
        content = exports.to_xlsx(rows, title)
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        content,
        media_type=mime,
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="{what}.{format}"; '
            f"filename*=UTF-8''{quote(name)}",
        },
    )


# --- candidates' lookup -----------------------------------------------------------------------


@results_router.post("/lookup")
def lookup(request: Request, body: LookupBody, ctx: Ctx) -> dict[str, Any]:
    client = client_address(request, ctx.settings)
    # Ticket numbers are guessable sequences; a name must match too, and guesses are capped.
    if not window_for(request, "results-lookup", limit=10, seconds=60).allow(client):
        raise APIError(
            429,
            "too_many_requests",
            "查询过于频繁，请稍后再试。",
            headers={"Retry-After": "60"},
        )
    with unit_of_work(ctx) as session:
        return publication.lookup(session, body.exam_id, body.ticket, body.name)
