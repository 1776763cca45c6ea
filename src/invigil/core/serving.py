"""How the HTTP server runs the app: bounded request heads and an access log without secrets,
in one process or (``invigil serve --workers N``) several on one socket.

``invigil serve``, ``invigil demo`` and the tests' live servers all build their uvicorn
configuration here, so what is tested is what runs.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from invigil.core.config import Settings
from invigil.core.limits import MAX_HEADER_BYTES, BoundedHttpToolsProtocol

# Query parameters that carry a credential: the login-help poll token, signed media links and
# the console WebSocket's token. Their values never reach a log line.
SECRET_PARAMS = ("poll", "sig", "token")
_SECRET_QUERY = re.compile(r"(?<=[?&])(" + "|".join(SECRET_PARAMS) + r")=[^&#\s\"]*")
REDACTED = "[redacted]"
# uvicorn writes request lines to "uvicorn.access" and WebSocket handshakes to "uvicorn.error".
_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message arguments (where uvicorn puts the path with its query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


# The two upload routes (recordings/fastpath.py), as the access log writes their paths.
_UPLOAD_PATH = re.compile(r"/api/v1/(?:recordings/[^/?]+/chunks/[^/?]+|snapshots)(?:\?|$)")


class QuietUploads(logging.Filter):
    """Drops the access log's lines of uploads answered 2xx: a line per chunk and snapshot is
    thousands a second on an exam day, and its writing cost the upload path measurable CPU;
    /metrics counts and times them. Refused and failed uploads are logged as before."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access line: (client, method, path with query, HTTP version, status).
        if isinstance(args, tuple) and len(args) == 5 and args[1] in ("PUT", "POST"):
            status, path = args[4], args[2]
            if isinstance(status, int) and status < 300 and isinstance(path, str):
                return _UPLOAD_PATH.match(path) is None
        return True


def install_log_filters(settings: Settings) -> None:
    """Idempotent: each logger gets each filter once, whoever calls first. Secrets are
    redacted everywhere; successful uploads leave the access log unless
    ``INVIGIL_ACCESS_LOG_UPLOADS`` asks for them."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
    access = logging.getLogger("uvicorn.access")
    quiet = [f for f in access.filters if isinstance(f, QuietUploads)]
    if settings.access_log_uploads:
        for f in quiet:
            access.removeFilter(f)
    elif not quiet:
        access.addFilter(QuietUploads())


def server_config(
    app: FastAPI | str,
    host: str,
    port: int,
    *,
    settings: Settings | None = None,
    **options: Any,
) -> uvicorn.Config:
    """``app`` is the application, or (several processes) the import string of a factory that
    each process calls; then ``settings`` are the ones the processes will read."""
    if settings is None:
        assert isinstance(app, FastAPI), "settings are required with an import string"
        settings = app.state.ctx.settings
    # X-Forwarded-For/-Proto only from INVIGIL_TRUSTED_PROXIES (uvicorn's own default trusts
    # 127.0.0.1, which would let any local process choose its address for the rate limits).
    trusted = settings.trusted_proxies.replace(" ", "")
    options.setdefault("proxy_headers", bool(trusted))
    options.setdefault("forwarded_allow_ips", trusted or "")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # httptools buffers a head of any size; this protocol caps it (431).
        http=BoundedHttpToolsProtocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        **options,
    )
    install_log_filters(settings)  # after Config, which (re)configures uvicorn's loggers
    return config


def run(app: FastAPI, host: str, port: int, **options: Any) -> None:
    uvicorn.Server(server_config(app, host, port, **options)).run()


# --- several processes (``invigil serve --workers N``) ---------------------------------------

WORKER_APP = "invigil.core.serving:worker_app"
# A worker that does not answer the supervisor's ping for this long is killed and replaced. Long
# enough for a process busy with face embeddings (each holds the GIL for a while) to answer.
HEALTHCHECK_SECONDS = 20
# On SIGTERM/SIGINT a worker stops accepting, finishes what it serves, and stops after at most
# this long (an upload still running then is retried by its client).
GRACEFUL_SECONDS = 30


def worker_app() -> FastAPI:
    """The factory each worker process calls: its own app, settings from the environment (the
    supervisor puts the command line's options there before it starts the workers)."""
    from invigil.app import create_app

    return create_app(Settings())


def multiprocess_refusal(settings: Settings, workers: int) -> str | None:
    """Why these settings cannot run ``workers`` processes, or None when they can."""
    if workers < 1:
        return "--workers 至少为 1。 / --workers must be at least 1."
    if workers == 1:
        return None
    if make_url(settings.sqlalchemy_url).get_backend_name() == "sqlite":
        return (
            "SQLite 数据库只能由一个服务进程使用：--workers 大于 1 时请使用 PostgreSQL"
            "（INVIGIL_DATABASE_URL）。\n"
            "SQLite serves one process: --workers above 1 needs PostgreSQL "
            "(INVIGIL_DATABASE_URL)."
        )
    if not settings.redis_url:
        return (
            "多个服务进程需要 Redis 传递实时消息（INVIGIL_REDIS_URL），否则监考台只能看到"
            "与它相连的那个进程处理的事件。\n"
            "Several processes need Redis for live events (INVIGIL_REDIS_URL): without it a "
            "proctor console sees only what the process it is connected to handled."
        )
    from invigil.core.bus_redis import RedisBus

    bus = RedisBus(settings.redis_url)
    try:
        bus.ping()
    except Exception as exc:
        return f"无法连接 Redis / cannot reach Redis at INVIGIL_REDIS_URL: {exc}"
    finally:
        bus.close()
    return None


def listen(host: str, port: int) -> socket.socket:
    """The socket every worker accepts on, bound once by the supervisor."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run_workers(settings: Settings, workers: int, sock: socket.socket, **options: Any) -> None:
    """``workers`` processes accepting on one listening socket, under uvicorn's supervisor: a
    worker that dies or stops answering is replaced; SIGTERM or SIGINT ends each worker
    gracefully, then the supervisor. Every worker runs the embedded job worker too (claims are
    atomic: ``FOR UPDATE SKIP LOCKED``), unless INVIGIL_EMBEDDED_WORKER=false."""
    from uvicorn.supervisors import Multiprocess

    from invigil.core.metrics import MULTIPROC_ENV

    # Each run gets an empty directory for the workers' metric files (prometheus_client's
    # multiprocess mode): samples of an earlier run must not be summed into this one's.
    metrics_dir = tempfile.mkdtemp(prefix="invigil-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    os.environ["INVIGIL_HOST"] = settings.host
    os.environ["INVIGIL_PORT"] = str(settings.port)
    options.setdefault("timeout_graceful_shutdown", GRACEFUL_SECONDS)
    config = server_config(
        WORKER_APP,
        settings.host,
        settings.port,
        settings=settings,
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        **options,
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
