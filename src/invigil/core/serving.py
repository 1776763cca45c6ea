"""How the HTTP server runs the app: bounded request heads and an access log without secrets.

``invigil serve``, ``invigil demo`` and the tests' live servers all build their uvicorn
configuration here, so what is tested is what runs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import uvicorn
from fastapi import FastAPI

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


def install_log_redaction() -> None:
    """Idempotent: each logger gets the filter once, whoever calls first."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def server_config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    # X-Forwarded-For/-Proto only from INVIGIL_TRUSTED_PROXIES (uvicorn's own default trusts
    # 127.0.0.1, which would let any local process choose its address for the rate limits).
    trusted = app.state.ctx.settings.trusted_proxies.replace(" ", "")
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
    install_log_redaction()  # after Config, which (re)configures uvicorn's loggers
    return config


def run(app: FastAPI, host: str, port: int, **options: Any) -> None:
    uvicorn.Server(server_config(app, host, port, **options)).run()
