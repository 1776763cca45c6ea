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

from invigil.identity import faces, liveness, quality

from . import synth

REAL = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "tom_hanks.jpg"]


def _one(pixels: synth.Pixels) -> faces.LocatedFace | None:
    found = faces.locate_faces(pixels)
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


def _camera(pixels: synth.Pixels) -> synth.Pixels:
    # Through a JPEG as the desk sends it.
    return faces.decode(synth.jpeg(pixels, 85))


def turns() -> None:
    print("\nagainst the unmoved camera frame: turn, parallax (eye distances)")
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]:
        base = synth.camera_frame(synth.load(name))
        ref = _one(base)
        assert ref is not None
        row = []
        for a in (0.1, 0.2, 0.3, -0.1, -0.2, -0.3):
            frame = _camera(synth.turn(base, a))
            face = _one(frame)
            if face is None:
                row.append(f"{a:+.1f}: lost")
                continue
            m = liveness.motion(base, ref.landmarks, frame, face.landmarks)
            row.append(f"{a:+.1f}: {m.turn:+.3f} {m.parallax:+.3f}")
        print(f"{name} turns " + " | ".join(row))
        worst_turn = worst_par = 0.0
        judged = 0
        for deg, roll, zoom in itertools.product((-45, -30, 0, 30, 45), (-20, 0, 20), (0.8, 1.15)):
            frame = _camera(synth.held(synth.slanted(base, deg), roll_deg=roll, zoom=zoom))
            face = _one(frame)
            if face is None:
                continue
            m = liveness.motion(base, ref.landmarks, frame, face.landmarks)
            judged += m != liveness.NO_MOTION
            worst_turn = max(worst_turn, abs(m.turn))
            worst_par = max(worst_par, abs(m.parallax))
        print(
            f"  flat photo slanted <=45 deg, tilted <=20, zoomed 0.8-1.15 ({judged} of 30 "
            f"frames judged): worst |turn| {worst_turn:.3f}, worst |parallax| {worst_par:.3f}"
        )
        still = [
            liveness.motion(base, ref.landmarks, f, ref.landmarks)
            for f in (_camera(base), faces.decode(synth.jpeg(base, 70)))
        ]
        print(
            f"  same frame re-encoded: worst |parallax| {max(abs(m.parallax) for m in still):.4f}"
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
