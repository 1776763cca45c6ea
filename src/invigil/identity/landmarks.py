"""Geometry of the detector's five facial landmarks, shared by the login quality gate, the
liveness check and snapshot analysis.

The points come from libfacedetection (the ``yuface`` package, BSD-3): in image order, the eye
on the image's left, the eye on the image's right, the nose tip, the mouth corner on the
image's left and the one on the image's right. Four of them (eyes and mouth corners) lie close
to one plane of the face; the nose tip stands out of it, which is what the yaw and parallax
measures read (docs/liveness.md). No point of dlib's 68-point model is used anywhere: that
model is trained on iBUG 300-W, whose terms exclude commercial use.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "EYE_L",
    "EYE_R",
    "MOUTH_L",
    "MOUTH_R",
    "NOSE",
    "PLANE",
    "Landmarks",
    "eye_line",
    "lower_face_chroma",
    "yaw_of",
]

Landmarks = npt.NDArray[np.float64]  # (5, 2) x, y in pixels
Pixels = npt.NDArray[np.uint8]

EYE_L, EYE_R, NOSE, MOUTH_L, MOUTH_R = range(5)
# The four points a homography maps between two views of a flat picture of the face.
PLANE = np.array([EYE_L, EYE_R, MOUTH_L, MOUTH_R])


def eye_line(points: Landmarks) -> Landmarks:
    """Points rotated so the line between the eyes is horizontal, centred between the eyes and
    scaled to an eye distance of 1: a tilted head or a photo held at a slant changes none of
    the ratios read from them."""
    left, right = points[EYE_L], points[EYE_R]
    dx, dy = right - left
    distance = float(np.hypot(dx, dy)) or 1.0
    angle = np.arctan2(dy, dx)
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    return np.asarray(((points - (left + right) / 2) @ rot.T) / distance, dtype=np.float64)


def yaw_of(points: Landmarks) -> float:
    """Where the nose tip sits sideways against the middle of the eyes and of the mouth, in eye
    distances: 0 when frontal, positive when the head turns to the candidate's own left (the
    nose moves towards the right of an unmirrored camera image)."""
    p = eye_line(points)
    middle = (p[EYE_L, 0] + p[EYE_R, 0] + p[MOUTH_L, 0] + p[MOUTH_R, 0]) / 4
    return float(p[NOSE, 0] - middle)


def _chroma(pixels: Pixels, x0: float, x1: float, y0: float, y1: float) -> npt.NDArray[np.float64]:
    h, w = pixels.shape[:2]
    region = pixels[
        int(max(0, y0)) : int(min(h, max(y0 + 1, y1))),
        int(max(0, x0)) : int(min(w, max(x0 + 1, x1))),
    ].reshape(-1, 3)
    if len(region) == 0:
        return np.zeros(2)
    rgb = region.astype(np.float64).mean(axis=0)
    cb = -0.168736 * rgb[0] - 0.331264 * rgb[1] + 0.5 * rgb[2]
    cr = 0.5 * rgb[0] - 0.418688 * rgb[1] - 0.081312 * rgb[2]
    return np.array([cb, cr])


def lower_face_chroma(pixels: Pixels, points: Landmarks) -> float:
    """Distance in the CbCr plane (0-255 scale) between the skin under the nose (down to the
    line of the mouth corners) and the skin between and just above the eyes. ``pixels`` are RGB;
    ``points`` in their coordinates.

    The reference is above the eyes because a mask reaches up to just under them, covering
    the cheeks too. Regions are placed in eye distances so they scale with the face."""
    d = float(np.linalg.norm(points[EYE_R] - points[EYE_L])) or 1.0
    nose_y = points[NOSE, 1]
    mouth_y = (points[MOUTH_L, 1] + points[MOUTH_R, 1]) / 2
    lower = _chroma(pixels, points[MOUTH_L, 0], points[MOUTH_R, 0], nose_y + 0.1 * d, mouth_y)
    eyes = (points[EYE_L] + points[EYE_R]) / 2
    between = _chroma(
        pixels, eyes[0] - 0.25 * d, eyes[0] + 0.25 * d, eyes[1] - 0.4 * d, eyes[1] - 0.05 * d
    )
    return float(np.linalg.norm(lower - between))
