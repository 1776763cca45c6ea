"""CPU per upload: how many microseconds of server CPU one chunk PUT and one snapshot POST
cost in `invigil serve` (one process), and where they go.

For each database (SQLite, PostgreSQL) a fresh `invigil serve` runs with the embedded worker
off (the request path alone: the analysis of snapshots is measured in docs/benchmarks.md,
"Snapshot analysis"). A load generator in this process keeps ``--connections`` keep-alive
connections busy back to back with one kind of request for ``--seconds``; the server's CPU
time (user + system, every thread, from /proc) over the phase divided by the requests
answered is the CPU per request. Then, with ``--hotspots``, py-spy samples the server during a
second phase of each kind and the functions with the most samples are listed (self time:
the frame that was running; total: the frame anywhere on the stack).

    python bench/profile_upload.py                 # SQLite and PostgreSQL, both kinds
    python bench/profile_upload.py --db sqlite --seconds 10 --hotspots
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from ingest import FACE, InvigilTarget, Scratch  # noqa: E402

from invigil.rehearsal.http import Connection, multipart  # noqa: E402
from invigil.rehearsal.media import Payloads  # noqa: E402

PY_SPY = str(Path(sys.executable).parent / "py-spy")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


async def _drive(
    port: int, kind: str, streams: list[dict[str, Any]], seconds: float, seq0: int
) -> tuple[int, int]:
    """Back-to-back requests of one kind on each connection; (answered 2xx, other)."""
    payloads = Payloads.make(FACE)
    chunk = payloads.chunks["webcam"]
    digest = hashlib.sha256(chunk).hexdigest()
    snap, ctype = multipart(
        {"kind": "webcam"}, {"image": ("webcam.jpg", payloads.snapshots["webcam"][0], "image/jpeg")}
    )
    ok = bad = 0
    end = time.monotonic() + seconds

    async def one(stream: dict[str, Any]) -> None:
        nonlocal ok, bad
        conn = Connection(f"http://127.0.0.1:{port}")
        auth = {"Authorization": f"Bearer {stream['token']}"}
        seq = seq0
        try:
            while time.monotonic() < end:
                if kind == "chunk":
                    r = await conn.request(
                        "PUT",
                        f"/api/v1/recordings/{stream['recording_id']}/chunks/{seq}",
                        chunk,
                        {**auth, "X-Chunk-SHA256": digest},
                    )
                    seq += 1
                else:
                    r = await conn.request(
                        "POST", "/api/v1/snapshots", snap, {**auth, "Content-Type": ctype}
                    )
                if 200 <= r.status < 300:
                    ok += 1
                else:
                    bad += 1
                    if bad < 3:
                        print(f"    {kind} {r.status} {r.body[:120]!r}", flush=True)
        finally:
            conn.close()

    await asyncio.gather(*(one(s) for s in streams))
    return ok, bad


def phase(
    target: InvigilTarget, kind: str, streams: list[dict[str, Any]], seconds: float, seq0: int
) -> dict[str, Any]:
    assert target.proc is not None
    pid = target.proc.pid
    (u0, s0), t0 = cpu_seconds(pid), time.monotonic()
    ok, bad = asyncio.run(_drive(target.port, kind, streams, seconds, seq0))
    time.sleep(0.3)  # the last commits
    (u1, s1), wall = cpu_seconds(pid), time.monotonic() - t0
    user, system = u1 - u0, s1 - s0
    return {
        "kind": kind,
        "requests": ok,
        "refused": bad,
        "per_s": ok / wall,
        "cpu_us": (user + system) / ok * 1e6 if ok else None,
        "user_us": user / ok * 1e6 if ok else None,
        "system_us": system / ok * 1e6 if ok else None,
        "cpu_share": (user + system) / wall,
    }


def hotspots(
    target: InvigilTarget,
    kind: str,
    streams: list[dict[str, Any]],
    seconds: float,
    seq0: int,
    out: Path,
) -> dict[str, list[tuple[str, float]]]:
    assert target.proc is not None
    raw = out / f"{target.name}-{kind}.txt"
    spy = subprocess.Popen(
        [
            PY_SPY,
            "record",
            "--pid",
            str(target.proc.pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--gil",  # only the thread holding the GIL: where Python spends CPU
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    asyncio.run(_drive(target.port, kind, streams, seconds - 1.5, seq0))
    _, err = spy.communicate(timeout=60)
    if not raw.exists():
        print(f"    py-spy failed: {err.decode()[-300:]}", flush=True)
        return {"self": [], "total": []}
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = []
        ours = set()
        for f in stack.split(";"):
            name, _, where = f.partition(" (")
            path = where.split(":")[0]
            frame = f"{name} ({path.rsplit('/', 1)[-1]})"
            frames.append(frame)
            if path.startswith(("invigil/", "starlette/", "fastapi/", "uvicorn/")):
                ours.add(frame)
        samples += count
        own[frames[-1]] += count
        for f in ours:
            total[f] += count
    pct = lambda c: [(f, 100 * n / samples) for f, n in c.most_common(15)]  # noqa: E731
    return {"self": pct(own), "total": pct(total)}


def profile(
    target: InvigilTarget, args: argparse.Namespace, work: Path, figures: dict[str, Any]
) -> None:
    streams = [s for s in target.streams(args.connections, 0) if s["kind"] == "webcam"]
    print(f"{target.label} (pid {target.proc and target.proc.pid}):", flush=True)
    seq = 0
    for kind in ("chunk", "snapshot"):
        # A short warm-up (imports, caches, connections), then the measured phase.
        phase(target, kind, streams, 2.0, seq)
        seq += 10_000
        r = phase(target, kind, streams, args.seconds, seq)
        seq += 10_000
        figures[f"{target.name} {kind}"] = r
        print(
            f"  {kind:8s} {r['requests']:6d} answered ({r['refused']} refused), "
            f"{r['per_s']:6.0f}/s, server CPU {r['cpu_share'] * 100:4.0f} % of a core, "
            f"{r['cpu_us']:.0f} µs CPU per request "
            f"(user {r['user_us']:.0f}, system {r['system_us']:.0f})",
            flush=True,
        )
        if args.hotspots:
            spots = hotspots(target, kind, streams, args.seconds, seq, work)
            seq += 10_000
            figures[f"{target.name} {kind} hotspots"] = spots
            for what in ("self", "total"):
                print(f"    top {what}:", flush=True)
                for frame, p in spots[what]:
                    print(f"      {p:5.1f} %  {frame}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--hotspots", action="store_true", help="also sample with py-spy")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="each database twice: through the router, then the fast upload routes",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "INVIGIL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="invigil-profile-"))
    scratch = Scratch(args.pg_url)
    figures: dict[str, Any] = {}
    variants = {"router": "false", "fast": "true"} if args.compare else {"fast": "true"}
    try:
        for db in args.db.split(","):
            for variant, fast in variants.items():
                url = (
                    f"sqlite:///{work / f'{variant}.sqlite3'}" if db == "sqlite" else scratch.new()
                )
                env = {
                    "INVIGIL_EMBEDDED_WORKER": "false",  # the request path alone
                    "INVIGIL_BACKPRESSURE": "false",  # back to back is overload by design
                    "INVIGIL_FAST_UPLOAD_ROUTES": fast,
                }
                target = InvigilTarget(
                    f"{db}-{variant}", f"invigil serve, {db}, {variant}", work, url, env=env
                )
                try:
                    profile(target, args, work, figures)
                finally:
                    target.stop()
    finally:
        scratch.drop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
