"""How long an admin waits to import a large roster with enrolment photos.

Makes N distinct photos from the test faces (mirrored, re-lit, re-cropped, re-compressed, so
each must be detected and embedded afresh), writes an exam file for them and runs the real
import (validation, face enrolment in a process pool, one database transaction) into a fresh
SQLite database. The baseline, in the same run: enrolling a sample on one core, so the report
shows the pool's speed-up as well as the wall time.

    python bench/import_roster.py            # 2,000 candidates
    python bench/import_roster.py --n 200    # quicker
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section

from invigil.core.db import Database, transaction
from invigil.core.migrate import upgrade
from invigil.core.storage import LocalBlobStore
from invigil.exams.importer import create_exam, enrol_photos, load_exam_file

FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
SOURCES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "tom_hanks.jpg"]


def make_photos(folder: Path, n: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    originals = [Image.open(FACES / name).convert("RGB") for name in SOURCES]
    paths = []
    for i in range(n):
        img = originals[i % len(originals)]
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        w, h = img.size
        dx, dy = int(w * rng.uniform(0, 0.06)), int(h * rng.uniform(0, 0.06))
        img = img.crop(
            (dx, dy, w - int(w * rng.uniform(0, 0.06)), h - int(h * rng.uniform(0, 0.06)))
        )
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.15))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.9, 1.1))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(75, 92))
        path = folder / f"{i:05d}.jpg"
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def write_exam(folder: Path, photos: list[Path], rooms: int) -> Path:
    starts = datetime.now(UTC) + timedelta(days=1)
    doc = {
        "exam": {
            "title": "导入基准",
            "starts_at": starts.isoformat(),
            "duration": "20m",
            "questions": [{"text": "题目"}],
        },
        "rooms": [{"id": f"R{r:02d}", "name": f"第{r}考场"} for r in range(1, rooms + 1)],
        "candidates": [
            {
                "ticket": f"2026{i:06d}",
                "name": f"考生{i}",
                "room": f"R{i % rooms + 1:02d}",
                "photo": p.name,
            }
            for i, p in enumerate(photos)
        ],
    }
    path = folder / "exam.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument(
        "--sample", type=int, default=60, help="photos enrolled on one core (baseline)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/ alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        photos = make_photos(folder, args.n)
        made = time.perf_counter() - t0
        exam_file = write_exam(folder, photos, rooms=max(1, args.n // 30))

        t0 = time.perf_counter()
        enrol_photos(photos[: args.sample], workers=1)
        serial = (time.perf_counter() - t0) / args.sample

        url = f"sqlite:///{folder / 'bench.sqlite3'}"
        upgrade(url)
        done = [0]

        def progress(i: int, total: int) -> None:
            done[0] = i
            if i % 200 == 0 or i == total:
                print(f"  enrolled {i}/{total}", file=sys.stderr)

        t0 = time.perf_counter()
        spec, embeddings = load_exam_file(exam_file, datetime.now(UTC), progress)
        enrolled = time.perf_counter() - t0
        db = Database(url)
        t1 = time.perf_counter()
        with transaction(db) as session:
            create_exam(
                session, LocalBlobStore(folder / "blobs"), spec, embeddings, datetime.now(UTC)
            )
        written = time.perf_counter() - t1
        db.dispose()
    total = enrolled + written
    per_photo = enrolled / args.n
    body = f"""
`python bench/import_roster.py --n {args.n}`: {args.n} candidates, each with its own photo
(made in {made:.0f} s from the five test faces: mirrored, re-lit, re-cropped, re-compressed),
{max(1, args.n // 30)} rooms, imported into a fresh SQLite database.

| step | time |
|---|---|
| validate + enrol {args.n} photos (process pool, all cores) | {enrolled:.1f} s ({per_photo * 1000:.0f} ms a photo) |
| write exam, rooms, candidates, photos, attempts (one transaction) | {written:.1f} s |
| **whole import** | **{total:.1f} s ({total / 60:.1f} min)** |
| baseline: enrol {args.sample} photos on one core | {serial * 1000:.0f} ms a photo |
| speed-up of the pool over one core | {serial / per_photo:.2f}× |
"""
    print(body)
    if not args.no_write:
        write_section("Roster import (2,000 candidates with photos)", body)


if __name__ == "__main__":
    main()
