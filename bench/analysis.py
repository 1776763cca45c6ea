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
2. The whole ``snapshot.analyse`` job path (claim, read, analyse, store, rules, completion) on
   a scratch SQLite database: N candidates' snapshots queued, drained by a worker process
   running the source of this tree (*after*) and of a baseline commit (*before*, checked out
   with ``git archive``), alternating, median of the repeats; per stream (desk, phone) steady
   and with movement, and the mix of an exam (still, moved every 4th round).
3. Under load: ``invigil serve`` (its embedded worker) plus ``invigil worker`` processes on a
   scratch database, fed snapshots at the real-day rate (a desk and a phone snapshot every 5 s
   per candidate) with real face frames, some candidates an impostor or gone from the camera;
   the delay from a snapshot being stored to its analysis and to its flag.

Each candidate sends a desk and a phone snapshot every 5 s (0.4 analysed snapshots a second).

    python bench/analysis.py              # writes the "Snapshot analysis" section of docs/benchmarks.md
    python bench/analysis.py --quick --no-write
    python bench/analysis.py --load-only --load-candidates 500   # only the "Under load" part
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from report import BENCHMARKS_MD, source_at, write_section  # noqa: E402

from invigil.identity import faces  # noqa: E402

DATA = BENCH.parent / "tests" / "data" / "faces"
TESTS = str(BENCH.parent / "tests")
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


def _camera_jpeg(pixels: np.ndarray, quality: int = 80) -> bytes:
    """The pixels as a camera sends them: fresh sensor noise, JPEG."""
    noisy = np.clip(pixels.astype(np.float64) + _rng.normal(0, 3, pixels.shape), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _shot(scene: Image.Image, shift: int = 0, quality: int = 80) -> bytes:
    """One camera frame of the scene: moved ``shift`` px sideways, fresh sensor noise."""
    pixels = np.asarray(scene)
    return _camera_jpeg(np.roll(pixels, shift, axis=1) if shift else pixels, quality)


# Where each camera sees its person in front of the still room (left edge, height in px): the
# desk webcam close up, the phone from further away.
IN_ROOM = {"obama2.jpg": (240, 300), "obama3.jpg": (380, 200), "biden.jpg": (220, 460)}


def _room_shot(name: str, shift: int = 0, quality: int = 80) -> bytes:
    """One camera frame of the photo's person in front of a still room (tests/data/faces/
    empty.jpg), moved ``shift`` px sideways: the person moves, the room does not, as in front
    of a laptop's camera or a phone on a stand. ``empty.jpg``: the room alone."""
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)
    from identity import synth  # only here: a *before* drain imports this file over old code

    if name == "empty.jpg":
        return _camera_jpeg(np.asarray(Image.open(DATA / name).convert("RGB")), quality)
    x, height = IN_ROOM[name]
    return _camera_jpeg(synth.person_in_room(synth.load(name), x + shift, height), quality)


