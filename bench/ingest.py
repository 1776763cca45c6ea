"""Recording ingest under load: how many candidates one box holds at p99 ack < 500 ms.

Each simulated candidate uploads three streams the way the clients do: webcam 1 Mbit/s and
screen 0.5 Mbit/s from the desk, evidence 1 Mbit/s from the phone, a chunk every 2 s per stream
(PUT with its SHA-256), plus a JPEG snapshot per stream every 5 s (multipart POST): real frames
made from a photo of a face (tests/data/faces/obama.jpg) for the webcam and the phone, so the
server's analysis (running as a default installation runs it: the embedded worker of each
process) detects and embeds a real face. The person sits still but moves a little every 4th
snapshot, each frame with fresh sensor noise (rehearsal/media.py: the exam mix of the snapshot
analysis benchmark), so the analysis does a day's work. Each stream has its own keep-alive
connection, as a browser would. Latency is measured from when a request was due (not when it was sent), so a
backed-up server cannot hide its queue. The load generator is the one `invigil rehearse`
uses (src/invigil/rehearsal/load.py), in its own process.

Targets (``--targets``, comma-separated; one run measures them all on the same box):
  raw       bench/raw_asgi.py: the same uvicorn, a handler that only writes and fsyncs each
            body (the ceiling for Python here)
  sqlite    invigil serve, SQLite, one process
  postgres  invigil serve, PostgreSQL, one process
  pg1, pg2  invigil serve on PostgreSQL + Redis, 1 and 2 processes (--workers 2), local disk
  s3-1, s3-2  the same with blobs on the local S3 server (scripts/s3-local: Ceph radosgw)
  pg2-apart pg2 with the analysis on other machines (not in the default run): the serving box
            of a large exam (docs/deploy.md), whose snapshots' jobs wait for `invigil worker`
Targets that this checkout cannot run (no `--workers`, no Ceph) are skipped with a note.
For each, N grows until p99 passes 500 ms, then is bisected; every level is bounded in time.

    python bench/ingest.py            # raw,pg1,pg2,s3-1,s3-2 (about 30 min), docs/benchmarks.md
    python bench/ingest.py --quick    # shorter levels, fewer steps
    python bench/ingest.py --targets raw,sqlite --quick --levels 2 --start 10 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

from cpu import CpuSample  # bench/ is on the path: run as a script or imported by a sibling

from invigil.rehearsal.media import STREAMS

BENCH = Path(__file__).resolve().parent
INVIGIL = str(Path(sys.executable).parent / "invigil")
SECRET = "bench-secret-key-0123456789abcdef"
P99_LIMIT_MS = 500.0
S3_BYTES = 8 << 30  # the local S3 server's memory store, per target
FACE = BENCH.parent / "tests" / "data" / "faces" / "obama.jpg"
REPO = BENCH.parent
WHAT_LIMITS = (
    "What `invigil serve` does per upload beyond the raw handler: routing, hashing th"
    "e body while it streams to a scratch file, then a group commit (`src/invigil/rec"
    "ordings/batch.py`): one committer thread per process takes every upload that arr"
    "ived meanwhile, looks up what they need in one statement per kind for all of the"
    "m (their tokens with their upload windows; the chunks' recordings with whether e"
    "ach seq is held), checks each one, inserts their rows (one INSERT per table), re"
    "names their files into place, makes the batch's files durable with one syncfs an"
    "d commits once; only then is each acknowledged. Each webcam and phone snapshot a"
    "lso queues a `snapshot.analyse` job (face detection, and an embedding against th"
    "e reference every few frames) that the process's embedded worker runs beside the"
    " uploads, as a default installation does. One process is CPU-bound on one core ("
    "the GIL); several processes (`--workers`) share the database and the blob store."
)


# --- load generator (runs in its own process) -------------------------------------------------


def loadgen_main(plan_path: str) -> None:
    from invigil.rehearsal.load import Load, Stream
    from invigil.rehearsal.media import Payloads

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    plan = json.loads(Path(plan_path).read_text())
    load = Load(
        f"http://127.0.0.1:{plan['port']}",
        Payloads.make(Path(plan["face"])),
        duration=plan["duration"],
        warmup=plan["warmup"],
        heartbeats=False,  # as the figures before it: chunks and snapshots only
        grace=15.0,
        seed=plan["seed"],
    )
    streams = [Stream(s["kind"], s["recording_id"], s["token"]) for s in plan["streams"]]
    print("go", flush=True)  # the parent samples the machine's CPU from here
    cpu0, wall0 = time.process_time(), time.monotonic()
    result = asyncio.run(load.run(streams)).summary()
    result["loadgen_cores"] = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    kinds = result.pop("kinds")
    result["streams"] = len(streams)
    result["p99_chunk"] = kinds.get("chunk", {}).get("p99")
    result["p99_snapshot"] = kinds.get("snapshot", {}).get("p99")
    print(json.dumps(result))


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
    def __init__(
        self,
        name: str,
        label: str,
        work: Path,
        url: str,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        from invigil.core.migrate import upgrade

        super().__init__(name, label, _free_port())
        self.data = work / name
        self.data.mkdir(parents=True, exist_ok=True)
        self.url = url
        upgrade(url)
        self._pool: list[tuple[str, str, str]] = []  # (attempt_id, candidate token, phone token)
        self._exam()
        full_env = {
            **os.environ,
            "INVIGIL_DATA_DIR": str(self.data),
            "INVIGIL_DATABASE_URL": url,
            "INVIGIL_SECRET_KEY": SECRET,
            "INVIGIL_PORT": str(self.port),
            # The load generator plays every candidate from one address.
            "INVIGIL_RATE_LIMIT_EXEMPT": "127.0.0.1",
            **(env or {}),
        }
        self.log = (work / f"{name}.log").open("ab")
        command = [INVIGIL, "serve"] + (["--workers", str(workers)] if workers > 1 else [])
        self.proc = subprocess.Popen(
            command, env=full_env, stdout=self.log, stderr=subprocess.STDOUT
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
        "face": str(FACE),
        "streams": target.streams(n, 0),
    }
    plan_path = work / f"plan-{target.name}-{n}.json"
    plan_path.write_text(json.dumps(plan))
    time.sleep(1.0)  # let the previous level's writeback settle
    proc = subprocess.Popen(
        [sys.executable, __file__, "--loadgen", str(plan_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    server = target.proc.pid if target.proc else None
    before = None
    if proc.stdout.readline().strip() == "go":
        before = CpuSample.take(server)
    try:
        out, err = proc.communicate(timeout=args.duration + 60)
    finally:
        plan_path.unlink()
    if proc.returncode != 0 or before is None:
        raise SystemExit(f"load generator failed:\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["cpu"] = CpuSample.take(server).since(before)
    result["cpu"]["loadgen"] = result.pop("loadgen_cores")
    result["n"] = n
    result["ok"] = (
        result["errors"] == 0
        and result["chunks_lost"] == 0
        and not result["deferred"]  # a 503 (backpressure) means the box is past its capacity
        and result["p99"] is not None
        and result["p99"] < P99_LIMIT_MS
        and not result["unfinished_streams"]
    )
    p99 = result["p99"]
    print(
        f"  {target.name:7s} N={n:4d}: p99 {p99:8.1f} ms  p50 {result['p50'] or 0:7.1f} ms  "
        f"requests {result['requests']:6d}  errors {result['errors']}  "
        f"503s {sum(result['deferred'].values())}  lost {result['chunks_lost']}  "
        f"{'ok' if result['ok'] else 'OVER'}",
        flush=True,
    )
    print("    cores: " + _cores(result["cpu"]), flush=True)
    if result["error_samples"]:
        print(f"    e.g. {result['error_samples'][:2]}", flush=True)
    return result


def _cores(cpu: dict[str, float]) -> str:
    """ "server 1.21, loadgen 0.35, postgres 0.20, …, machine 1.93 of 2" (cores)."""
    parts = sorted(((k, v) for k, v in cpu.items() if k != "machine"), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v:.2f}" for k, v in parts if v >= 0.01)
    return f"{shown}; machine {cpu['machine']:.2f} of {os.cpu_count()}"


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


TARGETS = {  # name: (label, workers, on S3)
    "pg1": ("`invigil serve`, PostgreSQL + Redis, 1 process, local disk", 1, False),
    "pg2": ("`invigil serve --workers 2`, PostgreSQL + Redis, local disk", 2, False),
    "s3-1": ("`invigil serve`, PostgreSQL + Redis, 1 process, local S3", 1, True),
    "s3-2": ("`invigil serve --workers 2`, PostgreSQL + Redis, local S3", 2, True),
    "pg2-apart": (
        "`invigil serve --workers 2`, PostgreSQL + Redis, local disk, analysis on other "
        "machines (`INVIGIL_EMBEDDED_WORKER=false`)",
        2,
        False,
    ),
}
# Served without the embedded worker, as docs/deploy.md has a large exam's serving boxes: the
# analysis jobs are queued as always, for `invigil worker` processes elsewhere.
ANALYSIS_APART = {"pg2-apart"}
STARTS = {
    "raw": 160,
    "sqlite": 60,
    "postgres": 60,
    "pg1": 60,
    "pg2": 100,
    "s3-1": 60,
    "s3-2": 100,
    "pg2-apart": 160,
}


def has_workers_option() -> bool:
    out = subprocess.run([INVIGIL, "serve", "--help"], capture_output=True, text=True, check=False)
    return "--workers" in out.stdout


class LocalS3:
    """scripts/s3-local (Ceph radosgw) in the work folder, started on first use."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "s3"
        self.env: dict[str, str] | None = None

    def start(self) -> dict[str, str]:
        if self.env is None:
            out = subprocess.run(
                [
                    str(REPO / "scripts" / "s3-local"),
                    "start",
                    str(self.dir),
                    str(_free_port()),
                    str(_free_port()),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
                # memstore keeps every object in memory and blocks all writes once full: a
                # target at 100 candidates stores gigabytes (each target gets a fresh cluster).
                env={**os.environ, "INVIGIL_S3_LOCAL_BYTES": str(S3_BYTES)},
            )
            if out.returncode != 0:
                raise RuntimeError(f"local S3 did not start: {out.stderr[-500:]}")
            self.env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        return self.env

    def bucket(self, name: str) -> dict[str, str]:
        from invigil.core.config import Settings
        from invigil.core.storage_s3 import S3BlobStore

        env = {**self.start(), "INVIGIL_BLOB_BACKEND": "s3", "INVIGIL_S3_BUCKET": name}
        settings = Settings(**{k.removeprefix("INVIGIL_").lower(): v for k, v in env.items()})
        S3BlobStore.from_settings(settings).ensure_bucket()
        return env

    def stop(self) -> None:
        if self.env is not None:
            subprocess.run(
                [str(REPO / "scripts" / "s3-local"), "stop", str(self.dir)],
                capture_output=True,
                check=False,
                timeout=60,
            )
        self.env = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Scratch:
    """Scratch PostgreSQL databases, dropped at the end."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self.made: list[str] = []
        self.admin: Any = None

    def new(self) -> str:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        if self.admin is None:
            self.admin = create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
        name = f"invigil_bench_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        return str(make_url(self.pg_url).set(database=name).render_as_string(False))

    def drop(self) -> None:
        from sqlalchemy import text

        if self.admin is None:
            return
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def make_target(
    name: str, work: Path, scratch: Scratch, s3: LocalS3, args: argparse.Namespace
) -> Target:
    if name == "raw":
        return RawTarget(work)
    if name == "sqlite":
        url = f"sqlite:///{work / 'bench.sqlite3'}"
        return InvigilTarget("sqlite", "invigil serve, SQLite", work, url)
    if name == "postgres":
        return InvigilTarget("postgres", "invigil serve, PostgreSQL", work, scratch.new())
    if name in TARGETS:
        label, workers, on_s3 = TARGETS[name]
        env = {"INVIGIL_REDIS_URL": args.redis_url}
        if name in ANALYSIS_APART:
            env["INVIGIL_EMBEDDED_WORKER"] = "false"
        if on_s3:
            env.update(s3.bucket(f"bench-{name}-{uuid.uuid4().hex[:6]}"))
        return InvigilTarget(name, label, work, scratch.new(), workers=workers, env=env)
    raise SystemExit(f"unknown target {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter levels, fewer steps")
    parser.add_argument("--targets", default="raw,pg1,pg2,s3-1,s3-2")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "INVIGIL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server to create a scratch database on",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
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
    starts = dict.fromkeys(STARTS, args.start) if args.start else STARTS

    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="invigil-bench-"))
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    started = time.monotonic()
    scratch, s3 = Scratch(args.pg_url), LocalS3(work)
    workers_ok = has_workers_option()
    try:
        fsyncs = fsync_rate(work)
        print(f"disk: {fsyncs:.0f} fsyncs/s (4 KiB)", flush=True)
        for name in args.targets.split(","):
            if name in TARGETS and TARGETS[name][1] > 1 and not workers_ok:
                skipped[name] = "this checkout's `invigil serve` has no `--workers`"
                print(f"{name}: skipped ({skipped[name]})", flush=True)
                continue
            try:
                target = make_target(name, work, scratch, s3, args)
            except RuntimeError as exc:
                skipped[name] = str(exc)
                print(f"{name}: skipped ({exc})", flush=True)
                continue
            print(f"{target.label}:", flush=True)
            try:
                results[name] = search(target, starts[name], args, work)
            finally:
                target.stop()
                s3.stop()  # the next S3 target starts on an empty store
    finally:
        s3.stop()
        scratch.drop()
        if args.keep:
            print(f"work folder kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"done in {elapsed / 60:.1f} min", flush=True)
    body = report(results, args, fsyncs, elapsed)
    if skipped:
        body += "\n\nNot measured: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."
    body += (
        f"\n\nLoad average of the machine (1 min) at the start {load_before:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f} (2 cores; above 2, other work shared them and the figures "
        "are pessimistic: compare with the raw handler's, measured in the same run)."
    )
    print(body)
    if not args.no_write:
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
        "1 Mbit/s, a chunk every 2 s per stream (PUT with SHA-256), a JPEG snapshot per stream "
        "every 5 s (webcam and phone: real frames of a face, analysed by each process's "
        "embedded worker as by default, the person still but moved a little every 4th "
        'snapshot, fresh sensor noise in every frame: the exam mix of "Snapshot analysis"; '
        "screen: a page picture); one keep-alive connection "
        "per stream; latency from when a request "
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
        **{name: label for name, (label, _, _) in TARGETS.items()},
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
    for name in ("sqlite", "postgres", *TARGETS):
        n = n_of(name)
        if raw and n:
            ratios.append(f"{labels[name]}: {n / raw:.2f} of the raw handler")
    two = n_of("pg2") or n_of("s3-2")
    if two is not None:
        lines += [
            "",
            f"Goal (2 processes ≥ 1.0 × the raw handler, ≥ 300 candidates at p99 < 500 ms, "
            f"nothing lost): 2 processes held {two} candidates"
            + (f", {two / raw:.2f} × the raw handler" if raw else "")
            + (" — met." if two >= 300 and (not raw or two >= raw) else " — not met."),
        ]
    if ratios:
        lines += [
            "",
            "Ratio to the raw handler measured in the same run: " + "; ".join(ratios) + ".",
        ]
    lines += [
        "",
        "Where the machine's CPU went at the largest N that held, in cores (from /proc: "
        "server = the processes answering requests, analysis = their face-analysis children, "
        "loadgen = the load generator, other = everything else on the machine):",
        "",
    ]
    for name, r in results.items():
        if r["good"] and r["good"].get("cpu"):
            lines.append(f"- {labels[name]}, N={r['good']['n']}: {_cores(r['good']['cpu'])}")
    lines += ["", WHAT_LIMITS]
    lines += ["", "Every level run (N: p99 all / errors / requests deferred with 503):", ""]
    for name, r in results.items():
        steps = ", ".join(
            f"{lv['n']}: {'∞' if lv['p99'] == float('inf') else round(lv['p99'] or 0)} ms"
            + (f" / {lv['errors']} err" if lv["errors"] else "")
            + (f" / {sum(lv['deferred'].values())}× 503" if lv["deferred"] else "")
            for lv in r["levels"]
        )
        lines.append(f"- {labels[name]}: {steps}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
