"""Throughput of snapshot analysis: snapshots analysed per second per core, and how many
candidates a 2-core machine keeps up with in real time.

Three measurements in one run:

1. baseline: dlib's HOG detector alone (upsample 0) on a 640x480 frame, one core;
2. the frame work alone (``analysis.frames.analyse_frame``) per stream and per kind of frame;
3. the whole ``snapshot.analyse`` job path (read, decode, detect, embed, store, rules, events,
   job bookkeeping) on a scratch SQLite database: N desk + N phone snapshots queued, then drained
   by 1 and by 2 ``invigil worker``-style processes.

Each candidate sends a desk and a phone snapshot every 5 s (0.4 analysed snapshots a second);
the screen snapshot is not analysed.

    python bench/analysis.py              # writes the "Snapshot analysis" section of docs/benchmarks.md
    python bench/analysis.py --quick --no-write
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from report import write_section  # noqa: E402

from invigil.identity import faces  # noqa: E402

DATA = BENCH.parent / "tests" / "data" / "faces"
EVERY_S = 5.0
PER_CANDIDATE = 2 / EVERY_S  # analysed snapshots a second: desk webcam + phone


def _frame(name: str, size: tuple[int, int] = (640, 480), quality: int = 80) -> bytes:
    """A photo fitted into a 640x480 frame, as a webcam or phone snapshot would be."""
    with Image.open(DATA / name) as src:
        img = src.convert("RGB")
    img.thumbnail(size)
    frame = Image.new("RGB", size, (170, 160, 145))
    frame.paste(img, ((size[0] - img.width) // 2, (size[1] - img.height) // 2))
    buf = io.BytesIO()
    frame.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _black() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (2, 2, 2)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    """CPU time of this thread: what a core spends, whatever else shares the machine."""
    call()
    times = []
    for _ in range(repeat):
        t = time.thread_time()
        call()
        times.append((time.thread_time() - t) * 1000)
    return statistics.median(times)


def frame_costs(repeat: int) -> tuple[float, list[tuple[str, float]]]:
    from invigil.analysis.frames import analyse_frame

    faces.warm_up()
    enrolled = faces.embed_single_face((DATA / "obama.jpg").read_bytes())
    own = _frame("obama2.jpg")
    pixels = faces.decode(own)
    models = faces._load_locked()
    baseline = _median_ms(lambda: models.detector.run(pixels, 0, 0.0), repeat)

    def desk(data: bytes) -> Callable[[], object]:
        return lambda: analyse_frame(
            data, embed=True, enrolled=enrolled, dark_below=30, flat_below=5
        )

    def phone(data: bytes) -> Callable[[], object]:
        return lambda: analyse_frame(data, embed=False, enrolled=None, dark_below=30, flat_below=5)

    rows = [
        ("desk: the candidate alone (detect + embed)", desk(own)),
        ("desk: another person (detect + embed)", desk(_frame("biden.jpg"))),
        ("desk: nobody (both detection passes)", desk(_frame("empty.jpg"))),
        ("desk: group photo (detect only)", desk(_frame("group_t1.jpg", (800, 600)))),
        ("desk: covered lens (light only)", desk(_black())),
        ("phone: one person (detect only)", phone(own)),
        ("phone: nobody (both detection passes)", phone(_frame("empty.jpg"))),
    ]
    return baseline, [(label, _median_ms(call, repeat)) for label, call in rows]


# --- the whole job path --------------------------------------------------------------------------


def setup(url: str, data_dir: Path, candidates: int, rounds: int) -> int:
    """Candidates with enrolled faces, and `rounds` desk + phone snapshots each, queued."""
    from data import load_test_exam

    from invigil.attempts.models import Attempt
    from invigil.core import jobs
    from invigil.core.db import Database, new_id, transaction
    from invigil.core.migrate import upgrade
    from invigil.core.storage import LocalBlobStore
    from invigil.exams.models import Candidate, Room
    from invigil.recordings import keys
    from invigil.recordings.models import Snapshot

    upgrade(url)
    db = Database(url)
    blobs = LocalBlobStore(data_dir / "blobs")
    now = datetime.now(UTC)
    enrolled = faces.embedding_to_bytes(faces.embed_single_face((DATA / "obama.jpg").read_bytes()))
    # The steady state of an exam: the candidate at the desk, one person in the phone's view.
    desk_frames = [_frame(n, quality=q) for n in ("obama2.jpg", "obama3.jpg") for q in (60, 85)]
    phone_frames = [_frame("obama2.jpg", quality=70), _frame("obama3.jpg", quality=70)]
    count = 0
    with transaction(db) as session:
        exam = load_test_exam(session, now, title="analysis bench", starts_at=now)
        room = Room(exam_id=exam.id, code="R01", name="R01")
        session.add(room)
        session.flush()
        for i in range(candidates):
            cand = Candidate(
                exam_id=exam.id,
                room_id=room.id,
                ticket=f"{i:05d}",
                name=f"考生{i}",
                face_embedding=enrolled,
            )
            session.add(cand)
            session.flush()
            attempt = Attempt(exam_id=exam.id, candidate_id=cand.id, room_id=room.id)
            session.add(attempt)
            session.flush()
            for r in range(rounds):
                at = now + timedelta(seconds=EVERY_S * r)
                for kind, pool in (("webcam", desk_frames), ("evidence", phone_frames)):
                    sid = new_id()
                    key = keys.snapshot_key(attempt.id, kind, sid)
                    data = pool[(i + r) % len(pool)]
                    blobs.put(key, data)
                    session.add(
                        Snapshot(
                            id=sid,
                            attempt_id=attempt.id,
                            kind=kind,
                            taken_at=at,
                            blob_key=key,
                            size=len(data),
                            sha256="0" * 64,
                        )
                    )
                    jobs.enqueue(session, "snapshot.analyse", {"snapshot_id": sid}, now=at)
                    count += 1
    db.dispose()
    return count


def _drain(url: str, data_dir: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import invigil.app  # noqa: F401  (registers every job handler, as `invigil worker` does)
    from invigil.core.clock import SystemClock
    from invigil.core.config import Settings
    from invigil.core.db import Database
    from invigil.core.jobs import JobContext, run_one

    faces.warm_up()
    settings = Settings(data_dir=Path(data_dir), database_url=url, secret_key="x" * 32)
    db = Database(url)
    clock = SystemClock()
    # Jobs were queued up to `rounds` x 5 s ahead: let them all be due now.
    ctx = JobContext(db=db, clock=_Ahead(clock), settings=settings)
    n = 0
    cpu, started = time.process_time(), time.time()
    while run_one(ctx):
        n += 1
    out.put((n, time.process_time() - cpu, started, time.time()))
    db.dispose()


class _Ahead:
    """A clock an hour ahead, so every queued job is due."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(hours=1)