def streams(length: int) -> dict[str, list[bytes]]:
    desk, phone = _scene("obama2.jpg"), _scene("obama3.jpg")
    sway = [0, 4, 8, 4] * length
    return {
        "desk, steady": [_shot(desk) for _ in range(length)],
        "desk, movement": [_shot(desk, sway[i]) for i in range(length)],
        "desk, movement in a still room": [
            _room_shot("obama2.jpg", sway[i]) for i in range(length)
        ],
        "phone, steady": [_shot(phone) for _ in range(length)],
        "phone, movement": [_shot(phone, sway[i]) for i in range(length)],
        "phone, movement in a still room": [
            _room_shot("obama3.jpg", sway[i]) for i in range(length)
        ],
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

ROOT = BENCH.parent
# The source measured as *before*: the tree before the job path was batched and its reads cut.
BASELINE = "48bb1dd"
DLIB_BIN = "after, dlib-bin"
# Scenarios of the job path: which streams, and which rounds show the candidate moved.
SCENARIOS: dict[str, tuple[tuple[str, ...], str]] = {
    "desk, steady": (("webcam",), "still"),
    "desk, movement": (("webcam",), "moving"),
    "phone, steady": (("evidence",), "still"),
    "phone, movement": (("evidence",), "moving"),
    "desk + phone, exam mix": (("webcam", "evidence"), "mix"),
    "desk + phone, exam mix in a still room": (("webcam", "evidence"), "mix"),
}


def _moved(pattern: str, r: int, i: int) -> int:
    """The candidate's sideways shift in round ``r`` (pixels)."""
    if pattern == "still":
        return 0
    if pattern == "moving":
        return (0, 4, 8, 4)[r % 4]
    return 6 if (r + i) % MOVE_EVERY == MOVE_EVERY - 1 else 0


def _exam(session: object, candidates: int, now: datetime) -> list[str]:
    """An exam with ``candidates`` enrolled (obama.jpg's face) and their attempts' ids."""
    from data import load_test_exam

    from invigil.attempts.models import Attempt
    from invigil.exams.models import Candidate, Room

    enrolled = faces.embedding_to_bytes(faces.embed_single_face((DATA / "obama.jpg").read_bytes()))
    exam = load_test_exam(session, now, title="analysis bench", starts_at=now)  # type: ignore[arg-type]
    room = Room(exam_id=exam.id, code="R01", name="R01")
    session.add(room)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    attempts = []
    for i in range(candidates):
        cand = Candidate(
            exam_id=exam.id,
            room_id=room.id,
            ticket=f"{i:05d}",
            name=f"考生{i}",
            face_embedding=enrolled,
        )
        session.add(cand)  # type: ignore[attr-defined]
        session.flush()  # type: ignore[attr-defined]
        attempt = Attempt(exam_id=exam.id, candidate_id=cand.id, room_id=room.id)
        session.add(attempt)  # type: ignore[attr-defined]
        session.flush()  # type: ignore[attr-defined]
        attempts.append(attempt.id)
    return attempts


def _add_snapshot(
    session: object, blobs: object, attempt_id: str, kind: str, at: datetime, data: bytes
) -> str:
    """A snapshot stored as the ingest stores it: blob, row and its analysis job."""
    from invigil.core import jobs
    from invigil.core.db import new_id
    from invigil.recordings import keys
    from invigil.recordings.models import Snapshot

    sid = new_id()
    key = keys.snapshot_key(attempt_id, kind, sid)
    blobs.put(key, data)  # type: ignore[attr-defined]
    session.add(  # type: ignore[attr-defined]
        Snapshot(
            id=sid,
            attempt_id=attempt_id,
            kind=kind,
            taken_at=at,
            blob_key=key,
            size=len(data),
            sha256="0" * 64,
        )
    )
    jobs.enqueue(session, "snapshot.analyse", {"snapshot_id": sid}, now=at)  # type: ignore[arg-type]
    return sid


def setup(
    url: str, data_dir: Path, candidates: int, rounds: int, scenario: str = "desk + phone, exam mix"
) -> int:
    """Candidates with enrolled faces, and `rounds` snapshots of the scenario's streams each,
    queued."""
    from invigil.core.db import Database, transaction
    from invigil.core.migrate import upgrade
    from invigil.core.storage import LocalBlobStore

    kinds, pattern = SCENARIOS[scenario]
    upgrade(url)
    db = Database(url)
    blobs = LocalBlobStore(data_dir / "blobs")
    now = datetime.now(UTC)
    photos = {"webcam": "obama2.jpg", "evidence": "obama3.jpg"}
    if scenario.endswith("in a still room"):
        pools = {
            (kind, shift): [_room_shot(photo, shift) for _ in range(4)]
            for kind, photo in photos.items()
            for shift in (0, 4, 6, 8)
        }
    else:
        pools = {
            (kind, shift): [_shot(_scene(photo), shift) for _ in range(4)]
            for kind, photo in photos.items()
            for shift in (0, 4, 6, 8)
        }
    count = 0
    with transaction(db) as session:
        for i, attempt_id in enumerate(_exam(session, candidates, now)):
            for r in range(rounds):
                at = now + timedelta(seconds=EVERY_S * r)
                for kind in kinds:
                    data = pools[(kind, _moved(pattern, r, i))][(i + r) % 4]
                    _add_snapshot(session, blobs, attempt_id, kind, at, data)
                    count += 1
    db.dispose()
    return count


def drain(url: str, data_dir: str) -> dict[str, float]:
    """Run every queued job in this process, as `invigil worker` does; CPU from the first job."""
    import invigil.app  # noqa: F401  (registers every job handler, as `invigil worker` does)
    from invigil.core.clock import SystemClock
    from invigil.core.config import Settings
    from invigil.core.db import Database
    from invigil.core.jobs import JobContext, run_one

    faces.warm_up()
    settings = Settings(data_dir=Path(data_dir), database_url=url, secret_key="x" * 32)
    db = Database(url)
    # Jobs were queued up to `rounds` x 5 s ahead: let them all be due now.
    ctx = JobContext(db=db, clock=_Ahead(SystemClock()), settings=settings)
    cpu, started = time.process_time(), time.time()
    while run_one(ctx):
        pass
    out = {"cpu": time.process_time() - cpu, "started": started, "ended": time.time()}
    db.dispose()
    return out


class _Ahead:
    """A clock an hour ahead, so every queued job is due."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(hours=1)


def _drain_in(paths: list[Path], url: str, data_dir: Path) -> dict[str, float]:
    """Drain in a fresh process importing from ``paths`` first (so *before* runs old code,
    and a dlib put there runs instead of the installed one)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(BENCH)])}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--drain", url, str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _dlib_bin(into: Path) -> Path | None:
    """The prebuilt ``dlib-bin`` unpacked under ``into``, to measure it beside a dlib built
    against OpenBLAS in the same run; None when pip cannot fetch it."""
    got = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "dlib-bin", "-d", str(into)],
        capture_output=True,
    )
    wheels = sorted(into.glob("dlib_bin-*.whl"))
    if got.returncode or not wheels:
        return None
    with zipfile.ZipFile(wheels[-1]) as wheel:
        wheel.extractall(into / "dlib-bin")
    return into / "dlib-bin"


