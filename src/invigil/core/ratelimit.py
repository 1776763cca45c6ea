"""Rate limits: who the client is, which addresses are exempt, and two kinds of counter.

- ``check`` / ``record`` keep hits in the database (table ``rate_hits``), so a limit holds
  across every server process that shares the database: staff login, face login and the
  liveness challenge use these. A bucket is a string such as ``staff-login:user:alice``.
- ``window_for`` gives the same counters behind a plain ``allow(key)`` for the throttles of
  unauthenticated routes (speed test, binding codes, results look-ups).

Per-address limits skip the addresses and networks in ``INVIGIL_RATE_LIMIT_EXEMPT``.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Index, Integer, String, delete, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.requests import Request

from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Base, Database, UTCDateTime, transaction

# Hits older than this are deleted whatever their bucket; no rule looks further back.
KEEP_HITS = timedelta(days=1)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateHit(Base):
    __tablename__ = "rate_hits"
    __table_args__ = (Index("ix_rate_hits_bucket_at", "bucket", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


@dataclass(frozen=True)
class Rule:
    """``limit`` hits within ``window`` are free. With ``backoff`` seconds, each hit past the
    limit doubles the wait after the newest one (up to ``max_wait``); without, the next hit is
    allowed once the oldest counted hit leaves the window."""

    limit: int
    window: timedelta
    backoff: float = 0.0
    max_wait: float = 900.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds, for the Retry-After header


def lock(session: Session, bucket: str) -> None:
    """Serialise check-then-record on one bucket across processes (PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already serialises every writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:b))"), {"b": bucket})


def check(session: Session, bucket: str, rule: Rule, now: datetime) -> Verdict:
    hits = list(
        session.scalars(
            select(RateHit.at)
            .where(RateHit.bucket == bucket, RateHit.at > now - rule.window)
            .order_by(RateHit.at)
        )
    )
    if len(hits) < rule.limit:
        return Verdict(True)
    if rule.backoff:
        wait = min(rule.max_wait, rule.backoff * 2 ** (len(hits) - rule.limit))
        until = hits[-1] + timedelta(seconds=wait)
    else:
        until = hits[len(hits) - rule.limit] + rule.window
    if now >= until:
        return Verdict(True)
    return Verdict(False, max(1, math.ceil((until - now).total_seconds())))


def record(session: Session, bucket: str, now: datetime) -> None:
    session.add(RateHit(bucket=bucket, at=now))
    session.execute(delete(RateHit).where(RateHit.at < now - KEEP_HITS))


def record_apart(db: Database, bucket: str, now: datetime) -> None:
    """``record`` in a transaction of its own: for a hit that must count even though the
    request's own transaction rolls back (call it after that transaction ended)."""
    with transaction(db) as session:
        record(session, bucket, now)


def reserve(db: Database, bucket: str, rule: Rule, now: datetime) -> tuple[Verdict, int | None]:
    """Check and count one hit at once, in a transaction of its own, before slow work: requests
    in flight then cannot all pass a check that none of them has recorded yet (a burst over
    several processes would overshoot the limit by one request per thread). Returns the hit's
    id, for ``release`` when the work ends in a way that must not count."""
    with transaction(db) as session:
        lock(session, bucket)
        verdict = check(session, bucket, rule, now)
        if not verdict.allowed:
            return verdict, None
        hit = RateHit(bucket=bucket, at=now)
        session.add(hit)
        session.flush()
        return verdict, hit.id


def release(db: Database, hit_id: int) -> None:
    with transaction(db) as session:
        session.execute(delete(RateHit).where(RateHit.id == hit_id))


def clear(session: Session, bucket: str) -> None:
    session.execute(delete(RateHit).where(RateHit.bucket == bucket))


def count(session: Session, bucket: str, since: datetime) -> int:
    return (
        session.scalar(select(func.count()).where(RateHit.bucket == bucket, RateHit.at > since))
        or 0
    )


# --- who the client is ---------------------------------------------------------------------


@lru_cache(maxsize=32)
def _networks(spec: str) -> tuple[Network, ...]:
    out = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


def _within(address: str, spec: str) -> bool:
    networks = _networks(spec)
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks if n.version == ip.version)


def check_settings(settings: Settings) -> None:
    """Refuse to start with a malformed address list (a typo would silently exempt nobody)."""
    for name in ("rate_limit_exempt", "trusted_proxies"):
        try:
            _networks(getattr(settings, name))
        except ValueError as exc:
            raise SystemExit(f"INVIGIL_{name.upper()} 格式不正确 / is malformed: {exc}") from None


def client_address(request: Request, settings: Settings) -> str:
    """The socket peer, unless it is a configured reverse proxy: then the nearest address in
    X-Forwarded-For that is not one of ours. A client cannot choose its address by sending
    the header itself."""
    peer = request.client.host if request.client else ""
    if not _within(peer, settings.trusted_proxies):
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not _within(address, settings.trusted_proxies):
            return address
    return peer


def exempt(address: str, settings: Settings) -> bool:
    return _within(address, settings.rate_limit_exempt)


# --- simple windows for unauthenticated routes ---------------------------------------------


class Window:
    """At most ``limit`` hits per key within ``seconds``, counted in the database like the
    login limits (so they hold across processes). ``allow`` runs its own short transaction:
    call it outside the request's unit of work (SQLite has one writer at a time)."""

    def __init__(self, ctx: AppContext, name: str, limit: int, seconds: float) -> None:
        self.ctx = ctx
        self.name = name
        self.rule = Rule(limit=limit, window=timedelta(seconds=seconds))

    def allow(self, key: str) -> bool:
        if exempt(key, self.ctx.settings):
            return True
        bucket = f"{self.name}:{key}"[:200]
        now = self.ctx.clock.now()
        with transaction(self.ctx.db) as session:
            lock(session, bucket)
            if not check(session, bucket, self.rule, now).allowed:
                return False
            record(session, bucket, now)
            return True


def window_for(request: Request, name: str, limit: int, seconds: float) -> Window:
    """The limit called ``name`` for this application. Keys that are exempt addresses are
    never limited."""
    return Window(request.app.state.ctx, name, limit, seconds)
