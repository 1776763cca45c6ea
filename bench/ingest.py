"""Recording ingest under load: how many candidates one server holds at p99 ack < 500 ms.

Each simulated candidate uploads three streams the way the clients do: webcam 1 Mbit/s and
screen 0.5 Mbit/s from the desk, evidence 1 Mbit/s from the phone, a chunk every 2 s per stream
(PUT with its SHA-256), plus a JPEG snapshot per stream every 5 s (multipart POST). Each stream
has its own keep-alive connection, as a browser would. Latency is measured from when a request
was due (not when it was sent), so a backed-up server cannot hide its queue.

Targets, in one run: ``invigil serve`` on SQLite, on PostgreSQL, and ``bench/raw_asgi.py`` (the
same uvicorn, a handler that only writes and fsyncs each body: the ceiling for Python here).
For each, N grows until p99 passes 500 ms, then is bisected. The load generator runs in its own
process on loopback; every level is bounded in time.

    python bench/ingest.py            # full run (about 10-15 min), writes docs/benchmarks.md
    python bench/ingest.py --quick    # shorter levels, fewer steps (about 5 min)
    python bench/ingest.py --targets raw,sqlite --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
INVIGIL = str(Path(sys.executable).parent / "invigil")
SECRET = "bench-secret-key-0123456789abcdef"
P99_LIMIT_MS = 500.0
CHUNK_EVERY_S = 2.0
SNAPSHOT_EVERY_S = 5.0
SNAPSHOT_BYTES = 40_000  # a 640x480 JPEG at the console's quality
STREAMS = {  # kind: (bits per second, which token uploads it)
    "webcam": (1_000_000, "candidate"),
    "screen": (500_000, "candidate"),
    "evidence": (1_000_000, "phone"),
}
BOUNDARY = "----invigilbench7d1f"
WHAT_LIMITS = (
    "What `invigil serve` does per upload beyond the raw handler: routing, hashing th"
    "e body while it streams to a temp file, an fsync of that file, then a group comm"
    "it (`src/invigil/recordings/batch.py`): one committer thread per process takes e"
    "very upload that arrived meanwhile, checks each one's token, recording, window a"
    "nd seq (one SELECT), renames its file into place, inserts its row, fsyncs the di"
    "rectories and commits once; only then is each acknowledged. One transaction per "
    "chunk instead (the first version) held about 60 candidates on both databases on "
    "this machine, SQLite's lock hand-over with its busy-wait backoff being the limit"
    ". With group commit the server process is CPU-bound on one core (the GIL): the n"
    "ext steps are fewer Python layers per request (a raw ASGI route for the PUT) or "
    "several server processes, which the group commit and the database already allow."
)


# --- load generator (runs in its own process) -------------------------------------------------


def _bodies() -> dict[str, bytes]:
    rng = random.Random(1)
    bodies = {
        kind: rng.randbytes(int(bps * CHUNK_EVERY_S / 8)) for kind, (bps, _) in STREAMS.items()
    }
    jpeg = b"\xff\xd8\xff\xe0" + rng.randbytes(SNAPSHOT_BYTES - 6) + b"\xff\xd9"
    for kind in STREAMS:
        bodies[f"snap-{kind}"] = (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="s.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + jpeg
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
    return bodies


async def _stream(
    port: int,
    token: str,
    kind: str,
    recording_id: str,
    bodies: dict[str, bytes],
    digests: dict[str, str],
    t0: float,
    duration: float,
    warmup: float,
    rng: random.Random,
    out: dict[str, list[float]],
    errors: list[str],
) -> None:
    chunk_phase = rng.uniform(0, CHUNK_EVERY_S)
    snap_phase = rng.uniform(0, SNAPSHOT_EVERY_S)
    events: list[tuple[float, str, int]] = []
    t, seq = chunk_phase, 0
    while t < duration:
        events.append((t, "chunk", seq))
        t, seq = t + CHUNK_EVERY_S, seq + 1
    t = snap_phase
    while t < duration:
        events.append((t, "snapshot", 0))
        t += SNAPSHOT_EVERY_S
    events.sort()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    loop = asyncio.get_running_loop()
    for due, what, seq in events:
        delay = t0 + due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if what == "chunk":
            body = bodies[kind]
            head = (
                f"PUT /api/v1/recordings/{recording_id}/chunks/{seq} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                f"X-Chunk-SHA256: {digests[kind]}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
            )
        else:
            body = bodies[f"snap-{kind}"]
            head = (
                f"POST /api/v1/snapshots HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            writer.write(head.encode())
            writer.write(body)
            await writer.drain()
            status_line = await reader.readuntil(b"\r\n")
            headers = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in headers.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            payload = await reader.readexactly(length)
            status = int(status_line.split()[1])
            if status != 201:
                errors.append(f"{what} {status} {payload[:120]!r}")
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors.append(f"{what} {type(exc).__name__}")
            writer = None
            continue
        if due >= warmup:
            out[what].append((loop.time() - (t0 + due)) * 1000)
    if writer is not None:
        writer.close()


async def _loadgen(plan: dict[str, Any]) -> dict[str, Any]:
    bodies = _bodies()
    digests = {k: hashlib.sha256(v).hexdigest() for k, v in bodies.items()}
    out: dict[str, list[float]] = {"chunk": [], "snapshot": []}
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5
    duration, warmup = plan["duration"], plan["warmup"]
    rng = random.Random(plan["seed"])
    tasks = [
        asyncio.create_task(
            _stream(
                plan["port"],
                s["token"],
                s["kind"],
                s["recording_id"],
                bodies,
                digests,
                t0,
                duration,
                warmup,
                random.Random(rng.random()),
                out,
                errors,
            )
        )
        for s in plan["streams"]
    ]
    _, pending = await asyncio.wait(tasks, timeout=duration + 15)
    for task in pending:
        task.cancel()
    all_ms = sorted(out["chunk"] + out["snapshot"])
    return {
        "streams": len(plan["streams"]),
        "unfinished_streams": len(pending),
        "errors": len(errors),
        "error_samples": errors[:5],
        "requests": len(all_ms),
        "p50": _pct(all_ms, 50),
        "p99": _pct(all_ms, 99) if not pending else float("inf"),
        "max": all_ms[-1] if all_ms else None,
        "p99_chunk": _pct(sorted(out["chunk"]), 99),
        "p99_snapshot": _pct(sorted(out["snapshot"]), 99),
    }


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def loadgen_main(plan_path: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    plan = json.loads(Path(plan_path).read_text())
    print(json.dumps(asyncio.run(_loadgen(plan))))


# --- targets ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


@dataclass
class Target:
    name: str
    label: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def streams(self, n: int, level: int) -> list[dict[str, Any]]:
        return [
            {"token": "-", "kind": kind, "recording_id": uuid.uuid4().hex}
            for _ in range(n)
            for kind in STREAMS
        ]

    def clean(self) -> None: ...

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RawTarget(Target):
    def __init__(self, work: Path) -> None:
        super().__init__("raw", "raw ASGI handler (write + fsync)", _free_port())
        self.dir = work / "raw"
        self.log = (work / "raw.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "raw_asgi.py"),
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait_ready(self.port, self.proc)

    def clean(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)


class InvigilTarget(Target):
    def __init__(self, name: str, label: str, work: Path, url: str) -> None:
        from invigil.core.migrate import upgrade

        super().__init__(name, label, _free_port())
        self.data = work / name
        self.data.mkdir(parents=True, exist_ok=True)
        self.url = url
        upgrade(url)
        self._pool: list[tuple[str, str, str]] = []  # (attempt_id, candidate token, phone token)
        self._exam()
        env = {
            **os.environ,
            "INVIGIL_DATA_DIR": str(self.data),
            "INVIGIL_DATABASE_URL": url,
            "INVIGIL_SECRET_KEY": SECRET,
            "INVIGIL_PORT": str(self.port),
        }
        self.log = (work / f"{name}.log").open("ab")
        self.proc = subprocess.Popen(
            [INVIGIL, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        _wait_ready(self.port, self.proc)

    def _ctx(self) -> Any:
        from invigil.core.clock import SystemClock
        from invigil.core.config import Settings
        from invigil.core.context import AppContext
        from invigil.core.db import Database
        from invigil.core.storage import LocalBlobStore

        settings = Settings(data_dir=self.data, database_url=self.url, secret_key=SECRET)
        return AppContext(
            settings, Database(self.url), SystemClock(), LocalBlobStore(settings.blob_dir)
        )

    def _exam(self) -> None:
        from data import load_test_exam

        from invigil.core.db import transaction
        from invigil.exams.models import Room

        ctx = self._ctx()
        now = datetime.now(UTC)
        with transaction(ctx.db) as session:
            exam = load_test_exam(
                session, now, title="ingest benchmark", starts_at=now + timedelta(minutes=5)
            )
            room = Room(exam_id=exam.id, code="B01", name="bench")
            session.add(room)
            session.flush()
            self.exam_id, self.room_id = exam.id, room.id
        ctx.db.dispose()

    def _grow(self, n: int) -> None:
        from invigil.attempts import sessions
        from invigil.attempts.models import Attempt
        from invigil.core.db import transaction
        from invigil.exams.models import Candidate

        if len(self._pool) >= n:
            return
        ctx = self._ctx()
        now = datetime.now(UTC)
        with transaction(ctx.db) as session:
            for i in range(len(self._pool), n):
                cand = Candidate(
                    exam_id=self.exam_id, room_id=self.room_id, ticket=f"B{i:06d}", name=f"c{i}"
                )
                session.add(cand)
                session.flush()
                attempt = Attempt(
                    exam_id=self.exam_id, candidate_id=cand.id, room_id=self.room_id, entered_at=now
                )
                session.add(attempt)
                session.flush()
                desk = sessions.issue(session, ctx, "candidate", now, attempt_id=attempt.id)
                phone = sessions.issue(session, ctx, "phone", now, attempt_id=attempt.id)
                self._pool.append((attempt.id, desk.token, phone.token))
        ctx.db.dispose()

    def streams(self, n: int, level: int) -> list[dict[str, Any]]:
        from invigil.core.db import transaction
        from invigil.recordings.models import Recording

        self._grow(n)
        ctx = self._ctx()
        now = datetime.now(UTC)
        out = []
        with transaction(ctx.db) as session:
            for attempt_id, desk, phone in self._pool[:n]:
                for kind, (_, device) in STREAMS.items():
                    rec = Recording(
                        attempt_id=attempt_id,
                        kind=kind,
                        mime="video/webm;codecs=vp8,opus",
                        state="open",
                        created_at=now,
                        created_by=device,
                    )
                    session.add(rec)
                    session.flush()
                    token = desk if device == "candidate" else phone
                    out.append({"token": token, "kind": kind, "recording_id": rec.id})
        ctx.db.dispose()
        return out

    def clean(self) -> None:
        for sub in ("recordings", "snapshots"):
            shutil.rmtree(self.data / "blobs" / sub, ignore_errors=True)


# --- the search ------------------------------------------------------------------------------


def run_level(target: Target, n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    target.clean()
    plan = {
        "port": target.port,
        "duration": args.duration,
        "warmup": args.warmup,
        "seed": n,
        "streams": target.streams(n, 0),
    }
    plan_path = work / f"plan-{target.name}-{n}.json"
    plan_path.write_text(json.dumps(plan))
    time.sleep(1.0)  # let the previous level's writeback settle
    proc = subprocess.run(
        [sys.executable, __file__, "--loadgen", str(plan_path)],
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
        check=False,
    )
    plan_path.unlink()
    if proc.returncode != 0:
        raise SystemExit(f"load generator failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["n"] = n
    result["ok"] = (
        result["errors"] == 0
        and result["p99"] is not None
        and result["p99"] < P99_LIMIT_MS
        and not result["unfinished_streams"]
    )
    p99 = result["p99"]
    print(
        f"  {target.name:7s} N={n:4d}: p99 {p99:8.1f} ms  p50 {result['p50'] or 0:7.1f} ms  "
        f"requests {result['requests']:6d}  errors {result['errors']}  "
        f"{'ok' if result['ok'] else 'OVER'}",
        flush=True,
    )
    if result["error_samples"]:
        print(f"    e.g. {result['error_samples'][:2]}", flush=True)
    return result


def search(target: Target, start: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    good: dict[str, Any] | None = None
    bad: dict[str, Any] | None = None
    n = start
    levels: list[dict[str, Any]] = []
    for _ in range(args.max_levels):
        r = run_level(target, n, args, work)
        levels.append(r)
        if r["ok"]:
            good = r if good is None or r["n"] > good["n"] else good
        else:
            bad = r if bad is None or r["n"] < bad["n"] else bad
        if bad is None:
            n = int(n * 1.6)
        elif good is None:
            n = max(5, n // 2)
        else:
            if bad["n"] - good["n"] <= max(10, good["n"] // 10):
                break
            n = (good["n"] + bad["n"]) // 2
    return {"good": good, "bad": bad, "levels": levels}


def fsync_rate(folder: Path, seconds: float = 2.0) -> float:
    path = folder / "fsync-probe"
    count = 0
    end = time.monotonic() + seconds
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while time.monotonic() < end:
            os.pwrite(fd, b"x" * 4096, (count % 256) * 4096)
            os.fsync(fd)
            count += 1
    finally:
        os.close(fd)
        path.unlink()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter levels, fewer steps")
    parser.add_argument("--targets", default="raw,sqlite,postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "INVIGIL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server to create a scratch database on",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--duration", type=float, help="seconds per level")
    parser.add_argument("--levels", type=int, help="levels per target at most")
    parser.add_argument("--start", type=int, help="first N for every target")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server logs)")
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return
    args.duration = args.duration or (10.0 if args.quick else 20.0)
    args.warmup = 3.0 if args.quick else 4.0
    args.max_levels = args.levels or (4 if args.quick else 6)
    starts = {"raw": 160, "sqlite": 60, "postgres": 60}
    if args.start:
        starts = dict.fromkeys(starts, args.start)

    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="invigil-bench-"))
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    pg_admin = pg_db = None
    try:
        fsyncs = fsync_rate(work)
        print(f"disk: {fsyncs:.0f} fsyncs/s (4 KiB)", flush=True)
        for name in args.targets.split(","):
            target: Target
            if name == "raw":
                target = RawTarget(work)
            elif name == "sqlite":
                url = f"sqlite:///{work / 'bench.sqlite3'}"
                target = InvigilTarget("sqlite", "invigil serve, SQLite", work, url)
            elif name == "postgres":
                from sqlalchemy import create_engine, text
                from sqlalchemy.engine import make_url

                pg_admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
                pg_db = f"invigil_bench_{uuid.uuid4().hex[:8]}"
                with pg_admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{pg_db}"'))
                url = make_url(args.pg_url).set(database=pg_db).render_as_string(False)
                target = InvigilTarget("postgres", "invigil serve, PostgreSQL", work, url)
            else:
                raise SystemExit(f"unknown target {name}")
            print(f"{target.label}:", flush=True)
            try:
                results[name] = search(target, starts[name], args, work)
            finally:
                target.stop()
    finally:
        if pg_admin is not None and pg_db is not None:
            from sqlalchemy import text

            with pg_admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
            pg_admin.dispose()
        if args.keep:
            print(f"work folder kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"done in {elapsed / 60:.1f} min", flush=True)
    body = report(results, args, fsyncs, elapsed)
    body += (
        f"\n\nLoad average of the machine (1 min) at the start {load_before:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f} (2 cores; above 2, other work shared them and the figures "
        "are pessimistic: compare with the raw handler's, measured in the same run)."
    )
    print(body)
    if not args.no_write:
        sys.path.insert(0, str(BENCH))
        from report import write_section

        write_section("Recording ingest", body)


def report(
    results: dict[str, dict[str, Any]], args: argparse.Namespace, fsyncs: float, elapsed: float
) -> str:
    def n_of(name: str) -> int | None:
        good = results.get(name, {}).get("good")
        return int(good["n"]) if good else None

    lines = [
        f"`python bench/ingest.py{' --quick' if args.quick else ''}` "
        f"({elapsed / 60:.1f} min). Per candidate: webcam 1 Mbit/s, screen 0.5 Mbit/s, phone "
        "1 Mbit/s, a chunk every 2 s per stream (PUT with SHA-256), a 40 KB JPEG snapshot per "
        "stream every 5 s; one keep-alive connection per stream; latency from when a request "
        f"was due; levels of {args.duration:.0f} s ({args.warmup:.0f} s warm-up not counted). "
        "Load generator in its own process on loopback, on the same machine. "
        f"The disk took {fsyncs:.0f} fsyncs/s (4 KiB writes, one file) in the same run.",
        "",
        "| target | largest N with p99 < 500 ms | p99 there | p99 chunk / snapshot | "
        "first N over | p99 there |",
        "|---|---|---|---|---|---|",
    ]
    labels = {
        "raw": "raw ASGI, write + fsync (`bench/raw_asgi.py`)",
        "sqlite": "`invigil serve`, SQLite",
        "postgres": "`invigil serve`, PostgreSQL",
    }
    for name, r in results.items():
        good, bad = r["good"], r["bad"]

        def ms(v: Any) -> str:
            return "–" if v is None else ("∞" if v == float("inf") else f"{v:.0f} ms")

        lines.append(
            f"| {labels[name]} | **{good['n'] if good else '< ' + str(r['levels'][-1]['n'])}** | "
            f"{ms(good and good['p99'])} | "
            f"{ms(good and good['p99_chunk'])} / {ms(good and good['p99_snapshot'])} | "
            f"{bad['n'] if bad else '–'} | {ms(bad and bad['p99'])} |"
        )
    raw = n_of("raw")
    ratios = []
    for name in ("sqlite", "postgres"):
        n = n_of(name)
        if raw and n:
            ratios.append(f"{labels[name]}: {n / raw:.2f} of the raw handler")
    if ratios:
        lines += [
            "",
            "Ratio to the raw handler measured in the same run: " + "; ".join(ratios) + ".",
        ]
    lines += ["", WHAT_LIMITS]
    lines += ["", "Every level run (N: p99 all / errors):", ""]
    for name, r in results.items():
        steps = ", ".join(
            f"{lv['n']}: {'∞' if lv['p99'] == float('inf') else round(lv['p99'] or 0)} ms"
            + (f" / {lv['errors']} err" if lv["errors"] else "")
            for lv in r["levels"]
        )
        lines.append(f"- {labels[name]}: {steps}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
