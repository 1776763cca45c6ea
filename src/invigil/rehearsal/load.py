"""The load: every simulated candidate's three streams, as the clients send them.

Per stream a chunk every 2 s (PUT with its SHA-256) and a JPEG snapshot every 5 s; the desk's
heartbeat every 5 s rides on the webcam stream's connection, the phone's status every 10 s on
the evidence stream's (``heartbeats=True``). Each stream has its own keep-alive connection, as
a browser keeps one. Latency is measured from when a request was due, not when it was sent, so
a backed-up server cannot hide its queue; a chunk's latency runs until it is acknowledged,
retries included.

The clients' rules hold here too: a snapshot, heartbeat or status answered 503/429 makes the
next one of its kind wait the Retry-After; a chunk is never given up: it is retried (after the
Retry-After, or a growing back-off on a network error) until acknowledged or the run's grace
time ends, when it counts as lost. Used by ``invigil rehearse run`` and ``bench/ingest.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from invigil.rehearsal.http import Connection, HTTPError, multipart
from invigil.rehearsal.media import (
    CHUNK_EVERY_S,
    HEARTBEAT_EVERY_S,
    PHONE_STATUS_EVERY_S,
    SNAPSHOT_EVERY_S,
    STREAMS,
    Payloads,
)

BUSY = (429, 503)


@dataclass
class Stream:
    """One recording to feed: its kind, id and the token of the device that uploads it."""

    kind: str
    recording_id: str
    token: str


@dataclass
class Result:
    """What a run measured. Latencies in ms, per request kind, from when each was due."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)  # "chunk 201", "snapshot 503", …
    deferred: Counter[str] = field(default_factory=Counter)  # 503/429 answers per kind
    errors: list[str] = field(default_factory=list)
    produced: dict[str, int] = field(default_factory=dict)  # recording id → chunks made
    acked: dict[str, set[int]] = field(default_factory=dict)  # recording id → seqs stored
    unfinished_streams: int = 0

    def lost(self) -> int:
        return sum(n - len(self.acked.get(rid, ())) for rid, n in self.produced.items())

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, Any] = {}
        for kind, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            kinds[kind] = {
                "count": len(ordered),
                "p50": pct(ordered, 50),
                "p99": pct(ordered, 99),
                "max": ordered[-1] if ordered else None,
            }
        every = sorted(v for values in self.latencies.values() for v in values)
        return {
            "requests": len(every),
            "p50": pct(every, 50),
            "p99": pct(every, 99) if not self.unfinished_streams else float("inf"),
            "max": every[-1] if every else None,
            "kinds": kinds,
            "statuses": dict(sorted(self.statuses.items())),
            "deferred": dict(sorted(self.deferred.items())),
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "chunks_produced": sum(self.produced.values()),
            "chunks_lost": self.lost(),
            "unfinished_streams": self.unfinished_streams,
        }


