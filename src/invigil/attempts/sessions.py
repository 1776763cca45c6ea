"""Bearer sessions for candidates, phones and staff: issue, look up, keep alive, revoke."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from invigil.attempts.locking import locked_attempt
from invigil.attempts.models import AuthSession
from invigil.core.context import AppContext
from invigil.core.errors import APIError, unauthorized
from invigil.core.security import new_token, token_digest

# Writing last_seen on every request would turn reads into writes; this is often enough for a
# 20 s liveness window.
TOUCH_EVERY = timedelta(seconds=5)


@dataclass
class Issued:
    token: str
    session: AuthSession


def issue(
    session: Session,
    ctx: AppContext,
    kind: str,
    now: datetime,
    *,
    attempt_id: str | None = None,
    staff_id: str | None = None,
    client_info: dict[str, str] | None = None,
) -> Issued:
    token = new_token()
    auth = AuthSession(
        token_digest=token_digest(ctx.settings.effective_secret(), token),
        kind=kind,
        attempt_id=attempt_id,
        staff_id=staff_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=ctx.settings.session_lifetime_hours),
        client_info=client_info or {},
    )
    session.add(auth)
    session.flush()
    return Issued(token, auth)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# Signed links: a <video> element cannot send an Authorization header, so media for staff pages
# is reached by a link that names the staff session, the exact path and an expiry, with a MAC
# over them. It opens nothing but that path, dies with the session (logout, expiry) and after
# LINK_LIFETIME, and every read through it is the session's own (access log included).
LINK_LIFETIME = timedelta(hours=2)
LINK_PARAM = "sig"


def _link_mac(ctx: AppContext, session_id: str, path: str, expires: int) -> str:
    message = f"link|{session_id}|{path}|{expires}"
    return token_digest(ctx.settings.effective_secret(), message)[:43]


def signed_link(ctx: AppContext, auth: AuthSession, path: str) -> str:
    """``path`` with a query parameter that authenticates as ``auth`` for that path only."""
    expires = int((ctx.clock.now() + LINK_LIFETIME).timestamp())
    mac = _link_mac(ctx, auth.id, path, expires)
    return f"{path}{'&' if '?' in path else '?'}{LINK_PARAM}={auth.id}.{expires}.{mac}"


def _from_link(session: Session, ctx: AppContext, request: Request) -> AuthSession | None:
    value = request.query_params.get(LINK_PARAM)
    if not value or request.method not in ("GET", "HEAD"):
        return None
    session_id, _, rest = value.partition(".")
    expires_text, _, mac = rest.partition(".")
    if not expires_text.isdigit():
        return None
    expected = _link_mac(ctx, session_id, request.url.path, int(expires_text))
    if not hmac.compare_digest(expected, mac):
        return None
    if int(expires_text) <= ctx.clock.now().timestamp():
        raise APIError(401, "link_expired", "链接已过期，请刷新页面。")
    return session.get(AuthSession, session_id)


def find(session: Session, ctx: AppContext, token: str | None) -> AuthSession | None:
    if not token:
        return None
    digest = token_digest(ctx.settings.effective_secret(), token)
    return session.scalar(select(AuthSession).where(AuthSession.token_digest == digest))


def authenticate(
    session: Session, ctx: AppContext, request: Request, kinds: tuple[str, ...]
) -> AuthSession:
    """The live session behind the request's bearer token (or signed link), or a 401 that
    says why."""
    token = bearer_token(request)
    auth = find(session, ctx, token) if token else _from_link(session, ctx, request)
    now = ctx.clock.now()
    if auth is None or auth.kind not in kinds:
        raise unauthorized("登录凭证无效，请重新登录。")
    if auth.revoked_at is not None:
        reason = auth.revoked_reason or "revoked"
        message = (
            "您已在其他设备登录，本设备的登录已失效。"
            if reason == "replaced"
            else "登录已失效，请重新登录。"
        )
        raise APIError(401, "session_revoked", message, reason=reason)
    if auth.expires_at <= now:
        raise APIError(401, "session_expired", "登录已过期，请重新登录。")
    if now - auth.last_seen_at >= TOUCH_EVERY:
        touch(session, [auth.id], now)
        set_committed_value(auth, "last_seen_at", now)
    return auth


def touch(session: Session, auth_ids: Sequence[str], now: datetime) -> None:
    """Mark the sessions seen now, except those another transaction holds.

    A seen mark is advisory (liveness, within TOUCH_EVERY), and it is written inside the group
    commit, which holds the rows it touched until it commits: two server processes' commits
    touching the same sessions in another order waited for each other and deadlocked under
    load. ``SKIP LOCKED`` skips the mark instead; whoever holds the row is marking it too or
    revoking it. (SQLite, one writer at a time, has nothing to skip; SQLAlchemy leaves the
    lock clause out there.)"""
    free = (
        select(AuthSession.id)
        .where(AuthSession.id.in_(auth_ids))
        .with_for_update(key_share=True, skip_locked=True)
    )
    session.execute(update(AuthSession).where(AuthSession.id.in_(free)).values(last_seen_at=now))


def revoke_others(
    session: Session, attempt_id: str, kind: str, keep_id: str, now: datetime, reason: str
) -> None:
    session.execute(
        update(AuthSession)
        .where(
            AuthSession.attempt_id == attempt_id,
            AuthSession.kind == kind,
            AuthSession.id != keep_id,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=reason)
    )


def live_sessions(
    session: Session, attempt_id: str, kind: str, now: datetime, alive: timedelta
) -> list[AuthSession]:
    """The attempt's sessions of ``kind`` seen within ``alive``.

    Locks the attempt row first (PostgreSQL; SQLite's writer lock serialises anyway): logins
    ask this before they issue a session, and two logins at once, in two threads or two server
    processes, would otherwise both find no live session and both get one. The second now waits
    for the first to commit and then sees its session."""
    session.execute(locked_attempt(attempt_id))
    return list(
        session.scalars(
            select(AuthSession).where(
                AuthSession.attempt_id == attempt_id,
                AuthSession.kind == kind,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
                AuthSession.last_seen_at > now - alive,
            )
        )
    )
