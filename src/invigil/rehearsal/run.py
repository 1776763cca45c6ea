"""A rehearsal run against a deployment: N candidates log in by face, bind a phone, draw a
lot, enter and record three streams for a few minutes (chunks with SHA-256, JPEG snapshots of
a real face, heartbeats), then finalize; every recording is checked on the server (chunks
received, whole-file hash). The report gives the acknowledgement latency per request kind,
the errors, the 503s (backpressure) and anything lost."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invigil.rehearsal.http import Connection, HTTPError, Response, multipart
from invigil.rehearsal.load import Load, Result, Stream, pct
from invigil.rehearsal.media import MIME, STREAMS, Payloads


class RehearsalError(Exception):
    pass


@dataclass
class Candidate:
    ticket: str
    token: str = ""
    phone_token: str = ""
    recordings: dict[str, str] = field(default_factory=dict)  # kind → id


@dataclass
class Report:
    candidates: int
    ready: int
    duration: float
    setup: dict[str, list[float]]  # request kind → ms
    setup_errors: list[str]
    load: dict[str, Any]
    recordings: int = 0
    verified: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.ready == self.candidates
            and self.verified == self.recordings
            and self.load["chunks_lost"] == 0
            and not self.problems
        )

    def as_json(self) -> dict[str, Any]:
        setup = {
            kind: {"count": len(v), "p50": pct(sorted(v), 50), "p99": pct(sorted(v), 99)}
            for kind, v in sorted(self.setup.items())
        }
        return {
            "ok": self.ok,
            "candidates": self.candidates,
            "ready": self.ready,
            "minutes": round(self.duration / 60, 2),
            "setup": setup,
            "setup_errors": self.setup_errors[:10],
            "load": self.load,
            "recordings": self.recordings,
            "verified": self.verified,
            "problems": self.problems[:20],
        }

    def text(self) -> str:
        def ms(v: float | None) -> str:
            return "–" if v is None else f"{v:.0f}"

        lines = [
            f"演练结果 rehearsal: {self.ready}/{self.candidates} 名考生就绪 candidates ready, "
            f"{self.duration / 60:.1f} min",
            "",
            f"{'request':<14}{'count':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        ]
        for kind, v in sorted(self.setup.items()):
            o = sorted(v)
            lines.append(
                f"{kind:<14}{len(o):>8}{ms(pct(o, 50)):>9}{ms(pct(o, 99)):>9}{ms(o[-1] if o else None):>9}"
            )
        for kind, s in self.load["kinds"].items():
            lines.append(
                f"{kind:<14}{s['count']:>8}{ms(s['p50']):>9}{ms(s['p99']):>9}{ms(s['max']):>9}"
            )
        deferred = ", ".join(f"{k} {n}" for k, n in self.load["deferred"].items()) or "0"
        lines += [
            "",
            f"503/429 (server asked to slow down): {deferred}",
            f"errors: {self.load['errors'] + len(self.setup_errors)}",
            f"chunks: {self.load['chunks_produced']} made, {self.load['chunks_lost']} lost",
            f"recordings verified on the server (all chunks, SHA-256): "
            f"{self.verified}/{self.recordings}",
        ]
        for p in self.problems[:10]:
            lines.append(f"  ! {p}")
        lines.append("")
        lines.append("结论 verdict: " + ("通过 OK" if self.ok else "未通过 FAILED"))
        return "\n".join(lines)


class _Digests:
    """SHA-256 of the first n chunks of a kind (all chunks of a kind carry the same bytes)."""

    def __init__(self, chunks: dict[str, bytes]) -> None:
        self.chunks = chunks
        self.hashers = {k: hashlib.sha256() for k in chunks}
        self.done: dict[str, list[str]] = {k: [] for k in chunks}

    def whole(self, kind: str, n: int) -> str:
        done = self.done[kind]
        while len(done) < n:
            self.hashers[kind].update(self.chunks[kind])
            done.append(self.hashers[kind].hexdigest())
        return done[n - 1]


class Rehearsal:
    def __init__(
        self,
        url: str,
        exam_id: str,
        tickets: list[str],
        face: Path,
        *,
        minutes: float,
        concurrency: int = 8,
        verify_tls: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.exam_id = exam_id
        self.tickets = tickets
        self.payloads = Payloads.make(face)
        self.login_face = self.payloads.snapshots["webcam"][0]
        self.duration = minutes * 60
        self.concurrency = concurrency
        self.verify_tls = verify_tls
        self.setup: dict[str, list[float]] = {}
        self.setup_errors: list[str] = []

    def _conn(self) -> Connection:
        return Connection(self.url, verify=self.verify_tls)

    async def _call(
        self,
        conn: Connection,
        kind: str,
        method: str,
        path: str,
        *,
        token: str = "",
        json_body: Any = None,
        body: bytes = b"",
        ctype: str = "",
        ok: tuple[int, ...] = (200, 201),
    ) -> Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if json_body is not None:
            body, ctype = json.dumps(json_body).encode(), "application/json"
        if ctype:
            headers["Content-Type"] = ctype
        for _ in range(20):  # a loaded server asks to wait: do, as the clients do
            start = time.perf_counter()
            try:
                r = await conn.request(method, path, body, headers)
            except HTTPError as exc:
                raise RehearsalError(f"{kind}: {exc}") from None
            if r.status in (429, 503):
                await asyncio.sleep(r.retry_after())
                continue
            self.setup.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
            if r.status not in ok:
                raise RehearsalError(f"{kind} {r.status} {r.body[:160]!r}")
            return r
        raise RehearsalError(f"{kind}: the server stayed busy")

    async def _ready(self, ticket: str) -> Candidate:
        """Log one candidate in, bind the phone, draw a lot, enter, open three recordings."""
        c = Candidate(ticket)
        conn = self._conn()
        try:
            body, ctype = multipart(
                {"exam_id": self.exam_id, "ticket": ticket},
                {"face": ("face.jpg", self.login_face, "image/jpeg")},
            )
            r = await self._call(
                conn, "login", "POST", "/api/v1/candidate/login", body=body, ctype=ctype
            )
            c.token = json.loads(r.body)["token"]
            r = await self._call(
                conn, "binding", "POST", "/api/v1/candidate/binding", token=c.token
            )
            code = json.loads(r.body)["code"]
            r = await self._call(
                conn, "phone_bind", "POST", "/api/v1/phone/bind", json_body={"code": code}
            )
            c.phone_token = json.loads(r.body)["token"]
            # The phone records (the desk may enter only then), then the desk enters.
            await self._recording(conn, c, "evidence")
            await self._call(
                conn,
                "phone_status",
                "POST",
                "/api/v1/phone/status",
                token=c.phone_token,
                json_body={"state": "recording"},
            )
            await self._call(conn, "lot", "POST", "/api/v1/candidate/lot", token=c.token)
            r = await self._call(conn, "state", "GET", "/api/v1/candidate/state", token=c.token)
            for a in json.loads(r.body).get("attachments", []):
                await self._call(
                    conn,
                    "read",
                    "POST",
                    f"/api/v1/candidate/attachments/{a['id']}/read",
                    token=c.token,
                )
            await self._call(conn, "enter", "POST", "/api/v1/candidate/enter", token=c.token)
            for kind in STREAMS:
                if kind not in c.recordings:
                    await self._recording(conn, c, kind)
            return c
        finally:
            conn.close()

    async def _recording(self, conn: Connection, c: Candidate, kind: str) -> None:
        token = c.token if STREAMS[kind][1] == "candidate" else c.phone_token
        r = await self._call(
            conn,
            "recording",
            "POST",
            "/api/v1/recordings",
            token=token,
            json_body={"kind": kind, "mime": MIME},
        )
        c.recordings[kind] = json.loads(r.body)["recording_id"]

    async def _all_ready(self) -> list[Candidate]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(ticket: str) -> Candidate | None:
            async with gate:
                try:
                    return await self._ready(ticket)
                except RehearsalError as exc:
                    self.setup_errors.append(f"{ticket}: {exc}")
                    return None

        found = await asyncio.gather(*(one(t) for t in self.tickets))
        return [c for c in found if c is not None]

    async def _verify(self, ready: list[Candidate], result: Result, report: Report) -> None:
        digests = _Digests(self.payloads.chunks)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(c: Candidate, kind: str, rid: str) -> None:
            token = c.token if STREAMS[kind][1] == "candidate" else c.phone_token
            n = result.produced.get(rid, 0)
            async with gate:
                conn = self._conn()
                try:
                    if n:
                        await self._call(
                            conn,
                            "finalize",
                            "POST",
                            f"/api/v1/recordings/{rid}/finalize",
                            token=token,
                            json_body={"chunks": n, "sha256": digests.whole(kind, n)},
                        )
                    r = await self._call(
                        conn, "check", "GET", f"/api/v1/recordings/{rid}", token=token
                    )
                    info = json.loads(r.body)
                    want = set(range(n))
                    if set(info.get("received", [])) != want or (
                        n and info.get("state") != "finalized"
                    ):
                        missing = sorted(want - set(info.get("received", [])))
                        report.problems.append(f"{c.ticket} {kind}: missing chunks {missing[:10]}")
                    else:
                        report.verified += 1
                except RehearsalError as exc:
                    report.problems.append(f"{c.ticket} {kind}: {exc}")
                finally:
                    conn.close()

        jobs = [one(c, k, rid) for c in ready for k, rid in c.recordings.items()]
        report.recordings = len(jobs)
        await asyncio.gather(*jobs)
        for c in ready:
            conn = self._conn()
            try:
                await self._call(conn, "finish", "POST", "/api/v1/candidate/finish", token=c.token)
            except RehearsalError as exc:
                report.problems.append(f"{c.ticket} finish: {exc}")
            finally:
                conn.close()

    async def run(self, after_setup: Callable[[], None] | None = None) -> Report:
        ready = await self._all_ready()
        if after_setup is not None:  # tests and drills: e.g. force the server's load now
            after_setup()
        streams = [
            Stream(kind, rid, c.token if STREAMS[kind][1] == "candidate" else c.phone_token)
            for c in ready
            for kind, rid in c.recordings.items()
        ]
        load = Load(self.url, self.payloads, duration=self.duration, verify_tls=self.verify_tls)
        result = await load.run(streams)
        report = Report(
            candidates=len(self.tickets),
            ready=len(ready),
            duration=self.duration,
            setup=self.setup,
            setup_errors=self.setup_errors,
            load=result.summary(),
        )
        await self._verify(ready, result, report)
        return report


def run(
    url: str,
    exam_id: str,
    tickets: list[str],
    face: Path,
    *,
    minutes: float,
    concurrency: int = 8,
    verify_tls: bool = True,
    after_setup: Callable[[], None] | None = None,
) -> Report:
    try:
        import uvloop  # the generator's own CPU per request matters: the faster loop

        uvloop.install()
    except ImportError:
        pass
    rehearsal = Rehearsal(
        url, exam_id, tickets, face, minutes=minutes, concurrency=concurrency, verify_tls=verify_tls
    )
    return asyncio.run(rehearsal.run(after_setup))