def job_throughput(workers: int, candidates: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="invigil-analysis-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        total = setup(url, Path(tmp), candidates, rounds)
        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        procs = [ctx.Process(target=_drain, args=(url, tmp, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        # From the first worker taking jobs (after its imports and model load) to the last
        # finding none.
        wall = max(r[3] for r in results) - min(r[2] for r in results)
        done = sum(r[0] for r in results)
        cpu = sum(r[1] for r in results)
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            analysed = conn.execute(text("select count(*) from snapshot_analyses")).scalar_one()
            events = conn.execute(text("select count(*) from events")).scalar_one()
        engine.dispose()
        assert done == total == analysed, (done, total, analysed)
        return {
            "snapshots": total,
            "wall": wall,
            "rate": total / wall,
            "cpu_ms": 1000 * cpu / total,
            "events": events,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10, help="desk + phone snapshots each")
    parser.add_argument("--repeat", type=int, default=15, help="timing repetitions per frame")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.candidates, args.rounds, args.repeat = 5, 4, 5

    load_start = os.getloadavg()[0]
    baseline_ms, costs = frame_costs(args.repeat)
    one = job_throughput(1, args.candidates, args.rounds)
    two = job_throughput(2, args.candidates, args.rounds)
    load_end = os.getloadavg()[0]

    per_core = 1000 / one["cpu_ms"]  # snapshots a CPU-second: one busy core
    desk_ms = dict(costs)["desk: the candidate alone (detect + embed)"]
    phone_ms = dict(costs)["phone: one person (detect only)"]
    keep_up_2 = 2 * per_core / PER_CANDIDATE
    lines = [
        f"`python bench/analysis.py --candidates {args.candidates} --rounds {args.rounds}`. "
        f"Load average (1 min) at the start {load_start:.1f}, at the end {load_end:.1f} "
        f"(`nproc` = {os.cpu_count()}). Other work shared the machine, so every cost below is "
        "**CPU time** (what one core spends), and wall-clock rates are shown only for what "
        "they were under that load.",
        "",
        f"**Frame work alone** (`analysis.frames.analyse_frame`, median CPU time of "
        f"{args.repeat}, one core, 640×480 JPEG), with the baseline measured in the same run:",
        "",
        "| frame | CPU ms | × baseline | per second per core |",
        "|---|---|---|---|",
        f"| **baseline: dlib HOG detection alone, upsample 0** | {baseline_ms:.0f} | 1.0 | "
        f"{1000 / baseline_ms:.0f} |",
        *[
            f"| {label} | {ms:.0f} | {ms / baseline_ms:.1f} | {1000 / max(ms, 0.1):.0f} |"
            for label, ms in costs
        ],
        "",
        "**Whole job path** (read the snapshot, analyse, store the row, run the rules, complete "
        f"the job; scratch SQLite database): {args.candidates} candidates × {args.rounds} "
        "rounds of a desk and a phone snapshot in the steady state of an exam (the candidate "
        "alone at the desk, one person in the phone's view), drained by 1 and by 2 worker "
        "processes (`invigil worker` runs the same loop).",
        "",
        "| workers | snapshots | CPU ms a snapshot | snapshots/s per core (CPU) | wall s (under the load above) | snapshots/s (wall) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {w} | {r['snapshots']:.0f} | {r['cpu_ms']:.0f} | {1000 / r['cpu_ms']:.1f} | "
            f"{r['wall']:.1f} | {r['rate']:.1f} |"
            for w, r in ((1, one), (2, two))
        ],
        "",
        f"**Per core:** about **{1000 / desk_ms:.0f} desk webcam snapshots** or "
        f"**{1000 / phone_ms:.0f} phone snapshots** a second for the frame work, "
        f"**{per_core:.1f} snapshots a second** (desk and phone mixed) for the whole job. "
        f"**A 2-core machine** doing nothing else keeps up with about **{keep_up_2:.0f} "
        "candidates** in real time (a desk and a phone snapshot every 5 s each = 0.4 a second; "
        f"2 × {per_core:.1f} / 0.4). In production the same cores also take the uploads (the "
        "proctor console benchmark above measured ingest at roughly 40 % of a core for 100 "
        "candidates) and the embedded worker is one thread, i.e. at most one core: about "
        f"{per_core / PER_CANDIDATE:.0f} candidates per server process; beyond that add "
        "`invigil worker` processes (or machines). A backlog is not lost (jobs are durable), "
        "it delays the alerts.",
        "",
        "Why processes and not threads: `identity.faces` serializes detection and embedding "
        "behind one lock (dlib's detector and network are not thread-safe, and the embedding "
        "holds the GIL). A worker is one thread and never waits on it, so the lock does not "
        "limit a worker; it means more threads in one process add nothing, and in the server "
        "process a face login can wait for one analysis (about 0.1 s of CPU) in progress in "
        "the embedded worker. The job holds no database lock during the face work (it reads "
        "what it needs in a short transaction of its own first), so workers on SQLite run in "
        "parallel; their wall-clock speed-up here is bounded by the other load on the machine.",
    ]
    body = "\n".join(lines)
    if args.no_write:
        print(body)
    else:
        write_section("Snapshot analysis", body)
        print("wrote the 'Snapshot analysis' section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