def _count(url: str, table: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(text(f"select count(*) from {table}")).scalar_one())
    engine.dispose()
    return n


def job_path(
    sources: dict[str, list[Path]], candidates: int, rounds: int, repeat: int
) -> list[dict[str, object]]:
    """Per scenario and source: CPU ms a snapshot of one worker draining the queue (median
    over ``repeat`` fresh databases; the sources alternate within each repeat)."""
    out = []
    for scenario in SCENARIOS:
        ms: dict[str, list[float]] = {name: [] for name in sources}
        total = 0
        for _ in range(repeat):
            for name, paths in sources.items():
                with tempfile.TemporaryDirectory(prefix="invigil-analysis-") as tmp:
                    url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
                    total = setup(url, Path(tmp), candidates, rounds, scenario)
                    result = _drain_in(paths, url, Path(tmp))
                    analysed = _count(url, "snapshot_analyses")
                    assert analysed == total, (name, analysed, total)
                    ms[name].append(1000 * result["cpu"] / total)
        out.append(
            {"scenario": scenario, "snapshots": total}
            | {name: statistics.median(v) for name, v in ms.items()}
        )
    return out


# --- under load ----------------------------------------------------------------------------------

# Of every 25 candidates: one is someone else at the desk from the start (face_mismatch), one
# leaves the camera after LEAVES_AFTER seconds (no_face, 15 s later by default).
IMPOSTOR_EVERY = 25
GONE_OFFSET = 12
LEAVES_AFTER = 10.0
FLAG_KINDS = ("face_mismatch", "no_face", "multiple_faces", "camera_covered")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and of its live children (a server's analysis child,
    analysis/offload.py)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread or child that just ended
            for child in (task / "children").read_text().split():
                total += _cpu_seconds(int(child))
    return total


