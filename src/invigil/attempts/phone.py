"""Binding a phone as the candidate's evidence camera, and what the desk sees of it.

The desk asks for an offer: a QR code holding the phone page's URL with a one-time token in
its fragment (never sent to servers or logs as part of a request line), and a typed 8-digit
code as the fallback. Using either gives the phone a session of its own, allowed only the
evidence recordings and snapshots of that candidate. Binding another phone retires the first.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts import events, sessions
from invigil.attempts.models import Attempt, AuthSession, Event, PhoneBindingOffer
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError
from invigil.core.security import token_digest
from invigil.recordings.models import Snapshot

OFFER_LIFETIME = timedelta(minutes=15)
# "placing": swept, camera live, waiting to be placed and confirmed on the desk.
PHONE_STATES = ("bound", "sweeping", "placing", "recording", "stopped")


def _code_digest(ctx: AppContext, code: str) -> str:
    return token_digest(ctx.settings.effective_secret(), f"binding-code:{code}")


def offer(session: Session, ctx: AppContext, attempt: Attempt) -> dict[str, Any]:
    now = ctx.clock.now()
    if now >= attempt.deadline:
        raise APIError(409, "exam_over", "考试已结束，无需绑定手机。")
    token = secrets.token_urlsafe(24)
    # Eight digits: easy to type on a phone, and with offers expiring after 15 minutes and
    # binding attempts rate-limited, too many to guess.
    code = f"{secrets.randbelow(10**8):08d}"
    session.add(
        PhoneBindingOffer(
            attempt_id=attempt.id,
            token_digest=token_digest(ctx.settings.effective_secret(), token),
            code_digest=_code_digest(ctx, code),
            created_at=now,
            expires_at=now + OFFER_LIFETIME,
        )
    )
    url = f"{ctx.settings.base_url}/m/#bind={token}"
    return {
        "code": code,
        "url": url,
        "qr_svg": segno.make(url, error="m").svg_inline(scale=5, border=2),
        "expires_at": iso(now + OFFER_LIFETIME),
    }


def bind(
    session: Session,
    ctx: AppContext,
    *,
    code: str | None,
    token: str | None,
    client: dict[str, str],
) -> dict[str, Any]:
    now = ctx.clock.now()
    if token:
        where = PhoneBindingOffer.token_digest == token_digest(
            ctx.settings.effective_secret(), token
        )
    elif code and code.strip().isdigit():
        where = PhoneBindingOffer.code_digest == _code_digest(ctx, code.strip())
    else:
        raise APIError(422, "invalid_request", "请输入电脑屏幕上显示的 8 位绑定码。")
    found = session.scalars(
        select(PhoneBindingOffer)
        .where(where, PhoneBindingOffer.used_at.is_(None), PhoneBindingOffer.expires_at > now)
        .with_for_update()
    ).first()
    if found is None:
        raise APIError(
            404,
            "binding_invalid",
            "绑定码无效或已过期。请在电脑上重新生成二维码或绑定码后再试。",
        )
    attempt = session.get(Attempt, found.attempt_id)
    assert attempt is not None
    if now >= attempt.deadline:
        raise APIError(409, "exam_over", "考试已结束。")
    found.used_at = now
    issued = sessions.issue(session, ctx, "phone", now, attempt_id=attempt.id, client_info=client)
    replaced = session.scalars(
        select(AuthSession.id).where(
            AuthSession.attempt_id == attempt.id,
            AuthSession.kind == "phone",
            AuthSession.id != issued.session.id,
            AuthSession.revoked_at.is_(None),
        )
    ).first()
    sessions.revoke_others(session, attempt.id, "phone", issued.session.id, now, "replaced")
    attempt.evidence_state, attempt.evidence_state_at = "bound", now
    events.append(
        session,
        attempt.id,
        "phone_bound",
        at=now,
        actor="phone",
        data={
            "via": "qr" if token else "code",
            "replaced_phone": replaced is not None,
            "client": client,
        },
    )
    candidate = attempt.candidate
    return {
        "token": issued.token,
        "attempt_id": attempt.id,
        "candidate": {"name": candidate.name, "ticket": candidate.ticket},
        "exam": {"id": attempt.exam.id, "title": attempt.exam.title},
    }


def report_state(session: Session, ctx: AppContext, attempt: Attempt, state: str) -> None:
    if state not in PHONE_STATES:
        raise APIError(422, "invalid_request", f"未知的手机状态：{state}")
    now = ctx.clock.now()
    if attempt.evidence_state != state:
        events.append(
            session, attempt.id, "phone_state", at=now, actor="phone", data={"state": state}
        )
    attempt.evidence_state, attempt.evidence_state_at = state, now


def _live_phone(session: Session, attempt_id: str) -> AuthSession | None:
    """The phone session bound now (binding another phone revokes the earlier one)."""
    return session.scalars(
        select(AuthSession)
        .where(
            AuthSession.attempt_id == attempt_id,
            AuthSession.kind == "phone",
            AuthSession.revoked_at.is_(None),
        )
        .order_by(AuthSession.created_at.desc())
    ).first()


def _status_of(ctx: AppContext, attempt: Attempt, phone: AuthSession | None) -> str:
    if phone is None:
        return "not_bound"
    alive = ctx.clock.now() - phone.last_seen_at < timedelta(
        seconds=ctx.settings.session_alive_seconds
    )
    return (attempt.evidence_state or "bound") if alive else "offline"


def evidence_status(session: Session, ctx: AppContext, attempt: Attempt) -> dict[str, Any]:
    """not_bound | bound | sweeping | recording | stopped | offline, as the desk shows it."""
    phone = _live_phone(session, attempt.id)
    required = attempt.exam.evidence_camera
    if phone is None:
        return {"required": required, "status": "not_bound", "last_seen_at": None}
    snap = latest_phone_snapshot(session, attempt.id)
    return {
        "required": required,
        "status": _status_of(ctx, attempt, phone),
        "last_seen_at": iso(phone.last_seen_at),
        "snapshot_at": iso(snap.taken_at) if snap else None,
        "placement": placement_of(session, attempt.id),
    }


def evidence_brief(session: Session, ctx: AppContext, attempt: Attempt) -> dict[str, str]:
    """Only the status of evidence_status, for the desk's heartbeat: one indexed query, so the
    desk can show the phone's state through the exam without polling the whole state."""
    return {"status": _status_of(ctx, attempt, _live_phone(session, attempt.id))}


PLACEMENT_EVENT = "evidence_placement"


def latest_phone_snapshot(session: Session, attempt_id: str) -> Snapshot | None:
    return session.scalars(
        select(Snapshot)
        .where(Snapshot.attempt_id == attempt_id, Snapshot.kind == "evidence")
        .order_by(Snapshot.taken_at.desc(), Snapshot.id.desc())
        .limit(1)
    ).first()


def placement_of(session: Session, attempt_id: str) -> dict[str, Any] | None:
    """The candidate's latest answer about the phone's picture, or None before any."""
    event = session.scalars(
        select(Event)
        .where(Event.attempt_id == attempt_id, Event.kind == PLACEMENT_EVENT)
        .order_by(Event.seq.desc())
        .limit(1)
    ).first()
    if event is None:
        return None
    return {
        "state": "confirmed" if event.data.get("ok") else "adjust",
        "at": iso(event.at),
        "snapshot_id": event.data.get("snapshot_id"),
    }
