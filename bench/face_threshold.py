"""Measure face-embedding distances and detection scores on the test photos.

    python bench/face_threshold.py > face-threshold-run.md

Prints markdown: detection scores per image and variant, pairwise embedding distances grouped
into same-person and different-person pairs, a sweep of synthetic smiley badges, and timings.
docs/face-threshold.md quotes a run of it; MATCH_THRESHOLD and DETECTION_SCORE_MIN in
invigil.identity.faces were chosen from these numbers.

The variants mimic a webcam login against an enrolment photo: JPEG quality 40, 320 px wide,
brightness -40 %, and all three at once.
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from invigil.identity import faces

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
# Photo file -> person. The group photo is handled separately: each of its faces is a person.
PEOPLE = {
    "obama.jpg": "obama",
    "obama2.jpg": "obama",
    "obama3.jpg": "obama",
    "biden.jpg": "biden",
    "tom_hanks.jpg": "tom_hanks",
}
GROUP = "group_t1.jpg"
NON_FACES = ("empty.jpg", "badge.jpg", "obama_masked.jpg", "mask_blue.jpg")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _narrow(img: Image.Image, width: int = 320) -> Image.Image:
    if img.width <= width:
        return img
    return img.resize((width, round(img.height * width / img.width)), Image.Resampling.BILINEAR)


def _dark(img: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(0.6)


VARIANTS: dict[str, Callable[[Image.Image], bytes]] = {
    "original": lambda img: _jpeg(img, 95),
    "q40": lambda img: _jpeg(img, 40),
    "320px": lambda img: _jpeg(_narrow(img), 75),
    "dark40": lambda img: _jpeg(_dark(img), 75),
    "webcam": lambda img: _jpeg(_dark(_narrow(img)), 40),
}


@dataclass
class Sample:
    person: str
    photo: str
    variant: str
    embedding: npt.NDArray[np.float64]


def _scores(data: bytes) -> dict[int, list[float]]:
    """Raw HOG scores (threshold 0, before DETECTION_SCORE_MIN) at upsample 0 and 1."""
    pixels = faces._decode(data)
    with faces._lock:
        detector = faces._load_locked().detector
        return {up: sorted(detector.run(pixels, up, 0.0)[1], reverse=True) for up in (0, 1)}


def _group_embeddings(data: bytes) -> list[npt.NDArray[np.float64]]:
    """Embed every face of the group photo (upsampled once so that all six are found)."""
    pixels = faces._decode(data)
    with faces._lock:
        models = faces._load_locked()
        # Left to right, so that "group#0" is the leftmost person in the photo.
        rects = sorted(models.detector.run(pixels, 1, 0.0)[0], key=lambda r: r.left())
        return [
            np.array(
                models.encoder.compute_face_descriptor(pixels, models.predictor(pixels, rect)),
                dtype=np.float64,
            )
            for rect in rects
        ]


def _fmt(values: Iterable[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) or "–"


def _summary(values: list[float]) -> str:
    if not values:
        return "– | – | – | 0"
    return (
        f"{min(values):.3f} | {statistics.median(values):.3f} | {max(values):.3f} | {len(values)}"
    )


def detection_table(out: list[str], images: dict[str, Image.Image]) -> list[float]:
    out += [
        "## Detection scores (HOG, raw, best first)",
        "",
        "| image | variant | upsample 0 | upsample 1 | embed_single_face |",
        "| --- | --- | --- | --- | --- |",
    ]
    face_scores: list[float] = []
    for name, img in images.items():
        variants = VARIANTS if name in PEOPLE else {"original": VARIANTS["original"]}
        for variant, make in variants.items():
            data = make(img)
            scores = _scores(data)
            try:
                faces.embed_single_face(data)
                verdict = "one face"
            except faces.FaceError as exc:
                verdict = exc.code
            if name in PEOPLE and scores[0]:
                face_scores.append(scores[0][0])
            out.append(
                f"| {name} | {variant} | {_fmt(scores[0])} | {_fmt(scores[1])} | {verdict} |"
            )
    out.append("")
    return face_scores


def _badge(rng: np.random.Generator) -> Image.Image:
    """A yellow smiley pin badge with random proportions, ink contrast and blur."""
    img = Image.new("RGB", (640, 480), (200, 190, 170))
    d = ImageDraw.Draw(img)
    r = int(rng.integers(50, 130))
    cx, cy = 320, 240
    rim = int(rng.integers(2, 15))
    d.ellipse(
        (cx - r, cy - r, cx + r, cy + r), fill=(235, 200, 60), outline=(120, 80, 20), width=rim
    )
    level = int(235 - rng.integers(60, 220))
    ink = (level, int(level * 0.8), 20)
    eye_y = cy - r * rng.uniform(0.1, 0.45)
    eye_dx = r * rng.uniform(0.25, 0.5)
    eye_r = r * rng.uniform(0.06, 0.16)
    brows = bool(rng.integers(0, 2))
    mouth = r * rng.uniform(0.25, 0.6)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        d.ellipse((ex - eye_r, eye_y - eye_r * 1.3, ex + eye_r, eye_y + eye_r * 1.3), fill=ink)
        if brows:
            brow_y = eye_y - r * 0.25
            d.line((ex - r * 0.18, brow_y, ex + r * 0.18, brow_y), fill=ink, width=max(2, r // 16))
    d.line((cx, eye_y + r * 0.1, cx, cy + r * 0.15), fill=(200, 160, 40), width=max(2, r // 20))
    d.arc((cx - mouth, cy, cx + mouth, cy + r * 0.55), 20, 160, fill=ink, width=max(2, r // 14))
    return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 3))))


def badge_sweep(out: list[str], count: int) -> list[float]:
    """How high does HOG score a deliberately face-like badge (either upsampling level)?"""
    rng = np.random.default_rng(7)
    fired: list[float] = []
    for _ in range(count):
        scores = _scores(_jpeg(_badge(rng), 90))
        best = [s for level in scores.values() for s in level]
        if best:
            fired.append(max(best))
    fired.sort()
    cuts = (0.2, 0.3, 0.4, 0.5)
    out += [
        f"## Synthetic smiley badges ({count}, seed 7)",
        "",
        f"HOG fired (score ≥ 0 at upsample 0 or 1) on {len(fired)} of {count}. Best score per "
        "badge that fired:",
        "",
        "| min | median | max | " + " | ".join(f"≥ {c}" for c in cuts) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in cuts) + " |",
        f"| {_fmt(fired[:1])} | {statistics.median(fired) if fired else float('nan'):.2f} | "
        f"{_fmt(fired[-1:])} | " + " | ".join(str(sum(s >= c for s in fired)) for c in cuts) + " |",
        "",
    ]
    return fired


def distance_tables(out: list[str], images: dict[str, Image.Image]) -> None:
    samples: list[Sample] = []
    for name, person in PEOPLE.items():
        for variant, make in VARIANTS.items():
            try:
                emb = faces.embed_single_face(make(images[name]))
            except faces.FaceError:
                continue
            samples.append(Sample(person, name, variant, emb))
    group = _group_embeddings(VARIANTS["original"](images[GROUP]))
    for i, emb in enumerate(group):
        samples.append(Sample(f"group#{i}", GROUP, "original", emb))

    buckets: dict[str, list[float]] = {
        "same photo, degraded vs original": [],
        "same person, different photos, both original": [],
        "same person, different photos, one degraded": [],
        "same person, different photos, both degraded": [],
        "different people, both original": [],
        "different people, any variant": [],
    }
    rows: list[str] = []
    for a, b in itertools.combinations(samples, 2):
        dist = faces.face_distance(a.embedding, b.embedding)
        degraded = (a.variant != "original") + (b.variant != "original")
        if a.person == b.person:
            if a.photo == b.photo:
                if degraded == 1:
                    buckets["same photo, degraded vs original"].append(dist)
                continue
            key = ("both original", "one degraded", "both degraded")[degraded]
            buckets[f"same person, different photos, {key}"].append(dist)
            if degraded <= 1:
                rows.append(f"| {a.photo} {a.variant} | {b.photo} {b.variant} | {dist:.3f} |")
        else:
            buckets["different people, any variant"].append(dist)
            if degraded == 0:
                buckets["different people, both original"].append(dist)
    different = buckets["different people, any variant"]
    same = [d for k, v in buckets.items() if k.startswith("same person") for d in v]

    out += [
        "## Embedding distances",
        "",
        f"{len(samples)} embeddings: {len(PEOPLE)} photos × {len(VARIANTS)} variants "
        f"(where a face was found) and the {len(group)} faces of the group photo.",
        "",
        "| pairs | min | median | max | count |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [f"| {k} | {_summary(v)} |" for k, v in buckets.items()]
    out += [
        "",
        f"Largest same-person distance: {max(same):.3f}; smallest different-person distance: "
        f"{min(different):.3f}; MATCH_THRESHOLD = {faces.MATCH_THRESHOLD}: "
        f"{sum(d > faces.MATCH_THRESHOLD for d in same)} same-person pairs rejected, "
        f"{sum(d <= faces.MATCH_THRESHOLD for d in different)} different-person pairs accepted.",
        "",
        "### Same person, different photos (at most one side degraded)",
        "",
        "| photo A | photo B | distance |",
        "| --- | --- | --- |",
        *rows,
        "",
        "### Closest different-person pairs",
        "",
        "| A | B | distance |",
        "| --- | --- | --- |",
    ]
    pairs = [
        (faces.face_distance(a.embedding, b.embedding), a, b)
        for a, b in itertools.combinations(samples, 2)
        if a.person != b.person
    ]
    for dist, a, b in sorted(pairs, key=lambda t: t[0])[:8]:
        out.append(
            f"| {a.person} ({a.photo} {a.variant}) | {b.person} ({b.photo} {b.variant}) "
            f"| {dist:.3f} |"
        )
    out.append("")


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _verdict(data: bytes) -> str:
    try:
        faces.embed_single_face(data)
    except faces.FaceError as exc:
        return exc.code
    return "one face"


def timing_table(out: list[str], images: dict[str, Image.Image], repeat: int) -> None:
    out += [
        f"## Time per embed_single_face call (median of {repeat}, one thread)",
        "",
        "| image | size in | result | ms |",
        "| --- | --- | --- | --- |",
    ]
    cases = list(images.items())
    # A phone-camera-sized JPEG: JPEG draft mode should keep it close to the small ones.
    big = images["obama.jpg"].resize((3024, 3780), Image.Resampling.BICUBIC)
    cases.append(("obama.jpg upscaled (phone photo)", big))
    for name, img in cases:
        data = VARIANTS["original"](img)
        verdict = _verdict(data)
        ms = _median_ms(partial(_verdict, data), repeat)
        out.append(f"| {name} | {img.width}×{img.height} | {verdict} | {ms:.0f} |")

    data = VARIANTS["original"](images["obama.jpg"])
    calls = 16
    start = time.perf_counter()
    for _ in range(calls):
        faces.embed_single_face(data)
    serial = time.perf_counter() - start
    with ThreadPoolExecutor(max_workers=4) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: faces.embed_single_face(data), range(calls)))
        threaded = time.perf_counter() - start
    out += [
        "",
        f"{calls} calls on obama.jpg: {serial:.2f} s serially, {threaded:.2f} s from 4 threads "
        "(the model lock serialises them; use processes for parallelism).",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing repetitions per image")
    parser.add_argument("--badges", type=int, default=300, help="synthetic badges to score")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    faces.warm_up()
    load_ms = (time.perf_counter() - start) * 1000
    names = [*PEOPLE, GROUP, *NON_FACES]
    images: dict[str, Image.Image] = {}
    for name in names:
        with Image.open(DATA / name) as img:
            images[name] = img.convert("RGB")

    out: list[str] = [f"Model load (warm_up): {load_ms:.0f} ms", ""]
    face_scores = detection_table(out, images)
    badge_sweep(out, args.badges)
    out += [
        f"Best-face HOG score over the single-person photos and variants (upsample 0): "
        f"min {min(face_scores):.2f}, median {statistics.median(face_scores):.2f}, "
        f"max {max(face_scores):.2f}.",
        "",
    ]
    distance_tables(out, images)
    timing_table(out, images, args.repeat)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