def under_load(
    candidates: int, seconds: float, workers: int, database_url: str | None
) -> dict[str, object]:
    """Feed `invigil serve` (embedded worker) + ``workers`` `invigil worker` processes snapshots
    at the real-day rate for ``seconds``; delays from stored to analysed and to flagged."""
    import urllib.request

    from sqlalchemy import select

    from invigil.analysis.models import SnapshotAnalysis
    from invigil.attempts.models import Event
    from invigil.core.db import Database, transaction
    from invigil.core.jobs import DONE, Job
    from invigil.core.migrate import upgrade
    from invigil.core.storage import LocalBlobStore

    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="invigil-load-"))
    url = database_url or f"sqlite:///{tmp / 'load.sqlite3'}"
    upgrade(url)
    db = Database(url)
    blobs = LocalBlobStore(tmp / "blobs")
    now = datetime.now(UTC)
    with transaction(db) as session:
        attempts = _exam(session, candidates + 1, now)
    # The last attempt only warms the workers up (imports, models), outside the measurement.
    warm_attempt = attempts.pop()
    # The person moves in front of a still room, as a real day's cameras see it.
    scenes = {
        "desk": "obama2.jpg",
        "impostor": "biden.jpg",
        "gone": "empty.jpg",
        "phone": "obama3.jpg",
    }
    pools = {
        (name, shift): [_room_shot(photo, shift) for _ in range(3)]
        for name, photo in scenes.items()
        for shift in (0, 6)
    }

    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "INVIGIL_DATA_DIR": str(tmp),
        "INVIGIL_DATABASE_URL": url,
        "INVIGIL_SECRET_KEY": "bench-" + "x" * 40,
    }
    cli = [sys.executable, "-c", "from invigil.cli import main; main()"]
    log = (tmp / "processes.log").open("wb")
    procs = [
        subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    ]
    procs += [
        subprocess.Popen([*cli, "worker"], env=env, stdout=log, stderr=log) for _ in range(workers)
    ]
    stored: dict[str, tuple[datetime, str, str]] = {}  # snapshot -> (stored at, attempt, kind)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("invigil serve did not start") from None
                time.sleep(0.2)
        # Every process loads its models on its first snapshot: feed warm-up snapshots until
        # each process has taken some (its CPU moved), so start-up is not counted as delay.
        warm_cpu = {p.pid: _cpu_seconds(p.pid) for p in procs}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with transaction(db) as session:
                for kind in ("webcam", "evidence") * 8:
                    data = pools[("desk" if kind == "webcam" else "phone", 0)][0]
                    _add_snapshot(session, blobs, warm_attempt, kind, datetime.now(UTC), data)
            time.sleep(2)
            with db.session() as session:
                pending = session.query(Job).filter(Job.state != DONE).count()
            busy = [_cpu_seconds(p.pid) - warm_cpu[p.pid] > 1.0 for p in procs]
            if pending == 0 and all(busy):
                break
        cpu0 = {p.pid: _cpu_seconds(p.pid) for p in procs}
        # Each candidate's two streams at a fixed phase within the 5 s period.
        schedule = sorted(
            ((i * EVERY_S / candidates + j * EVERY_S / 2) % EVERY_S, i, kind)
            for i in range(candidates)
            for j, kind in enumerate(("webcam", "evidence"))
        )
        started = time.monotonic()
        backlog_max = 0
        period = 0
        while True:
            base = started + period * EVERY_S
            if base - started >= seconds:
                break
            k = 0
            while k < len(schedule):
                # Everything due by now goes in one transaction, as the ingest's group commit.
                due = []
                elapsed = time.monotonic() - base
                while k < len(schedule) and schedule[k][0] <= elapsed:
                    due.append(schedule[k])
                    k += 1
                if not due:
                    time.sleep(min(0.02, schedule[k][0] - elapsed))
                    continue
                at = datetime.now(UTC)
                t = base - started + elapsed
                ids = []
                with transaction(db) as session:
                    for _, i, kind in due:
                        if kind == "evidence":
                            scene = "phone"
                        elif i % IMPOSTOR_EVERY == 0:
                            scene = "impostor"
                        elif i % IMPOSTOR_EVERY == GONE_OFFSET and t >= LEAVES_AFTER:
                            scene = "gone"
                        else:
                            scene = "desk"
                        shift = 6 if (period + i) % MOVE_EVERY == MOVE_EVERY - 1 else 0
                        data = pools[(scene, shift)][(period + i) % 3]
                        sid = _add_snapshot(session, blobs, attempts[i], kind, at, data)
                        ids.append((sid, attempts[i], kind))
                done_at = datetime.now(UTC)
                for sid, attempt_id, kind in ids:
                    stored[sid] = (done_at, attempt_id, kind)
            with db.session() as session:
                pending = session.query(Job).filter(Job.state != DONE).count()
            backlog_max = max(backlog_max, pending)
            period += 1
        produced_s = time.monotonic() - started
        # Let the workers finish what was queued (bounded).
        drain_deadline = time.monotonic() + max(60.0, seconds)
        pending = 1
        while time.monotonic() < drain_deadline:
            with db.session() as session:
                pending = session.query(Job).filter(Job.state != DONE).count()
            if pending == 0:
                break
            time.sleep(0.5)
        drained_s = time.monotonic() - started
        cpu = sum(_cpu_seconds(p.pid) - cpu0[p.pid] for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()

    with db.session() as session:
        analysed = {
            sid: at
            for sid, at in session.execute(
                select(SnapshotAnalysis.snapshot_id, SnapshotAnalysis.analysed_at)
            )
        }
        flags = [
            (e.kind, e.at, e.data.get("snapshot_id"), e.attempt_id)
            for e in session.scalars(select(Event).where(Event.kind.in_(FLAG_KINDS)))
        ]
    db.dispose()

    def ms(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds() * 1000

    delays = sorted(ms(stored[s][0], at) for s, at in analysed.items() if s in stored)
    flag_delays: dict[str, list[float]] = {}
    for kind, at, sid, _ in flags:
        if sid in stored:
            flag_delays.setdefault(kind, []).append(ms(stored[sid][0], at))
    expected = {
        "face_mismatch": len(range(0, candidates, IMPOSTOR_EVERY)),
        "no_face": len(range(GONE_OFFSET, candidates, IMPOSTOR_EVERY))
        if seconds >= LEAVES_AFTER + 20
        else 0,
    }
    return {
        "candidates": candidates,
        "workers": workers,
        "database": "PostgreSQL" if url.startswith("postgresql") else "SQLite",
        "seconds": seconds,
        "produced": len(stored),
        "rate": len(stored) / produced_s,
        "analysed": len(delays),
        "drained": pending == 0,
        "drained_s": drained_s,
        "backlog_max": backlog_max,
        "cpu_ms": 1000 * cpu / max(1, len(delays)),
        "delay": delays,
        "flags": flag_delays,
        "expected": expected,
        "load": (load_start, os.getloadavg()[0]),
    }


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_table(r: dict[str, object]) -> str:
    delays: list[float] = r["delay"]  # type: ignore[assignment]
    flags: dict[str, list[float]] = r["flags"]  # type: ignore[assignment]
    expected: dict[str, int] = r["expected"]  # type: ignore[assignment]
    rows = [
        f"| every snapshot → its analysis | {len(delays)} | {_pct(delays, 0.5):.0f} | "
        f"{_pct(delays, 0.99):.0f} | {max(delays, default=float('nan')):.0f} |"
    ]
    for kind in ("face_mismatch", "no_face"):
        got = flags.get(kind, [])
        rows.append(
            f"| flag `{kind}` (snapshot that decided it → event; {len(got)} of "
            f"{expected.get(kind, 0)} expected) | {len(got)} | {_pct(got, 0.5):.0f} | "
            f"{_pct(got, 0.99):.0f} | {max(got, default=float('nan')):.0f} |"
        )
    return "\n".join(
        [
            f"`python bench/analysis.py --load-only --load-candidates {r['candidates']} "
            f"--load-seconds {r['seconds']:.0f} --load-workers {r['workers']}`: `invigil serve` "
            f"(its embedded worker) and {r['workers']} `invigil worker` process(es) on "
            f"{r['database']}, fed {r['produced']} snapshots over {r['seconds']:.0f} s "
            f"({r['rate']:.0f} a second; a desk and a phone snapshot every 5 s per candidate, each "
            "5 s batch written in small transactions as the ingest's group commit does, blob "
            f"included). Of every {IMPOSTOR_EVERY} candidates one is someone else at the desk "
            f"from the start and one leaves the camera after {LEAVES_AFTER:.0f} s; the others "
            f"sit still, moved every {MOVE_EVERY}th snapshot (the person, in front of a still "
            "room). Queue at most "
            f"{r['backlog_max']} jobs behind; "
            + (
                f"all analysed {float(r['drained_s']) - float(r['seconds']):.1f} s after the "
                "last snapshot"
                if r["drained"]
                else "**not drained** when the bench gave up"
            )
            + f". CPU of the server and workers: {float(r['cpu_ms']):.1f} ms a snapshot "
            "(the feeding bench process not included). Load average (1 min) at the start "
            f"{r['load'][0]:.1f}, at the end {r['load'][1]:.1f} (`nproc` = {os.cpu_count()}).",  # type: ignore[index]
            "",
            "| delay (ms, stored → written by the worker) | n | p50 | p99 | max |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


# --- the report ----------------------------------------------------------------------------------

LOAD_HEADING = "### Under load"


def _write_load_part(text: str) -> None:
    """Replace only the under-load part of the Snapshot analysis section."""
    doc = BENCHMARKS_MD.read_text(encoding="utf-8")
    section = re.search(r"^## Snapshot analysis\n.*?(?=^## |\Z)", doc, re.S | re.M)
    if section is None:
        write_section("Snapshot analysis", f"{LOAD_HEADING}\n\n{text}")
        return
    body = section.group(0)
    part = (
        f"{LOAD_HEADING}\n\n_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC._ {text.strip()}\n\n"
    )
    if LOAD_HEADING in body:
        body = re.sub(
            rf"{re.escape(LOAD_HEADING)}\n.*?(?=^### |\Z)", lambda _: part, body, flags=re.S | re.M
        )
    else:
        body = body.rstrip() + "\n\n" + part
    BENCHMARKS_MD.write_text(
        doc.replace(section.group(0), body.rstrip() + "\n\n"), encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    # Five minutes of exam a stream: each stream's first frame (detected, and embedded on the
    # desk) is one in 60, as in a short interview; 12 rounds made it one in 12.
    parser.add_argument("--rounds", type=int, default=60, help="snapshots per stream each")
    parser.add_argument("--length", type=int, default=24, help="frames per simulated stream")
    parser.add_argument("--repeat", type=int, default=3, help="passes over each stream")
    parser.add_argument("--baseline", default=BASELINE, help="git commit measured as *before*")
    parser.add_argument(
        "--compare", default=None, help="a further commit whose job path is measured beside"
    )
    parser.add_argument("--load-candidates", type=int, default=500)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument(
        "--load-workers", type=int, default=1, help="`invigil worker` processes beside serve"
    )
    parser.add_argument("--load-database-url", default=None, help="default: a scratch SQLite")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--drain", nargs=2, metavar=("URL", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drain:
        print(json.dumps(drain(*args.drain)))
        return
    if args.quick:
        args.candidates, args.rounds, args.length, args.repeat = 5, 4, 12, 1
        args.load_candidates, args.load_seconds = min(args.load_candidates, 50), 35.0

    load_part = None
    if not args.no_load:
        result = under_load(
            args.load_candidates, args.load_seconds, args.load_workers, args.load_database_url
        )
        load_part = load_table(result)
    if args.load_only:
        assert load_part is not None
        if args.no_write:
            print(load_part)
        else:
            _write_load_part(load_part)
            print("wrote the under-load part of docs/benchmarks.md's 'Snapshot analysis'")
        return

    import dlib

    # Here, not at the top: a *before* drain imports this file over older sources.
    from invigil.analysis.jobs import BATCH

    load_start = os.getloadavg()[0]
    costs = frame_costs(args.length, args.repeat)
    with tempfile.TemporaryDirectory(prefix="invigil-baseline-") as base:
        here = ROOT / "src"
        sources = {"before": [source_at(args.baseline, Path(base))]}
        if args.compare:
            (Path(base) / "compare").mkdir()
            sources[args.compare] = [source_at(args.compare, Path(base) / "compare")]
        sources["after"] = [here]
        prebuilt = _dlib_bin(Path(base)) if dlib.DLIB_USE_BLAS else None
        if prebuilt is not None:
            sources[DLIB_BIN] = [here, prebuilt]
        path = job_path(sources, args.candidates, args.rounds, args.repeat)
    load_end = os.getloadavg()[0]

    def per_box(ms: float) -> float:
        return 2 * (1000 / ms) / PER_CANDIDATE

    by = {str(c["label"]): c for c in costs}

    room = "movement in a still room"

    def mean(key: str, kind: str) -> float:
        return statistics.mean(float(by[f"{d}, {kind}"][key]) for d in ("desk", "phone"))  # type: ignore[arg-type]

    def pair(d: dict[str, object]) -> tuple[float, float]:
        return float(d["before"]), float(d["after"])  # type: ignore[arg-type]

    steady = statistics.mean(pair(c)[1] for c in path if "steady" in str(c["scenario"]))
    moving = statistics.mean(pair(c)[1] for c in path if "movement" in str(c["scenario"]))
    mix = next(pair(c) for c in path if c["scenario"] == "desk + phone, exam mix")
    mix_room = next(pair(c) for c in path if "exam mix in a still room" in str(c["scenario"]))
    bookkeeping = next(pair(c)[1] for c in path if c["scenario"] == "phone, steady")
    lines = [
        f"`python bench/analysis.py --candidates {args.candidates} --rounds {args.rounds} "
        f"--length {args.length} --repeat {args.repeat}`; the embedding by "
        f"{faces.embedding_build()}, libfacedetection from `yuface`, "
        f"`face_mismatch.embed_every` {EMBED_EVERY}. Load average (1 min) at the start "
        f"{load_start:.1f}, at the end {load_end:.1f} (`nproc` = {os.cpu_count()}): the machine "
        "may be shared with other work, so every cost is **CPU time of the process** (what the "
        "cores spend, OpenMP threads included), and *before* and *after* were measured in the "
        "same run, alternating, so their ratio holds.",
        "",
        f"**Frame work** (CPU ms a snapshot, median of {args.repeat} passes over a stream of "
        f"{args.length} snapshots 5 s apart; 640×480 JPEG with sensor noise). *Before*: HOG "
        "and an embedding on every frame, as the first version did. *Steady*: the candidate "
        "sits still. *Movement*: the whole picture shifts 4–8 px every snapshot (the photo "
        "rolled sideways, as when the camera is bumped), so every frame is detected whole. "
        "*Movement in a still room*: the person sways 4–8 px every snapshot in front of a room "
        "that does not move (the photo cut out and laid over `empty.jpg`), as in front of a "
        "laptop's camera, so the detector looks only where the picture moved (`region`).",
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
        f"| **desk + phone, movement in a still room** | {mean('before', room):.1f} | "
        f"**{mean('after', room):.1f}** | "
        f"{mean('before', room) / mean('after', room):.1f} | |",
        "",
        "**Whole job path** (`snapshot.analyse` end to end: claim, read the snapshot with its "
        "attempt and the stream's previous detected row, read the blob, decode, thumbnail "
        "diff, detect, embed, store the row, run the flag rules, write events, complete the "
        "job) on a scratch SQLite database: "
        f"{args.candidates} candidates × {args.rounds} snapshots per stream, queued, then "
        "drained by one worker process (the loop of `invigil worker`). CPU ms a snapshot, "
        f"median of {args.repeat} fresh databases. *Before*: the source at commit "
        f"`{args.baseline}` (one job per claim, two transactions per job, the attempt, exam "
        "and candidate read row by row, the rules' window read on every snapshot); *after*: "
        f"this tree (up to {BATCH} jobs per claim and per commit, one joined read, the window read "
        "only when a flag can start or end). *Exam mix*: desk and phone, still except every "
        f"{MOVE_EVERY}th snapshot (moved, then back): the whole picture moved, or, *in a still "
        "room*, the person in front of it (the two kinds of movement of the frame work above).",
        "",
        "| scenario | snapshots | before |"
        + (f" at `{args.compare}` |" if args.compare else "")
        + " after | × faster | candidates per 2-core box, after |"
        + (" after, with dlib-bin |" if prebuilt else ""),
        "|---|---|---|---|---|---|"
        + ("---|" if prebuilt else "")
        + ("---|" if args.compare else ""),
        *[
            f"| {c['scenario']} | {c['snapshots']} | {pair(c)[0]:.1f} | "
            + (f"{float(c[args.compare]):.1f} | " if args.compare else "")  # type: ignore[arg-type]
            + f"**{pair(c)[1]:.1f}** | "
            f"{pair(c)[0] / pair(c)[1]:.1f} | {per_box(pair(c)[1]):.0f} |"
            + (f" {float(c[DLIB_BIN]):.1f} |" if prebuilt else "")  # type: ignore[arg-type]
            for c in path
        ],
        "",
        "Candidates a 2-core box keeps up with from the job path (a desk and a phone snapshot "
        f"every 5 s = 0.4 a second, 2 cores, nothing else running): steady **{per_box(steady):.0f}**"
        f", every snapshot moved **{per_box(moving):.0f}**, the exam mix "
        f"**{per_box(mix[1]):.0f}** (before: {per_box(mix[0]):.0f}), the exam mix in a still "
        f"room **{per_box(mix_room[1]):.0f}** (before: {per_box(mix_room[0]):.0f}). In "
        "production the same "
        "cores also take the uploads (about 40 % of a core for 100 candidates, proctor console "
        "benchmark above). Where the time goes now (cProfile of a drain): the detector (about "
        "11 ms a frame moved whole, about 4 ms where only the person moved) and the ResNet "
        "embedding (about 19 ms from dlib built against "
        "OpenBLAS, one thread; about 100 ms from `dlib-bin`), on a desk frame every "
        f"{EMBED_EVERY} detected ones or when the face jumped, on the face side; the rest is "
        "the job's bookkeeping, which the steady phone stream shows almost alone (its face work "
        f"is a thumbnail comparison, about 1–2 ms): {bookkeeping:.1f} ms a snapshot after. "
        "A stream's first snapshot is always detected, and on the desk embedded (about 30 ms); "
        f"with {args.rounds} snapshots a stream ({args.rounds * EVERY_S / 60:.0f} minutes of "
        "exam) it is one in "
        f"{args.rounds}, as in a short interview (the previous figures, 14.8 ms on the exam mix, "
        "were measured over 12 snapshots a stream, one minute, where it was one in 12). Since "
        "then a claim reads the jobs table's index range by range and leases by primary key "
        "(it had collected and sorted every due job: 17 ms of CPU behind 10,000 queued "
        "snapshots, 2.5 ms now), it runs three prebuilt statements instead of five built each "
        f"time, a batch takes up to {BATCH} snapshots instead of 8, and resolves its exam's "
        "rules once"
        + (
            "; the last column: the same code with `dlib-bin`, measured in this run."
            if prebuilt
            else "."
        ),
    ]
    if load_part is not None:
        lines += ["", LOAD_HEADING, "", load_part]
    body = "\n".join(lines)
    if args.no_write:
        print(body)
    else:
        write_section("Snapshot analysis", body)
        print("wrote the 'Snapshot analysis' section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
