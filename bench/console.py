"""The proctor console under load: how fast a candidate's event reaches a watching console.

One console (a WebSocket client, the same protocol as /proctor/) watches a room of 30
candidates. Those 30 post client events (``focus_lost``, one every 5 s each, staggered); the
latency is from just before the POST to the event's arrival on the console. Meanwhile the
server holds N simulated candidates (default 500, the 30 included in the count): each sends a
heartbeat every 5 s and a JPEG snapshot every 5 s from each of three cameras (webcam and
screen from the desk connection, evidence from the phone's), as the clients do.

Two phases in one run against one ``invigil serve`` process: the baseline (the same console and
event path, no background load), then the loaded phase. Reported: event→console p50/p95/p99,
the server's CPU (its process's user+system time over the phase, in % of one core), and what
the background load achieved (requests/s, p99 of heartbeats and snapshots, measured from when
each was due). The load generator runs in its own process on loopback; each phase is bounded.

    python bench/console.py                 # SQLite, 500 candidates, 30 s per phase
    python bench/console.py --db postgres   # a scratch PostgreSQL database
    python bench/console.py --quick --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
INVIGIL = str(Path(sys.executable).parent / "invigil")
SECRET = "bench-secret-key-0123456789abcdef"
EVERY_S = 5.0
WATCHED = 30
SNAPSHOT_BYTES = 40_000
BOUNDARY = "----invigilconsole5e1f"


# --- setup ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(url: str, data: Path, n: int) -> dict[str, Any]:
    """An exam with rooms of 30, N entered candidates with desk and phone sessions, and one
    proctor of the first room."""
    from data import load_test_exam

    from invigil.attempts import sessions
    from invigil.attempts.models import Attempt
    from invigil.core.clock import SystemClock
    from invigil.core.config import Settings
    from invigil.core.context import AppContext
    from invigil.core.db import Database, transaction
    from invigil.core.migrate import upgrade
    from invigil.core.security import hash_password
    from invigil.core.storage import LocalBlobStore
    from invigil.exams.models import Candidate, Room
    from invigil.staff.models import StaffRoom, StaffUser

    upgrade(url)
    settings = Settings(data_dir=data, database_url=url, secret_key=SECRET)
    ctx = AppContext(settings, Database(url), SystemClock(), LocalBlobStore(settings.blob_dir))
    now = datetime.now(UTC)
    plan: dict[str, Any] = {"candidates": [], "watched": []}
    with transaction(ctx.db) as session:
        exam = load_test_exam(
            session, now, title="console benchmark", starts_at=now - timedelta(minutes=1)
        )
        rooms: list[Room] = []
        for i in range(n):
            if i % WATCHED == 0:
                rooms.append(Room(exam_id=exam.id, code=f"R{len(rooms) + 1:02d}", name="考场"))
                session.add(rooms[-1])
                session.flush()
            room = rooms[-1]
            cand = Candidate(exam_id=exam.id, room_id=room.id, ticket=f"{i:06d}", name=f"考生{i}")
            session.add(cand)
            session.flush()
            attempt = Attempt(
                exam_id=exam.id,
                candidate_id=cand.id,
                room_id=room.id,
                lot_number=i % WATCHED + 1,
                face_verified_at=now,
                entered_at=now,
                evidence_state="recording",
                evidence_state_at=now,
            )
            session.add(attempt)
            session.flush()
            desk = sessions.issue(session, ctx, "candidate", now, attempt_id=attempt.id)
            phone = sessions.issue(session, ctx, "phone", now, attempt_id=attempt.id)
            plan["candidates"].append({"desk": desk.token, "phone": phone.token})
            if room is rooms[0]:
                plan["watched"].append({"attempt_id": attempt.id, "desk": desk.token})
        user = StaffUser(
            username="bench-proctor",
            password_hash=hash_password("x"),
            roles=["proctor"],
            created_at=now,
        )
        session.add(user)
        session.flush()
        session.add(StaffRoom(staff_id=user.id, room_id=rooms[0].id))
        plan["staff"] = sessions.issue(session, ctx, "staff", now, staff_id=user.id).token
        plan["room_id"] = rooms[0].id
    ctx.db.dispose()
    return plan


# --- raw HTTP/1.1 over keep-alive connections (cheap enough to simulate 500 clients) ----------


class Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> int:
        """Send one request and read its response. The server closes keep-alive connections
        idle for 5 s, which is exactly the clients' period: a request on a connection that
        turns out closed is retried once on a fresh one."""
        for attempt in range(2):
            fresh = self.writer is None or self.writer.is_closing()
            if fresh:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                return await self._exchange(data)
            except (OSError, asyncio.IncompleteReadError):
                self.writer = None
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, data: bytes) -> int:
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await self.reader.readexactly(length)
        return status


def _post(path: str, token: str, body: bytes, ctype: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _snapshot_body(kind: str, jpeg: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="s.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + jpeg
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def _device(
    port: int,
    requests: list[tuple[str, bytes]],
    offset: float,
    t0: float,
    end: float,
    lat: dict[str, list[float]],
    errors: list[str],
) -> None:
    conn = Conn(port)
    tick = t0 + offset
    loop = asyncio.get_running_loop()
    while tick < end:
        delay = tick - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for name, data in requests:
            try:
                status = await conn.request(data)
                if status >= 300:
                    errors.append(f"{name} {status}")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(f"{name} {type(exc).__name__}")
                conn.writer = None
                continue
            lat[name].append(loop.time() - tick)
        tick += EVERY_S


async def _loadgen(plan: dict[str, Any], duration: float) -> dict[str, Any]:
    rng = random.Random(7)
    jpeg = b"\xff\xd8\xff\xe0" + rng.randbytes(SNAPSHOT_BYTES - 6) + b"\xff\xd9"
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5
    end = t0 + duration
    lat: dict[str, list[float]] = {"heartbeat": [], "snapshot": []}
    errors: list[str] = []
    tasks = []
    for c in plan["candidates"]:
        offset = rng.random() * EVERY_S
        desk = [
            ("heartbeat", _post("/api/v1/candidate/heartbeat", c["desk"], b"", "application/json")),
            (
                "snapshot",
                _post("/api/v1/snapshots", c["desk"], _snapshot_body("webcam", jpeg), ctype),
            ),
            (
                "snapshot",
                _post("/api/v1/snapshots", c["desk"], _snapshot_body("screen", jpeg), ctype),
            ),
        ]
        phone = [
            (
                "snapshot",
                _post("/api/v1/snapshots", c["phone"], _snapshot_body("evidence", jpeg), ctype),
            )
        ]
        tasks.append(_device(plan["port"], desk, offset, t0, end, lat, errors))
        tasks.append(_device(plan["port"], phone, offset + 0.1, t0, end, lat, errors))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - t0
    return {
        "requests_per_s": sum(len(v) for v in lat.values()) / elapsed,
        "heartbeat_p99_ms": _pct(lat["heartbeat"], 99) * 1000,
        "snapshot_p99_ms": _pct(lat["snapshot"], 99) * 1000,
        "snapshots": len(lat["snapshot"]),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:10],
    }


def loadgen_main(plan_path: str, duration: float) -> None:
    plan = json.loads(Path(plan_path).read_text())
    print(json.dumps(asyncio.run(_loadgen(plan, duration))), flush=True)


# --- the console and the probe ---------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def probe(plan: dict[str, Any], duration: float, server_pid: int) -> dict[str, Any]:
    """A console watching the room; its 30 candidates post an event each every 5 s."""
    import websockets

    port = plan["port"]
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}  # nonce -> when the POST's response arrived
    latencies: list[float] = []
    posts: list[float] = []
    fanout: list[float] = []  # arrival on the console minus the POST's response
    loop = asyncio.get_running_loop()
    url = f"ws://127.0.0.1:{port}/api/v1/staff/ws?token={plan['staff']}"
    async with websockets.connect(url, max_size=None) as ws:
        json.loads(await ws.recv())  # hello
        await ws.send(json.dumps({"type": "subscribe", "rooms": [plan["room_id"]]}))
        while json.loads(await ws.recv())["type"] != "replay_done":
            pass

        async def receive() -> None:
            async for frame in ws:
                msg = json.loads(frame)
                if msg.get("type") == "event":
                    nonce = (msg["event"].get("data") or {}).get("probe")
                    if nonce in sent:
                        now = loop.time()
                        latencies.append(now - sent.pop(nonce))
                        if nonce in answered:
                            fanout.append(now - answered.pop(nonce))
                        else:
                            fanout.append(0.0)  # before the HTTP response: published at commit

        async def poster(c: dict[str, str], offset: float, end: float) -> None:
            conn = Conn(port)
            tick = loop.time() + offset
            while tick < end:
                await asyncio.sleep(max(0.0, tick - loop.time()))
                nonce = uuid.uuid4().hex
                body = json.dumps({"kind": "focus_lost", "data": {"probe": nonce}}).encode()
                t = sent[nonce] = loop.time()
                await conn.request(
                    _post("/api/v1/candidate/events", c["desk"], body, "application/json")
                )
                posts.append(loop.time() - t)
                if nonce in sent:
                    answered[nonce] = loop.time()
                tick += EVERY_S

        reader = asyncio.create_task(receive())
        cpu0, wall0 = _cpu_seconds(server_pid), time.monotonic()
        end = loop.time() + duration
        await asyncio.gather(
            *(
                poster(c, i * EVERY_S / len(plan["watched"]), end)
                for i, c in enumerate(plan["watched"])
            )
        )
        await asyncio.sleep(2.0)  # stragglers
        cpu = (_cpu_seconds(server_pid) - cpu0) / (time.monotonic() - wall0)
        reader.cancel()
    return {
        "events": len(latencies),
        "lost": len(sent),
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p95_ms": _pct(latencies, 95) * 1000,
        "p99_ms": _pct(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "post_p99_ms": _pct(posts, 99) * 1000,
        "fanout_p99_ms": _pct(fanout, 99) * 1000,
        "server_cpu_pct": cpu * 100,
    }


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"invigil serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("invigil serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument(
        "--candidates", default="500", help="background levels, comma-separated (e.g. 250,500)"
    )
    parser.add_argument("--duration", type=float, help="seconds per phase (default 30)")
    parser.add_argument("--quick", action="store_true", help="15 s phases")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "INVIGIL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    duration = args.duration or (15.0 if args.quick else 30.0)
    if args.loadgen:
        loadgen_main(args.loadgen, duration)
        return
    levels = sorted({int(x) for x in str(args.candidates).split(",")})

    load_before = os.getloadavg()
    results = [run_db(db, args, levels, duration) for db in args.db.split(",")]
    load_after = os.getloadavg()
    body = (
        INTRO.format(
            watched=WATCHED,
            kb=SNAPSHOT_BYTES // 1000,
            duration=f"{duration:.0f}",
            cores=os.cpu_count(),
            levels=", ".join(map(str, levels)),
        )
        + (
            f"\nLoad average of the machine (1 min) at the start of the run "
            f"{load_before[0]:.1f}, at the end {load_after[0]:.1f}.\n"
        )
        + "\n".join(results)
    )
    print(body)
    if not args.no_write:
        from report import write_section

        write_section("Proctor console", body)


INTRO = """
`python bench/console.py`: one console (the /proctor/ WebSocket protocol) watches a room of
{watched} candidates who each post a `focus_lost` event every 5 s; **latency** is from just
before the POST to the event's arrival on the console, split into the POST's own time (the
event is committed and published before the response) and what remains after the response
(the fan-out; 0 when the event arrived first). A loaded phase adds N simulated candidates
({watched} of them in the watched room) sending a heartbeat and three {kb} KB JPEG snapshots
(webcam, screen, phone) every 5 s each, from a separate load-generator process over loopback;
N = {levels}. The baseline is the same console and event path without background load,
measured in the same run. `invigil serve` (one process, embedded worker, in-process bus),
{duration} s per phase. **Server CPU** is the server process's user + system time over the
phase, in % of one core; the machine has {cores} cores, shared with the load generator, the
console and (on PostgreSQL) the database server. "not arrived": posted but not on the console
2 s after the phase ended (still queued in the server).

