"""Re-measure what docs/liveness.md reports: the quality gate's measures on the real photos and
on photos degraded one way each, the liveness measures on synthetic turns and on a flat photo
held, tilted and slanted, and the time a login with liveness costs.

    cd tests && ../.venv/bin/python -m identity.measure
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import time

import numpy as np
from PIL import Image, ImageFilter

from invigil.identity import faces, liveness, pose68, quality

from . import synth

REAL = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "tom_hanks.jpg"]


def _one(pixels: synth.Pixels) -> faces.LocatedFace | None:
    found = faces.locate_faces(pixels)
    return found[0] if len(found) == 1 else None


def _pose(pixels: synth.Pixels) -> faces.LocatedFace | None:
    found = pose68.locate_faces(pixels)
    return found[0] if len(found) == 1 else None


def gate() -> None:
    print("photo                      yaw    luma  sharp  chroma outside  verdict")

    def row(name: str, pixels: synth.Pixels) -> None:
        face = _one(pixels)
        try:
            quality.check_photo(synth.jpeg(pixels))
            verdict = "ok"
        except faces.FaceError as exc:
            verdict = exc.code
        if face is None:
            print(f"{name:24s} {'(no single face found)':>38s}  {verdict}")
            return
        m = quality.measure(pixels, face)
        print(
            f"{name:24s} {m.yaw:+.2f} {m.luma:7.1f} {m.sharpness:6.3f} {m.lower_face_chroma:6.1f}"
            f" {m.outside:7.3f}  {verdict}"
        )

    for name in [*REAL, "obama_masked.jpg"]:
        photo = synth.load(name)
        row(name, photo)
        row(name + " (camera)", synth.camera_frame(photo))
    frame = synth.camera_frame(synth.load("obama2.jpg"))
    img = Image.fromarray(frame)
    for k in (0.5, 0.3, 0.25):
        row(f"obama2 x{k} light", (frame * k).astype(np.uint8))
    for r in (3, 4, 6):
        row(f"obama2 blur {r}px", np.asarray(img.filter(ImageFilter.GaussianBlur(r))))
    for r in (5, 9):
        row(f"obama2 median {r}px", np.asarray(img.filter(ImageFilter.MedianFilter(r))))
    row("obama2 turned -0.3", synth.turn(frame, -0.3))


def turns() -> None:
    print("\nagainst the unmoved camera frame: yaw change, parallax")
    worst = 0.0
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]:
        base = synth.camera_frame(synth.load(name))
        ref = _pose(base)
        assert ref is not None
        for a in (0.2, 0.25, 0.3, -0.2, -0.25, -0.3):
            face = _pose(synth.turn(base, a))
            if face is None:
                print(f"{name} turn {a:+.2f}: face lost")
                continue
            dyaw = pose68.yaw_of(face.landmarks) - pose68.yaw_of(ref.landmarks)
            par = liveness.parallax(ref.landmarks, face.landmarks)
            print(f"{name} turn {a:+.2f}: yaw {dyaw:+.3f} parallax {par:+.3f}")
        for deg, roll, zoom in itertools.product((-45, -30, 0, 30, 45), (-20, 0, 20), (0.8, 1.15)):
            face = _pose(synth.held(synth.slanted(base, deg), roll_deg=roll, zoom=zoom))
            if face is not None:
                worst = max(worst, abs(liveness.parallax(ref.landmarks, face.landmarks)))
        print(
            f"  flat photo slanted <=45 deg, tilted <=20, zoomed: worst |parallax| so far {worst:.3f}"
        )


def timing(repeat: int = 3) -> None:
    base = synth.camera_frame(synth.load("obama2.jpg"))
    photo = synth.jpeg(base)
    frames = synth.challenge_frames(base, ["left", "right"])
    gate_ms, frames_ms = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pixels, face, _ = quality.check_photo(photo)
        emb = faces.embed_located(pixels, face)
        t1 = time.perf_counter()
        liveness.check_frames(["left", "right"], frames, pixels, emb)
        t2 = time.perf_counter()
        gate_ms.append(1000 * (t1 - t0))
        frames_ms.append(1000 * (t2 - t1))
    n = len(frames)
    fm = statistics.median(frames_ms)
    print(
        f"\nphoto gate + embedding {statistics.median(gate_ms):.0f} ms; {n} frames "
        f"{fm:.0f} ms ({fm / n:.0f} ms a frame incl. 2 embeddings)"
    )
    masked = (synth.FACES / "obama_masked.jpg").read_bytes()
    t0 = time.perf_counter()
    with contextlib.suppress(faces.FaceError):
        quality.check_photo(masked)
    print(f"masked photo: {1000 * (time.perf_counter() - t0):.0f} ms")


if __name__ == "__main__":
    faces.warm_up()
    gate()
    turns()
    timing()
