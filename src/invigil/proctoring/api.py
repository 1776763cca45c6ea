"""Proctoring endpoints: warnings, notes, alerts, the live room, face-login help, the console's
WebSocket."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, WebSocket
from fastapi.responses import Response

from invigil.core.context import Ctx, unit_of_work
from invigil.core.errors import APIError
from invigil.core.ratelimit import window_for
from invigil.proctoring import login_help, service, ws
from invigil.proctoring.schemas import AckBody, DecisionBody, DismissBody, TextBody
from invigil.staff import service as staff_service
from invigil.staff.api import as_staff

router = APIRouter(prefix="/api/v1", tags=["proctoring"])


@router.websocket("/staff/ws")
async def staff_ws(websocket: WebSocket) -> None:
    await ws.staff_ws(websocket)


@router.get("/staff/rooms")
def rooms(request: Request, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return {"rooms": service.visible_rooms(session, user)}


@router.get("/staff/rooms/{room_id}/live")
def room_live(
    request: Request, room_id: str, ctx: Ctx, exam: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    """The console's room status over plain HTTP (the WebSocket pushes the same)."""
    with as_staff(request, ctx) as (session, user):
        room = staff_service.resolve_room(session, ctx, user, room_id, exam)
        return service.room_status(session, ctx, room)


@router.post("/staff/attempts/{attempt_id}/warnings", status_code=201)
def warn(request: Request, attempt_id: str, body: TextBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        attempt = staff_service.attempt_for(session, user, attempt_id)
        return service.warn(session, ctx, user, attempt, body.text)


@router.get("/staff/attempts/{attempt_id}/warnings")
def warnings(request: Request, attempt_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        attempt = staff_service.attempt_for(session, user, attempt_id)
        return {"warnings": service.warnings_for(session, attempt.id)}


@router.post("/staff/attempts/{attempt_id}/notes", status_code=201)
def add_note(request: Request, attempt_id: str, body: TextBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        attempt = staff_service.attempt_for(session, user, attempt_id)
        return service.add_note(session, ctx, user, attempt, body.text)


@router.get("/staff/attempts/{attempt_id}/notes")
def notes(request: Request, attempt_id: str, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        attempt = staff_service.attempt_for(session, user, attempt_id)
        return {"notes": service.notes(session, attempt)}


@router.post("/staff/attempts/{attempt_id}/help/dismiss")
def dismiss_help(request: Request, attempt_id: str, body: DismissBody, ctx: Ctx) -> dict[str, Any]:
    """Close a candidate's help message without replying; event ``help_dismissed``."""
    with as_staff(request, ctx) as (session, user):
        attempt = staff_service.attempt_for(session, user, attempt_id)
        return service.dismiss_help(session, ctx, user, attempt, body.seq)


@router.post("/staff/alerts/ack")
def ack(request: Request, body: AckBody, ctx: Ctx) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        attempt = staff_service.attempt_for(session, user, body.attempt_id)
        return service.ack(session, ctx, user, attempt, body.seq)


@router.get("/staff/alerts")
def alerts(
    request: Request,
    ctx: Ctx,
    room: Annotated[str, Query(min_length=1)],
    exam: Annotated[str | None, Query()] = None,
    all: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """Suspected-violation alerts of a room; by default only those this staff member has not
    acknowledged."""
    with as_staff(request, ctx) as (session, user):
        found = staff_service.resolve_room(session, ctx, user, room, exam)
        return {"alerts": service.alerts(session, user, found, only_open=not all)}


# --- face-login help ---------------------------------------------------------------------------


# Face-login help requests one client address may make over all tickets (unknown ones too, so
# the limit also slows down probing for a roster). Generous: a venue behind one NAT address
# asks for several candidates.
PER_ADDRESS_LIMIT = 20
PER_ADDRESS_SECONDS = 600


def _client_ip(request: Request) -> str:
    # The same address the other per-address limits use (phone binding, speed test).
    return request.client.host if request.client else ""


def _client_info(request: Request) -> dict[str, str]:
    return {
        "ip": _client_ip(request),
        "user_agent": request.headers.get("user-agent", "")[:300],
    }


@router.post("/candidate/login-help", status_code=201)
def login_help_request(
    request: Request,
    ctx: Ctx,
    exam_id: Annotated[str, Form()],
    ticket: Annotated[str, Form()],
    text: Annotated[str, Form(max_length=1000)] = "",
    face: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    ip = _client_ip(request)
    limiter = window_for(request, "login-help", PER_ADDRESS_LIMIT, PER_ADDRESS_SECONDS)
    if not limiter.allow(ip):
        raise APIError(
            429,
            "too_many_requests",
            "该网络地址的人工审核申请过于频繁，请 10 分钟后再试，或拨打考务电话联系技术服务。",
            retry_after=PER_ADDRESS_SECONDS,
            headers={"Retry-After": str(PER_ADDRESS_SECONDS)},
        )
    with unit_of_work(ctx) as session:
        data = None
        if face is not None:
            data = face.file.read(ctx.settings.max_photo_bytes + 1)
            if len(data) > ctx.settings.max_photo_bytes:
                raise APIError(413, "too_large", "照片过大，请重新拍摄。")
        return login_help.request_help(session, ctx, exam_id, ticket, data or None, text, ip)


@router.get("/candidate/login-help/{request_id}")
def login_help_poll(
    request: Request,
    request_id: str,
    ctx: Ctx,
    poll: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    with unit_of_work(ctx) as session:
        return login_help.poll(session, ctx, request_id, poll, _client_info(request))


@router.get("/staff/login-help")
def login_help_list(
    request: Request,
    ctx: Ctx,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected|cancelled|all)$")] = (
        "pending"
    ),
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return {"requests": login_help.listing(session, ctx, user, status)}


def _image(request: Request, ctx: Any, request_id: str, which: str) -> Response:
    with as_staff(request, ctx) as (session, user):
        data = login_help.image(session, ctx, user, request_id, which)
    return Response(
        data,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/staff/login-help/{request_id}/face")
def login_help_face(request: Request, request_id: str, ctx: Ctx) -> Response:
    """The live capture the candidate sent with the request."""
    return _image(request, ctx, request_id, "face")


@router.get("/staff/login-help/{request_id}/photo")
def login_help_photo(request: Request, request_id: str, ctx: Ctx) -> Response:
    """The candidate's enrolment photo, to compare with the capture."""
    return _image(request, ctx, request_id, "photo")


@router.post("/staff/login-help/{request_id}/approve")
def login_help_approve(
    request: Request, request_id: str, body: DecisionBody, ctx: Ctx
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return login_help.decide(session, ctx, user, request_id, True, body.reason)


@router.post("/staff/login-help/{request_id}/reject")
def login_help_reject(
    request: Request, request_id: str, body: DecisionBody, ctx: Ctx
) -> dict[str, Any]:
    with as_staff(request, ctx) as (session, user):
        return login_help.decide(session, ctx, user, request_id, False, body.reason)