How to read it: an after-response p99 of 0 means every event reached the console no later
than its own HTTP response (it is published the moment its transaction commits). Whatever latency there is, is the POST waiting for the server (request threads and
the database write path, shared with the snapshot ingest); the console's fan-out adds nothing
measurable. Where the background load is not achieved (achieved < due) the server is
saturated by snapshot ingest, and the event POSTs queue with everything else.
"""


def run_db(db: str, args: argparse.Namespace, levels: list[int], duration: float) -> str:
    work = Path(tempfile.mkdtemp(prefix="invigil-console-bench-"))
    results: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    pg_admin = pg_db = None
    proc = None
    try:
        if db == "postgres":
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            pg_admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            pg_db = f"invigil_console_{uuid.uuid4().hex[:8]}"
            with pg_admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_db}"'))
            url = make_url(args.pg_url).set(database=pg_db).render_as_string(False)
        else:
            url = f"sqlite:///{work / 'bench.sqlite3'}"
        print(f"{db}: setting up {max(levels)} candidates", flush=True)
        plan = setup(url, work / "data", max(levels))
        port = _free_port()
        plan["port"] = port
        log = work / "server.log"
        env = {
            **os.environ,
            "INVIGIL_DATA_DIR": str(work / "data"),
            "INVIGIL_DATABASE_URL": url,
            "INVIGIL_SECRET_KEY": SECRET,
            "INVIGIL_PORT": str(port),
        }
        env.pop("INVIGIL_REDIS_URL", None)
        proc = subprocess.Popen(
            [INVIGIL, "serve"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        _wait_ready(port, proc, log)

        print(f"{db}: baseline (console + {WATCHED} candidates' events)", flush=True)
        asyncio.run(probe(plan, 5.0, proc.pid))  # warm up
        baseline = asyncio.run(probe(plan, duration, proc.pid))
        print(json.dumps(baseline), flush=True)

        warmup = 8.0
        for n in levels:
            print(f"{db}: {n} candidates' heartbeats and snapshots", flush=True)
            level_plan = work / f"plan-{n}.json"
            level_plan.write_text(json.dumps({**plan, "candidates": plan["candidates"][:n]}))
            gen = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--loadgen",
                    str(level_plan),
                    "--duration",
                    str(duration + warmup + 4),
                ],
                stdout=subprocess.PIPE,
            )
            time.sleep(warmup)
            loaded = asyncio.run(probe(plan, duration, proc.pid))
            out, _ = gen.communicate(timeout=duration + 120)
            background = json.loads(out.decode().strip().splitlines()[-1])
            print(json.dumps(loaded), flush=True)
            print(json.dumps(background), flush=True)
            results.append((n, loaded, background))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg_admin is not None and pg_db is not None:
            from sqlalchemy import text

            with pg_admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
            pg_admin.dispose()
        if sys.exc_info()[0] is not None and (work / "server.log").exists():
            print((work / "server.log").read_text()[-4000:], file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    def row(name: str, r: dict[str, Any]) -> str:
        return (
            f"| {name} | {r['events']} | {r['lost']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} "
            f"| **{r['p99_ms']:.0f}** | {r['max_ms']:.0f} | {r['post_p99_ms']:.0f} "
            f"| {r['fanout_p99_ms']:.0f} | {r['server_cpu_pct']:.0f} % |"
        )

    rows = "\n".join(row(f"N = {n}", loaded) for n, loaded, _ in results)
    achieved = "\n".join(
        f"| {n} | {n * 4 / EVERY_S:.0f} | {bg['requests_per_s']:.0f} | {bg['snapshots']} "
        f"| {bg['heartbeat_p99_ms']:.0f} | {bg['snapshot_p99_ms']:.0f} | {bg['errors']} |"
        for n, _, bg in results
    )
    label = "SQLite" if db == "sqlite" else "PostgreSQL"
    return f"""
### {label}

| phase | events | not arrived | p50 ms | p95 ms | p99 ms | max ms | POST p99 ms | after-response p99 ms | server CPU |
|---|---|---|---|---|---|---|---|---|---|
{row("baseline (no background load)", baseline)}
{rows}

Background load (latency from when each request was due):

| N | requests/s due | achieved | snapshots | heartbeat p99 ms | snapshot p99 ms | errors |
|---|---|---|---|---|---|---|
{achieved}
"""


if __name__ == "__main__":
    main()