def pct(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


class Load:
    def __init__(
        self,
        base_url: str,
        payloads: Payloads,
        *,
        duration: float,
        warmup: float = 0.0,
        heartbeats: bool = True,
        grace: float = 30.0,
        verify_tls: bool = True,
        seed: int = 1,
    ) -> None:
        self.base_url = base_url
        self.payloads = payloads
        self.duration = duration
        self.warmup = warmup
        self.heartbeats = heartbeats
        self.grace = grace
        self.verify_tls = verify_tls
        self.rng = random.Random(seed)
        self.result = Result()
        self.digests = {k: hashlib.sha256(v).hexdigest() for k, v in payloads.chunks.items()}
        self.snapshot_bodies = {
            kind: [
                multipart({"kind": kind}, {"image": (f"{kind}.jpg", jpeg, "image/jpeg")})
                for jpeg in frames
            ]
            for kind, frames in payloads.snapshots.items()
        }

    async def run(self, streams: list[Stream]) -> Result:
        if not streams:
            return self.result
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.5
        tasks = [
            asyncio.create_task(self._stream(s, t0, random.Random(self.rng.random())))
            for s in streams
        ]
        _, pending = await asyncio.wait(tasks, timeout=self.duration + self.grace + 5)
        for task in pending:
            task.cancel()
        self.result.unfinished_streams = len(pending)
        return self.result

    def _schedule(self, kind: str, rng: random.Random) -> list[tuple[float, str, int]]:
        events: list[tuple[float, str, int]] = []
        t, seq = rng.uniform(0, CHUNK_EVERY_S), 0
        while t < self.duration:
            events.append((t, "chunk", seq))
            t, seq = t + CHUNK_EVERY_S, seq + 1
        periodic = [("snapshot", SNAPSHOT_EVERY_S)]
        if self.heartbeats and kind == "webcam":
            periodic.append(("heartbeat", HEARTBEAT_EVERY_S))
        if self.heartbeats and STREAMS[kind][1] == "phone":
            periodic.append(("phone_status", PHONE_STATUS_EVERY_S))
        for what, every in periodic:
            t = rng.uniform(0, every)
            while t < self.duration:
                events.append((t, what, 0))
                t += every
        events.sort()
        return events

    async def _stream(self, stream: Stream, t0: float, rng: random.Random) -> None:
        loop = asyncio.get_running_loop()
        res = self.result
        events = self._schedule(stream.kind, rng)
        res.produced[stream.recording_id] = sum(1 for _, w, _ in events if w == "chunk")
        acked = res.acked.setdefault(stream.recording_id, set())
        conn = Connection(self.base_url, verify=self.verify_tls)
        auth = {"Authorization": f"Bearer {stream.token}"}
        not_before: dict[str, float] = {}  # what a 503/429 asked to wait for, per kind
        frame = 0
        give_up = t0 + self.duration + self.grace
        try:
            for due, what, seq in events:
                delay = t0 + due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if what != "chunk" and loop.time() < not_before.get(what, 0.0):
                    continue  # deferred by the server: skip this one, as the clients do
                if what == "chunk":
                    ok = await self._chunk(conn, stream, seq, auth, give_up)
                    if ok:
                        acked.add(seq)
                    else:
                        continue
                else:
                    if what == "snapshot":
                        bodies = self.snapshot_bodies[stream.kind]
                        body, ctype = bodies[frame % len(bodies)]
                        frame += 1
                        method, path = "POST", "/api/v1/snapshots"
                    elif what == "heartbeat":
                        body, ctype = b"", "application/json"
                        method, path = "POST", "/api/v1/candidate/heartbeat"
                    else:
                        body, ctype = b'{"state":"recording"}', "application/json"
                        method, path = "POST", "/api/v1/phone/status"
                    try:
                        r = await conn.request(method, path, body, {**auth, "Content-Type": ctype})
                    except HTTPError as exc:
                        res.statuses[f"{what} error"] += 1
                        res.errors.append(f"{what} {exc}")
                        continue
                    res.statuses[f"{what} {r.status}"] += 1
                    if r.status in BUSY:
                        res.deferred[what] += 1
                        not_before[what] = loop.time() + r.retry_after()
                        continue
                    if r.status >= 300:
                        res.errors.append(f"{what} {r.status} {r.body[:120]!r}")
                        continue
                if due >= self.warmup:
                    res.latencies.setdefault(what, []).append((loop.time() - (t0 + due)) * 1000)
        finally:
            conn.close()

    async def _chunk(
        self, conn: Connection, stream: Stream, seq: int, auth: dict[str, str], give_up: float
    ) -> bool:
        """PUT one chunk until it is stored; False when refused for good or out of time."""
        loop = asyncio.get_running_loop()
        res = self.result
        body = self.payloads.chunks[stream.kind]
        headers = {
            **auth,
            "X-Chunk-SHA256": self.digests[stream.kind],
            "Content-Type": "application/octet-stream",
        }
        path = f"/api/v1/recordings/{stream.recording_id}/chunks/{seq}"
        backoff = 1.0
        while True:
            try:
                r = await conn.request("PUT", path, body, headers)
            except HTTPError as exc:
                res.statuses["chunk error"] += 1
                res.errors.append(f"chunk {exc}")
                wait = backoff
                backoff = min(backoff * 2, 30.0)
            else:
                res.statuses[f"chunk {r.status}"] += 1
                if r.status in (200, 201):
                    return True
                if r.status in BUSY:
                    res.deferred["chunk"] += 1
                    wait = r.retry_after()
                elif r.status >= 500:
                    res.errors.append(f"chunk {r.status} {r.body[:120]!r}")
                    wait = backoff
                    backoff = min(backoff * 2, 30.0)
                else:
                    res.errors.append(f"chunk {r.status} {r.body[:120]!r}")
                    return False
            if loop.time() + wait > give_up:
                return False
            await asyncio.sleep(wait)


def whole_digest(chunk: bytes, count: int) -> str:
    """SHA-256 of ``count`` copies of ``chunk`` in a row: what finalize checks."""
    h = hashlib.sha256()
    for _ in range(count):
        h.update(chunk)
    return h.hexdigest()
