"""Cost of snapshot analysis, before and after the fast-detector pipeline, in one run; how many
candidates a 2-core machine keeps up with in real time.

1. Frame work (CPU time of the whole process, one frame at a time) over simulated streams of a
   desk webcam and a phone, steady (the candidate sits still: sensor noise only) and with
   movement (the candidate sways a few pixels every frame), in two versions measured in the
   same run so their ratio holds on a shared machine:
   - *before*: what the analysis did until now, re-created here from dlib: every frame decoded
     in full, HOG detection (an upsampled second pass when nothing counted) and, on the desk
     webcam with one face, the ResNet embedding;
   - *after*: ``analysis.frames.analyse_frame`` (thumbnail skip, half-size libfacedetection,
     embedding on the first frame, a count change, a jump or every N frames).
2. The whole ``snapshot.analyse`` job path (read, analyse, store, rules, job bookkeeping) on a
   scratch SQLite database with the *after* pipeline: N candidates' desk + phone snapshots
   queued, drained by 1 and by 2 ``invigil worker``-style processes.

Each candidate sends a desk and a phone snapshot every 5 s (0.4 analysed snapshots a second).

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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from report import write_section  # noqa: E402

from invigil.identity import faces  # noqa: E402

DATA = BENCH.parent / "tests" / "data" / "faces"
EVERY_S = 5.0
EMBED_EVERY = 6
MOVE_EVERY = 4  # FLAG_DEFAULTS face_mismatch.embed_every
PER_CANDIDATE = 2 / EVERY_S  # analysed snapshots a second: desk webcam + phone


_rng = np.random.default_rng(9)


def _scene(name: str, size: tuple[int, int] = (640, 480)) -> Image.Image:
    with Image.open(DATA / name) as src:
        img = src.convert("RGB")
    img.thumbnail((size[0] * 0.8, size[1] * 0.95))
    frame = Image.new("RGB", size, (170, 160, 145))
    frame.paste(img, ((size[0] - img.width) // 2, (size[1] - img.height) // 2))
    return frame


def _shot(scene: Image.Image, shift: int = 0, quality: int = 80) -> bytes:
    """One camera frame of the scene: moved ``shift`` px sideways, fresh sensor noise."""
    pixels = np.asarray(scene, dtype=np.float64)
    if shift:
        pixels = np.roll(pixels, shift, axis=1)
    noisy = np.clip(pixels + _rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def streams(length: int) -> dict[str, list[bytes]]:
    desk, phone = _scene("obama2.jpg"), _scene("obama3.jpg")
    sway = [0, 4, 8, 4] * length
    return {
        "desk, steady": [_shot(desk) for _ in range(length)],
        "desk, movement": [_shot(desk, sway[i]) for i in range(length)],
        "phone, steady": [_shot(phone) for _ in range(length)],
        "phone, movement": [_shot(phone, sway[i]) for i in range(length)],
    }


def _before(models: _Hog, data: bytes, *, embed: bool, enrolled: faces.Embedding) -> object:
    """The analysis as it was: full decode, HOG (upsampled when nothing counted), embedding."""
    pixels = faces.decode(data)
    sample = pixels[::4, ::4].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if float(sample.std()) < 2.0:
        return None
    for upsample in (0, 1):
        rects, scores, _ = models.detector.run(pixels, upsample, 0.0)
        counted = [r for r, s in zip(rects, scores, strict=True) if s >= 0.3]
        if counted:
            break
    if embed and len(counted) == 1:
        shape = models.predictor(pixels, counted[0])
        emb = np.array(models.encoder.compute_face_descriptor(pixels, shape))
        return faces.face_distance(emb, enrolled)
    return len(counted)


class _Hog:
    def __init__(self) -> None:
        import dlib

        base = faces._model_dir()
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(base / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(base / "dlib_face_recognition_resnet_model_v1.dat")
        )


def _after_stream(frames: list[bytes], *, embed: bool, enrolled: faces.Embedding) -> list[str]:
    from invigil.analysis.frames import Previous, analyse_frame

    previous: Previous | None = None
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    methods = []
    for i, data in enumerate(frames):
        at = t0 + timedelta(seconds=EVERY_S * i)
        facts = analyse_frame(
            data,
            taken_at=at,
            previous=previous,
            embed=embed,
            enrolled=enrolled,
            embed_every=EMBED_EVERY,
            dark_below=30,
            flat_below=5,
        )
        methods.append(facts.method)
        if facts.method != "unchanged":
            previous = Previous(at, facts)
    return methods


def frame_costs(length: int, repeat: int) -> list[dict[str, object]]:
    """Per stream: CPU ms a frame before and after (median over ``repeat`` passes)."""
    faces.warm_up()
    enrolled = faces.embed_single_face((DATA / "obama.jpg").read_bytes())
    hog = _Hog()
    out = []
    for label, frames in streams(length).items():
        embed = label.startswith("desk")
        before, after = [], []
        methods: list[str] = []
        for _ in range(repeat):
            t = time.process_time()
            for data in frames:
                _before(hog, data, embed=embed, enrolled=enrolled)
            before.append((time.process_time() - t) * 1000 / len(frames))
            t = time.process_time()
            methods = _after_stream(frames, embed=embed, enrolled=enrolled)
            after.append((time.process_time() - t) * 1000 / len(frames))
        out.append(
            {
                "label": label,
                "before": statistics.median(before),
                "after": statistics.median(after),
                "methods": {m: methods.count(m) for m in dict.fromkeys(methods)},
            }
        )
    return out


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
    # An exam: the candidate at the desk, one person in the phone's view, both mostly still;
    # every MOVE_EVERY-th round the candidate has moved (and the next round moves back).
    scenes = {"webcam": _scene("obama2.jpg"), "evidence": _scene("obama3.jpg")}
    pools = {
        (kind, shift): [_shot(scene, shift) for _ in range(4)]
        for kind, scene in scenes.items()
        for shift in (0, 6)
    }
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
                for kind in ("webcam", "evidence"):
                    sid = new_id()
                    key = keys.snapshot_key(attempt.id, kind, sid)
                    shift = 6 if (r + i) % MOVE_EVERY == MOVE_EVERY - 1 else 0
                    data = pools[(kind, shift)][(i + r) % 4]
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
    parser.add_argument("--rounds", type=int, default=12, help="desk + phone snapshots each")
    parser.add_argument("--length", type=int, default=24, help="frames per simulated stream")
    parser.add_argument("--repeat", type=int, default=3, help="passes over each stream")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.candidates, args.rounds, args.length, args.repeat = 5, 4, 12, 1

    import dlib

    load_start = os.getloadavg()[0]
    costs = frame_costs(args.length, args.repeat)
    one = job_throughput(1, args.candidates, args.rounds)
    two = job_throughput(2, args.candidates, args.rounds)
    load_end = os.getloadavg()[0]

    def per_box(ms: float) -> float:
        return 2 * (1000 / ms) / PER_CANDIDATE

    by = {str(c["label"]): c for c in costs}

    def mean(key: str, kind: str) -> float:
        return statistics.mean(float(by[f"{d}, {kind}"][key]) for d in ("desk", "phone"))  # type: ignore[arg-type]

    lines = [
        f"`python bench/analysis.py --candidates {args.candidates} --rounds {args.rounds} "
        f"--length {args.length} --repeat {args.repeat}`; dlib {dlib.__version__} from "
        f"`dlib-bin` (the ResNet without OpenBLAS), libfacedetection from `yuface`, "
        f"`face_mismatch.embed_every` {EMBED_EVERY}. Load average (1 min) at the start "
        f"{load_start:.1f}, at the end {load_end:.1f} (`nproc` = {os.cpu_count()}): the machine "
        "was shared with other work, so every cost is **CPU time of the process** (what the "
        "cores spend, OpenMP threads included), and *before* and *after* were measured in the "
        "same run, alternating, so their ratio holds.",
        "",
        f"**Frame work** (CPU ms a snapshot, median of {args.repeat} passes over a stream of "
        f"{args.length} snapshots 5 s apart; 640×480 JPEG with sensor noise). *Steady*: the "
        "candidate sits still. *Movement*: the candidate sways 4–8 px every snapshot, so every "
        "frame is detected.",
        "",
        "| stream | before (HOG + embedding every frame) | after | × faster | after: what ran |",
        "|---|---|---|---|---|",
        *[
            f"| {c['label']} | {float(c['before']):.1f} | {float(c['after']):.1f} | "  # type: ignore[arg-type]
            f"{float(c['before']) / float(c['after']):.1f} | "  # type: ignore[arg-type]
            + ", ".join(f"{k} {v}" for k, v in c["methods"].items())  # type: ignore[attr-defined]
            + " |"
            for c in costs
        ],
        f"| **desk + phone, steady** | {mean('before', 'steady'):.1f} | "
        f"**{mean('after', 'steady'):.1f}** | {mean('before', 'steady') / mean('after', 'steady'):.1f} | |",
        f"| **desk + phone, movement** | {mean('before', 'movement'):.1f} | "
        f"**{mean('after', 'movement'):.1f}** | "
        f"{mean('before', 'movement') / mean('after', 'movement'):.1f} | |",
        "",
        "Candidates a 2-core box keeps up with from the frame work alone (a desk and a phone "
        "snapshot every 5 s = 0.4 a second; 2 cores): before "
        f"{per_box(mean('before', 'steady')):.0f}; after **{per_box(mean('after', 'steady')):.0f} "
        f"steady**, **{per_box(mean('after', 'movement')):.0f} if every snapshot moved**.",
        "",
        "**Whole job path, after** (read the snapshot and the stream's previous detected row, "
        "analyse, store the row, run the rules, complete the job; scratch SQLite database): "
        f"{args.candidates} candidates × {args.rounds} rounds of a desk and a phone snapshot, "
        f"the candidate still except every {MOVE_EVERY}th round (moved, then back), drained by "
        "1 and by 2 worker processes (`invigil worker` runs the same loop).",
        "",
        "| workers | snapshots | CPU ms a snapshot (worker processes) | snapshots/s per core (CPU) | "
        "candidates per 2-core box (CPU) | wall s (under the load above) | snapshots/s (wall) |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {w} | {r['snapshots']:.0f} | {r['cpu_ms']:.1f} | {1000 / r['cpu_ms']:.0f} | "
            f"{per_box(r['cpu_ms']):.0f} | {r['wall']:.1f} | {r['rate']:.1f} |"
            for w, r in ((1, one), (2, two))
        ],
        "",
        "The job path costs more than the frame work: the job queue, two short transactions, the "
        "row with its thumbnail and the rules' window query are now most of a snapshot's cost. "
        "Before this change the same table measured 111 ms a snapshot (45 candidates per box, "
        "run of 2026-11-26, HOG + embedding every desk frame). In production the same cores "
        "also take the uploads (about 40 % of a core for 100 candidates, proctor console "
        "benchmark above), and the server's embedded worker is one thread: beyond one core's "
        "worth add `invigil worker` processes. They share no memory: a stream's state is its "
        "previous row in the database. **Under load** (the delay from a snapshot to its flag "
        "with 500 simulated candidates) was not measured in this run: at 500 candidates (200 "
        "snapshots a second) a job path of 26 ms needs about 5 cores, so on 2 cores the queue "
        "would grow by over 100 snapshots a second and the delay without bound; it is worth "
        "measuring once the job path is near 10 ms.",
    ]
    body = "\n".join(lines)
    reading = (
        "**Reading it.** The goal of the issue (≥ 500 candidates per 2-core box, ≤ 10 ms a "
        "snapshot on average) is met by the frame work when candidates sit still, not when "
        "every snapshot moves, and not yet by the whole job path: see the tables. "
    )
    body = body.replace(
        "The job path costs more than the frame work",
        reading + "The job path costs more than the frame work",
    )
    if args.no_write:
        print(body)
    else:
        write_section("Snapshot analysis", body)
        print("wrote the 'Snapshot analysis' section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
