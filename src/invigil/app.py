"""The ASGI application: one FastAPI app serving the API and the browser clients."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match, Mount
from starlette.types import Scope
from swagger_ui_bundle import swagger_ui_path

from invigil.analysis import (
    audio_jobs,  # noqa: F401  (registers recording.audio)
    offload,
)
from invigil.analysis import jobs as analysis_jobs  # noqa: F401  (registers snapshot.analyse)
from invigil.attempts import presence  # noqa: F401  (registers the desk presence sweep)
from invigil.attempts.api import SPEEDTEST_MAX_BYTES
from invigil.attempts.api import router as candidate_router
from invigil.attempts.phone_api import router as phone_router
from invigil.attempts.placement import router as placement_router
from invigil.core import metrics, openapi, ratelimit
from invigil.core.backpressure import BackpressureMiddleware, Load
from invigil.core.bus import Bus, LocalBus
from invigil.core.clock import Clock, SystemClock, iso
from invigil.core.config import Settings
from invigil.core.context import AppContext, Ctx
from invigil.core.db import Database
from invigil.core.errors import APIError, install_error_handlers, not_found
from invigil.core.headers import SecurityHeadersMiddleware
from invigil.core.jobs import WorkerThread
from invigil.core.limits import FORM_OVERHEAD, BodyLimitMiddleware, BodyRule, rule
from invigil.core.serving import install_log_filters
from invigil.core.storage import blob_store
from invigil.evidence import retention  # noqa: F401  (registers the purge job)
from invigil.exams import lots  # noqa: F401  (registers its job handlers)
from invigil.exams.admin_api import router as exams_admin_router
from invigil.exams.roster_api import router as roster_router  # also registers roster jobs
from invigil.identity import liveness
from invigil.proctoring.api import router as proctoring_router
from invigil.recordings import assembly, closeout  # noqa: F401  (register their job handlers)
from invigil.recordings.api import router as recordings_router
from invigil.recordings.fastpath import FastUploadRoutes
from invigil.review.api import routers as review_routers
from invigil.staff.admin_api import router as admin_office_router
from invigil.staff.api import router as staff_router

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).parent / "web"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def make_bus(settings: Settings) -> Bus:
    """Redis pub/sub when ``INVIGIL_REDIS_URL`` is set (several server processes), else the
    in-process bus."""
    if settings.redis_url:
        from invigil.core.bus_redis import RedisBus

        return RedisBus(settings.redis_url)
    return LocalBus()


def body_rules(settings: Settings) -> list[BodyRule]:
    """The routes whose bodies may exceed the JSON default, each with its own cap."""
    photo = settings.max_photo_bytes + FORM_OVERHEAD
    frames = liveness.MAX_FRAMES * liveness.MAX_FRAME_BYTES
    admin = settings.max_import_bytes
    return [
        rule("PUT", r"/api/v1/recordings/[^/]+/chunks/[^/]+", settings.max_upload_bytes),
        rule("POST", r"/api/v1/snapshots", photo),
        rule("POST", r"/api/v1/candidate/login", photo + frames),
        rule("POST", r"/api/v1/candidate/login-help", photo),
        rule("POST", r"/api/v1/candidate/speedtest", SPEEDTEST_MAX_BYTES),
        # Unauthenticated: a username and a password are a few hundred bytes.
        rule("POST", r"/api/v1/staff/login", 8 * 1024),
        rule("POST", r"/api/v1/admin/.*", admin),
        rule("PUT", r"/api/v1/admin/.*", admin),
        rule("PATCH", r"/api/v1/admin/.*", admin),
    ]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    start_worker: bool | None = None,
) -> FastAPI:
    settings = settings or Settings()
    install_log_filters(settings)  # no credentials in uvicorn's logs, nor a line per upload
    ratelimit.check_settings(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ctx = AppContext(
        settings=settings,
        db=db or Database(settings.sqlalchemy_url, bus=make_bus(settings)),
        clock=clock or SystemClock(),
        blobs=blob_store(settings),
    )
    run_worker = settings.embedded_worker if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker = None
        offloaded = run_worker and settings.analysis_process
        if offloaded:
            offload.enable()
        if run_worker:
            worker = WorkerThread(
                ctx.job_context(),
                settings.worker_poll_seconds,
                timedelta(seconds=settings.job_lease_seconds),
            )
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
                worker.join(timeout=10)
            if offloaded:
                offload.disable()

    # /docs is a page of our own (web/docs/) with Swagger UI's files from a package: the CDN
    # FastAPI's default page loads is out of reach on exam servers without internet.
    app = FastAPI(
        title="invigil", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    if settings.fast_upload_routes:  # innermost: limits and backpressure still apply
        app.add_middleware(FastUploadRoutes)
    app.add_middleware(BodyLimitMiddleware, rules=body_rules(settings))
    app.state.load = Load.from_settings(settings)  # tests may set .forced
    app.add_middleware(BackpressureMiddleware, load=app.state.load)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: error responses get them too
    metrics.install(app)  # /metrics and request timing (around everything above)

    @app.get("/api/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/time")
    def time(ctx: Ctx) -> dict[str, str]:
        return {"now": iso(ctx.clock.now())}

    app.include_router(candidate_router)
    app.include_router(phone_router)
    app.include_router(placement_router)
    app.include_router(staff_router)
    app.include_router(recordings_router)
    app.include_router(proctoring_router)
    app.include_router(exams_admin_router)
    app.include_router(roster_router)
    for router in review_routers:
        app.include_router(router)
    app.include_router(admin_office_router)
    _api_fallback(app)
    openapi.install(app)
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
    if WEB_DIR.is_dir():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app


def _api_fallback(app: FastAPI) -> None:
    """Paths under /api/ that no route serves answer like the API (JSON 404, or 405 where a
    route has the path), instead of reaching the static pages, which know only GET."""

    def served(scope: Scope, method: str) -> bool:
        probe = {**scope, "method": method}
        return any(
            r.matches(probe)[0] == Match.FULL
            for r in app.router.routes
            if r is not fallback and not isinstance(r, Mount)
        )

    @app.api_route("/api/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    def api_not_found(request: Request, rest: str) -> None:
        allowed = [m for m in ALL_METHODS if served(request.scope, m)]
        if allowed:
            raise APIError(
                405,
                "method_not_allowed",
                "不支持该请求方法。",
                headers={"Allow": ", ".join(allowed)},
            )
        raise not_found("接口")

    fallback = app.router.routes[-1]
