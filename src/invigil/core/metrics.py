"""Prometheus metrics at ``/metrics`` (text format), for the addresses in INVIGIL_METRICS_ALLOW.

Two kinds of number:

- measured in the process that did the work: HTTP request latency (by route template, method
  and status class) and the group commit's batch size and duration. With several server
  processes (``invigil serve --workers N``) each process writes its samples to files in a
  directory of that run (prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``,
  set by the supervisor before it starts the workers) and a scrape, whichever process serves
  it, sums them over every process;
- read from the database at scrape time, so they are the same whichever process answers: the
  job queue (due jobs and the age of the oldest per kind, running jobs), candidates and phones
  online (sessions seen within the liveness window) and the upload backlog (open recordings and
  their chunks, which wait for a finalize).

Anyone else gets the same 404 as a path that does not exist: the numbers say how many
candidates are online, which is nobody's business outside the operators' network.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from invigil.core import ratelimit
from invigil.core.clock import ensure_utc
from invigil.core.context import AppContext

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The response header that names the process that answered, with several processes (a load
# balancer's logs and the multiprocess tests use it).
PROCESS_HEADER = b"x-invigil-process"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Process-local metrics live in a registry of their own (not the library's global one), so a
# test process that builds many apps, or imports this twice, never registers a name twice.
_REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_SECONDS = Histogram(
    "invigil_http_request_duration_seconds",
    "HTTP request latency from the first byte in to the last byte out.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=_REGISTRY,
)
BATCH_SIZE = Histogram(
    "invigil_group_commit_batch_size",
    "Uploads (chunks, snapshots) committed by one group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=_REGISTRY,
)
BATCH_SECONDS = Histogram(
    "invigil_group_commit_duration_seconds",
    "Time of one group commit: every item's work, the directory fsyncs and the commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=_REGISTRY,
)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def observe_batch(size: int, seconds: float) -> None:
    """Called by the group commit (recordings/batch.py) after each batch."""
    BATCH_SIZE.observe(size)
    BATCH_SECONDS.observe(seconds)


# --- request latency ---------------------------------------------------------------------


def route_label(scope: Scope) -> str:
    """The route's template (``/api/v1/recordings/{recording_id}``), never the raw path: one
    series per endpoint, not one per recording."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return "static"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Times every HTTP request (WebSockets are long-lived, not requests) and, with several
    processes, names the answering process in a response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode() if multiprocess() else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.pid is not None:
            await self.app(scope, receive, self._naming(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            observed = True
            REQUEST_SECONDS.labels(
                route_label(scope), scope.get("method", ""), f"{status // 100}xx"
            ).observe(time.perf_counter() - start)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if self.pid is not None:
                    message["headers"] = [*message.get("headers", []), (PROCESS_HEADER, self.pid)]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Before the last byte leaves: a scrape the client makes next counts this.
                observe()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not observed:  # no complete response (an error, a client gone)
                observe()

    def _naming(self, send: Send) -> Send:
        async def accepting(message: Message) -> None:
            if message["type"] == "websocket.accept" and self.pid is not None:
                message["headers"] = [*message.get("headers", []), (PROCESS_HEADER, self.pid)]
            await send(message)

        return accepting


# --- numbers read from the database at scrape time ----------------------------------------


class DatabaseCollector(Collector):
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        # Imported here: core must not import the domains at module load (they import core).
        from invigil.attempts.models import AuthSession
        from invigil.core.jobs import PENDING, RUNNING, Job
        from invigil.recordings.models import OPEN, Chunk, Recording

        now = self.ctx.clock.now()
        alive = now - timedelta(seconds=self.ctx.settings.session_alive_seconds)
        depth = GaugeMetricFamily(
            "invigil_job_queue_depth", "Jobs due now and not yet claimed.", labels=["kind"]
        )
        lag = GaugeMetricFamily(
            "invigil_job_queue_lag_seconds",
            "How long the oldest due, unclaimed job has been due.",
            labels=["kind"],
        )
        running = GaugeMetricFamily(
            "invigil_jobs_running", "Jobs claimed by a worker under a lease.", labels=["kind"]
        )
        with self.ctx.db.session() as session:
            due = session.execute(
                select(Job.kind, func.count(), func.min(Job.run_at))
                .where(Job.state == PENDING, Job.run_at <= now)
                .group_by(Job.kind)
            ).all()
            claimed = session.execute(
                select(Job.kind, func.count()).where(Job.state == RUNNING).group_by(Job.kind)
            ).all()
            online = dict(
                session.execute(
                    select(AuthSession.kind, func.count(func.distinct(AuthSession.attempt_id)))
                    .where(
                        AuthSession.kind.in_(("candidate", "phone")),
                        AuthSession.revoked_at.is_(None),
                        AuthSession.expires_at > now,
                        AuthSession.last_seen_at > alive,
                    )
                    .group_by(AuthSession.kind)
                ).all()
            )
            open_recordings = session.scalar(
                select(func.count()).select_from(Recording).where(Recording.state == OPEN)
            )
            chunks, chunk_bytes = session.execute(
                select(func.count(), func.coalesce(func.sum(Chunk.size), 0))
                .select_from(Chunk)
                .join(Recording, Recording.id == Chunk.recording_id)
                .where(Recording.state == OPEN)
            ).one()
        for kind, count, oldest in due:
            depth.add_metric([kind], count)
            lag.add_metric([kind], max(0.0, (now - ensure_utc(oldest)).total_seconds()))
        for kind, count in claimed:
            running.add_metric([kind], count)
        yield depth
        yield lag
        yield running
        yield _gauge(
            "invigil_candidates_online",
            "Candidates whose desk session was seen within the liveness window.",
            online.get("candidate", 0),
        )
        yield _gauge(
            "invigil_evidence_cameras_online",
            "Candidates whose bound phone was seen within the liveness window.",
            online.get("phone", 0),
        )
        yield _gauge(
            "invigil_recordings_open", "Recordings not yet finalized.", open_recordings or 0
        )
        yield _gauge(
            "invigil_upload_backlog_chunks",
            "Chunks stored for recordings that are not yet finalized.",
            chunks or 0,
        )
        yield _gauge(
            "invigil_upload_backlog_bytes",
            "Bytes of the chunks of recordings that are not yet finalized.",
            chunk_bytes or 0,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def render(ctx: AppContext) -> bytes:
    if multiprocess():
        measured = CollectorRegistry()
        MultiProcessCollector(measured)  # type: ignore[no-untyped-call]
    else:
        measured = _REGISTRY
    from_db = CollectorRegistry(auto_describe=False)
    from_db.register(DatabaseCollector(ctx))
    return generate_latest(measured) + generate_latest(from_db)


# --- the endpoint --------------------------------------------------------------------------


def allowed(request: Request, ctx: AppContext) -> bool:
    """The client (seen through trusted proxies exactly as the rate limits see it) is in
    INVIGIL_METRICS_ALLOW."""
    address = ratelimit.client_address(request, ctx.settings)
    return ratelimit._within(address, ctx.settings.metrics_allow)


def install(app: FastAPI) -> None:
    """The /metrics route and the timing middleware. Call before the static pages are mounted
    at "/", which would otherwise answer /metrics."""
    try:  # a typo would silently lock the operators out (or let everyone in): refuse to start
        ratelimit._networks(app.state.ctx.settings.metrics_allow)
    except ValueError as exc:
        raise SystemExit(f"INVIGIL_METRICS_ALLOW 格式不正确 / is malformed: {exc}") from None
    app.add_middleware(MetricsMiddleware)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        ctx: AppContext = request.app.state.ctx
        if not allowed(request, ctx):
            return PlainTextResponse("Not Found", status_code=404)
        return Response(render(ctx), media_type=CONTENT_TYPE)


def names(text: str) -> Iterable[str]:
    """Metric names in a scrape (tests)."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            yield line.split("{", 1)[0].split(" ", 1)[0]
