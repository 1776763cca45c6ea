"""Test frames made from the real photos in tests/data/faces: a photo held up to the camera
(shifted, zoomed, tilted, seen at a slant) and a synthetic head turn.

The head turn is a smooth landmark-driven warp: pixels near the nose tip move sideways by
up to ``amount`` jaw widths, falling off towards the face outline, which stays put. That is
what a turning head does to the 2-D picture to first order (the nose stands out of the face
plane, the outline does not move with it), so it exercises the checker's logic. It is not a
real person turning: it proves the checks accept the geometry they were written for, not that
every real head turn passes (docs/liveness.md).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

from invigil.identity import faces
from invigil.identity import landmarks as lmk

Pixels = npt.NDArray[np.uint8]
FACES = Path(__file__).resolve().parents[1] / "data" / "faces"
# A jaw width (ear to ear at the jaw line) in eye distances: 2.0-2.4 on the test photos. The
# warp's size and reach are in jaw widths so they scale with the face.
JAW_PER_EYE = 2.2


def load(name: str) -> Pixels:
    return faces.decode((FACES / name).read_bytes())


def jpeg(pixels: Pixels, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def camera_frame(photo: Pixels, width: int = 640, height: int = 480, shift: int = 0) -> Pixels:
    """The photo centred on grey as tests/browser/conftest.py feeds the fake camera."""
    img = Image.fromarray(photo)
    scale = min((height * 0.95) / img.height, (width * 0.8) / img.width)
    img = img.resize((round(img.width * scale), round(img.height * scale)))
    canvas = Image.new("RGB", (width, height), (150, 150, 150))
    canvas.paste(img, ((width - img.width) // 2 + shift, (height - img.height) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def _sample(pixels: Pixels, sx: npt.NDArray[np.float64], sy: npt.NDArray[np.float64]) -> Pixels:
    """Bilinear sampling at (sx, sy); outside the image is grey."""
    h, w = pixels.shape[:2]
    src = pixels.astype(np.float64)
    x0 = np.floor(sx).astype(int)
    y0 = np.floor(sy).astype(int)
    fx = (sx - x0)[..., None]
    fy = (sy - y0)[..., None]
    out = np.zeros((*sx.shape, 3))
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi = np.clip(x0 + dx, 0, w - 1)
            yi = np.clip(y0 + dy, 0, h - 1)
            out += src[yi, xi] * wx * wy
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    out[~inside] = 150
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def turn(pixels: Pixels, amount: float) -> Pixels:
    """A synthetic head turn: positive to the candidate's left (the nose moves towards the
    image's right), ``amount`` in jaw widths at the nose tip."""
    found = faces.locate_faces(pixels)  # the detector whose landmarks the check reads
    assert len(found) == 1
    lm = found[0].landmarks
    jaw = JAW_PER_EYE * float(np.linalg.norm(lm[lmk.EYE_R] - lm[lmk.EYE_L]))
    cx, cy = lm[lmk.NOSE]
    h, w = pixels.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    weight = np.exp(-(((xx - cx) / (0.30 * jaw)) ** 2) - ((yy - cy) / (0.45 * jaw)) ** 2)
    # Inverse map: each output pixel takes the source pixel the shift would have brought here.
    return _sample(pixels, xx - amount * jaw * weight, yy)


def held(
    pixels: Pixels, dx: float = 0, dy: float = 0, zoom: float = 1.0, roll_deg: float = 0.0
) -> Pixels:
    """The picture moved, zoomed and tilted in the image plane, as a hand holding a photo."""
    h, w = pixels.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = w / 2 + dx, h / 2 + dy
    a = np.deg2rad(roll_deg)
    c, s = np.cos(a), np.sin(a)
    ux, uy = (xx - cx) / zoom, (yy - cy) / zoom
    return _sample(pixels, c * ux + s * uy + w / 2, -s * ux + c * uy + h / 2)


def slanted(pixels: Pixels, degrees: float, distance: float = 1.6) -> Pixels:
    """A flat photo rotated about its vertical axis in front of a pinhole camera: the near
    side grows, the far side shrinks (a perspective view, not an affine one).

    ``distance`` is the camera's distance in image widths: 1.6 is a photo held at arm's
    length filling most of the frame, close enough for a strong perspective."""
    h, w = pixels.shape[:2]
    f = distance * w
    a = np.deg2rad(degrees)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = xx - w / 2, yy - h / 2
    # A ray through image point (u, v) meets the rotated plane at plane coordinate (X, Y).
    denom = f * np.cos(a) - u * np.sin(a)
    x_plane = u * f / denom
    y_plane = v * (f + x_plane * np.sin(a)) / f
    return _sample(pixels, x_plane + w / 2, y_plane + h / 2)


# Nose shifts, in jaw widths, of the frames captured during one step: from frontal out to a
# clear turn and back, as a person following the prompt would.
TURN_PATH = (0.0, 0.12, 0.24, 0.3, 0.2, 0.05)


def step_frames(base: Pixels, step: str) -> list[bytes]:
    sign = 1.0 if step == "left" else -1.0
    return [jpeg(turn(base, sign * a) if a else base, 85) for a in TURN_PATH]


def challenge_frames(base: Pixels, steps: list[str]) -> list[bytes]:
    return [frame for step in steps for frame in step_frames(base, step)]


def person_in_room(
    photo: Pixels, x: int, height: int = 300, width: int = 640, frame_height: int = 480
) -> Pixels:
    """The photo as a person in front of a still room (empty.jpg): an oval cut-out of it,
    ``height`` px tall, its left edge at ``x``, its bottom on the frame's. Moving ``x`` moves
    the person and nothing else, as a candidate shifting in front of a laptop's camera does."""
    room = Image.open(FACES / "empty.jpg").convert("RGB").resize((width, frame_height))
    person = Image.fromarray(photo)
    person = person.resize((round(person.width * height / person.height), height))
    oval = Image.new("L", person.size, 0)
    ImageDraw.Draw(oval).ellipse((0, 0, person.width - 1, person.height * 1.4), fill=255)
    room.paste(person, (x, frame_height - height), oval.filter(ImageFilter.GaussianBlur(4)))
    return np.asarray(room, dtype=np.uint8)
