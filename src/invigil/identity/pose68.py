"""Head pose for the liveness check: dlib's HOG detector and its 68-point landmark model.

This is the one place the 68-point model is still used, and only when an exam asks for
liveness at face login. Its licence matters: the model is trained on the iBUG 300-W data set,
whose terms exclude commercial use, while invigil is Apache-2.0. Everything else (detection,
the login quality gate, snapshot analysis, embeddings) uses licence-clean models.

Why it stays here: the liveness check needs points that lie in one plane of the face to fit a
homography against, with little noise, and a point out of that plane (the nose). Measured in
docs/liveness.md: with the five points of the fast detector (eyes, nose tip, mouth corners), a
flat photo slanted or tilted in front of the camera moved the nose off the plane fit by up to
0.27 eye distances while the synthetic head turns moved it by 0.0-0.19: no threshold separates
them, so a held-up photo would pass or honest turns would fail. The jaw outline and brows of
the 68-point model keep a flat photo under 0.042 jaw widths against turns of 0.046-0.098.
Replacing it needs a licence-clean dense landmark model (e.g. FaceMesh, Apache-2.0, not
available without pinning numpy<2 here) and a re-measurement.
"""

from __future__ import annotations

import threading
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt

from invigil.identity import faces
from invigil.identity.faces import LocatedFace, Pixels

__all__ = ["HOG_SCORE_MIN", "locate_faces", "yaw_of"]

# HOG's score from which a detection counts (badges 0.0-0.2, real faces 0.42-2.3;
# docs/face-threshold.md as measured for HOG).
HOG_SCORE_MIN = 0.3

_lock = threading.Lock()
_models: tuple[Any, Any] | None = None


def _load_locked() -> tuple[Any, Any]:
    global _models
    if _models is None:
        _models = (
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(faces._model_dir() / "shape_predictor_68_face_landmarks.dat")),
        )
    return _models


def locate_faces(pixels: Pixels) -> list[LocatedFace]:
    """Every face HOG finds with a score of at least HOG_SCORE_MIN (with one upsampling pass
    when none is found), each with 68 landmarks (dlib's iBUG numbering: 0-16 jaw from the
    image's left, 27-35 nose with 30 its tip, 36-41 / 42-47 the eyes)."""
    with _lock:
        detector, predictor = _load_locked()
        for upsample in (0, 1):
            rects, scores, _ = detector.run(pixels, upsample, 0.0)
            counted = sorted(
                (
                    (float(score), rect)
                    for rect, score in zip(rects, scores, strict=True)
                    if score >= HOG_SCORE_MIN
                ),
                key=lambda pair: -pair[0],
            )
            if counted:
                break
        found = []
        for score, rect in counted:
            shape = predictor(pixels, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            found.append(LocatedFace(box, score, points))
    return found


def _eye_line(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """68 landmarks rotated so the line between the eye centres is horizontal: tilting the head
    (or a photo held at a slant) then changes none of the ratios read from them."""
    left_eye = points[36:42].mean(axis=0)
    right_eye = points[42:48].mean(axis=0)
    dx, dy = right_eye - left_eye
    angle = np.arctan2(dy, dx)
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    centred = points - (left_eye + right_eye) / 2
    return np.asarray(centred @ rot.T, dtype=np.float64)


def yaw_of(points: npt.NDArray[np.float64]) -> float:
    """Where the nose tip sits between the two sides of the jaw outline (68 landmarks): 0 when
    frontal, positive when the head turns to the candidate's own left."""
    p = _eye_line(points)
    left, right, nose = p[0, 0], p[16, 0], p[30, 0]
    width = right - left
    if width <= 1e-6:
        return 0.0
    return float(2.0 * (nose - left) / width - 1.0)
