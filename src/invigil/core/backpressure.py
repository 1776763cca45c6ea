"""Backpressure: an overloaded process asks clients to slow down before it falls behind.

What a process can defer without losing anything is the periodic, replaceable traffic: a
snapshot (the next one comes in 5 s), a heartbeat, the phone's status, a client event (the
clients keep events in localStorage and send them again), an upload speed test. When the
process is loaded those get ``503`` with ``Retry-After`` and ``{"error": {"code":
"server_busy"}}``, and the desk and the phone wait that long before the next one
(web/shared/backoff.js). Chunk uploads, finalize, logins and everything else are never shed:
a chunk refused would only come back at once (the clients keep it in IndexedDB until it is
acknowledged), and shedding it would cost the recording's timeliness, not the server's load.

Two levels, so the cheapest signal goes first:
- busy (any measure over its threshold): snapshots and speed tests are deferred;
- overloaded (any measure over twice its threshold): heartbeats, phone status and client
  events too.

The measures, all of this process: requests in flight inside the app, uploads waiting for the
group commit (recordings/batch.py), and the event loop's lag (how late a 100 ms timer fires:
when the loop is starved, every request waits that long before it even starts). A session stays
alive 20 s without a heartbeat (INVIGIL_SESSION_ALIVE_SECONDS), so a Retry-After of 5–10 s
keeps a candidate online through a shed heartbeat.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from invigil.core.config import Settings

BUSY, OVERLOADED = 1, 2

# (method, path) → the level from which the request is deferred.
DEFERRABLE: dict[tuple[str, str], int] = {
    ("POST", "/api/v1/snapshots"): BUSY,
    ("POST", "/api/v1/candidate/speedtest"): BUSY,
    ("POST", "/api/v1/candidate/heartbeat"): OVERLOADED,
    ("POST", "/api/v1/candidate/events"): OVERLOADED,
    ("POST", "/api/v1/phone/status"): OVERLOADED,
    ("POST", "/api/v1/phone/heartbeat"): OVERLOADED,
    ("POST", "/api/v1/phone/events"): OVERLOADED,
}
MESSAGE = "服务器繁忙，请稍后自动重试。"
# A deferred request's body is read and dropped (so the connection stays usable) up to this
# much; past it the connection is closed instead.
DRAIN_BYTES = 1024 * 1024
SAMPLE_SECONDS = 0.1


def _commit_queue_depth() -> int:
    # Imported late: core must not import a domain at module load.
    try:
        from invigil.recordings import batch

        return batch.queue_depth()
    except (ImportError, AttributeError):
        return 0


@dataclass
class Load:
    """This process's load, and what it answers. ``forced`` (INVIGIL_BACKPRESSURE_FORCE, or set
    by a test) pins the level: 0 measured, 1 busy, 2 overloaded."""

    max_inflight: int
    max_commit_queue: int
    max_loop_lag: float  # seconds
    retry_after: int  # seconds; each answer adds up to as much again of jitter
    enabled: bool = True
    forced: int = 0
    inflight: int = 0
    loop_lag: float = 0.0
    deferred: dict[str, int] = field(default_factory=dict)  # path → 503s answered
    _sampler: asyncio.Task[None] | None = None
    _sampler_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Load:
        return cls(
            max_inflight=settings.backpressure_inflight,
            max_commit_queue=settings.backpressure_commit_queue,
            max_loop_lag=settings.backpressure_loop_lag_ms / 1000,
            retry_after=settings.backpressure_retry_after,
            enabled=settings.backpressure,
            forced=settings.backpressure_force,
        )

    def level(self) -> int:
        if self.forced:
            return self.forced
        if not self.enabled:
            return 0
        ratio = max(
            self.inflight / self.max_inflight,
            _commit_queue_depth() / self.max_commit_queue,
            self.loop_lag / self.max_loop_lag,
        )
        return OVERLOADED if ratio >= 2 else BUSY if ratio >= 1 else 0

    def retry_seconds(self) -> int:
        # Jitter spreads the clients that were refused together over the next few seconds.
        return self.retry_after + random.randint(0, self.retry_after)

    def ensure_sampler(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sampler_loop is loop and self._sampler is not None and not self._sampler.done():
            return
        self._sampler_loop = loop
        self._sampler = loop.create_task(self._sample())

    async def _sample(self) -> None:
        """How late a short timer fires: a decaying maximum, so one slow tick counts for about
        a second and a starved loop stays visible."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(SAMPLE_SECONDS)
            late = max(0.0, time.perf_counter() - start - SAMPLE_SECONDS)
            self.loop_lag = max(late, self.loop_lag * 0.7)


class BackpressureMiddleware:
    """Counts requests in flight and answers deferrable ones 503 while the process is loaded."""

    def __init__(self, app: ASGIApp, load: Load) -> None:
        self.app = app
        self.load = load

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        load = self.load
        if load.enabled and load._sampler_loop is not asyncio.get_running_loop():
            load.ensure_sampler()
        tier = DEFERRABLE.get((scope["method"], scope["path"]))
        if tier is not None and load.level() >= tier:
            await self._defer(scope, receive, send)
            return
        load.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            load.inflight -= 1

    async def _defer(self, scope: Scope, receive: Receive, send: Send) -> None:
        load = self.load
        path = scope["path"]
        load.deferred[path] = load.deferred.get(path, 0) + 1
        seconds = load.retry_seconds()
        close = False
        drained = 0
        while True:
            message: Message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
            if drained > DRAIN_BYTES:
                close = True
                break
        body = json.dumps(
            {"error": {"code": "server_busy", "message": MESSAGE, "retry_after": seconds}},
            ensure_ascii=False,
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(seconds).encode()),
            (b"cache-control", b"no-store"),
        ]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
