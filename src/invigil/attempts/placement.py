"""The phone's placement, confirmed on the desk.

After the room sweep the phone shows its camera picture while the candidate places it behind
and to the side; its snapshots reach the desk, where the candidate checks that the picture
shows them, the desk and the screen, and confirms (or asks for another try). The answer is an
event in the log, so review can see which picture the candidate accepted; the phone reads it
back to tell the candidate. It guides rather than gates: a phone that records without a
confirmation is still recording evidence.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from invigil.attempts import events
from invigil.attempts.api import as_candidate
from invigil.attempts.phone import PLACEMENT_EVENT, latest_phone_snapshot, placement_of
from invigil.core.blob_response import jpeg_response
from invigil.core.clock import iso
from invigil.core.context import Ctx
from invigil.core.errors import APIError

router = APIRouter(prefix="/api/v1/candidate/evidence", tags=["candidate"])


@router.get("/snapshot")
def phone_snapshot(request: Request, ctx: Ctx) -> Response:
    """The phone's newest picture, for the candidate to check the placement."""
    with as_candidate(request, ctx) as (session, me):
        snap = latest_phone_snapshot(session, me.attempt.id)
        if snap is None:
            raise APIError(404, "no_snapshot", "手机尚未传来画面，请稍候。")
        key, at, snap_id = snap.blob_key, iso(snap.taken_at), snap.id
    return jpeg_response(
        ctx.blobs,
        key,
        {
            "Cache-Control": "private, no-store",
            "X-Snapshot-At": at,
            "X-Snapshot-Id": snap_id,
        },
    )


class PlacementBody(BaseModel):
    ok: bool


@router.post("/placement", status_code=201)
def confirm_placement(request: Request, body: PlacementBody, ctx: Ctx) -> dict[str, Any]:
    with as_candidate(request, ctx) as (session, me):
        snap = latest_phone_snapshot(session, me.attempt.id)
        if snap is None:
            raise APIError(409, "no_snapshot", "手机尚未传来画面，无法确认机位。")
        events.append(
            session,
            me.attempt.id,
            PLACEMENT_EVENT,
            at=ctx.clock.now(),
            actor="candidate",
            data={"ok": body.ok, "snapshot_id": snap.id, "snapshot_at": iso(snap.taken_at)},
        )
        placement = placement_of(session, me.attempt.id)
        assert placement is not None
        return placement
