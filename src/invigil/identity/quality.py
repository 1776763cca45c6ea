"""The face-login quality gate: is the live photo fit to be compared at all?

The exam rules ask for a frontal face, uncovered (no mask, ears not hidden), wholly in the
frame, well lit and without filters or beauty effects. Each rule is one measurement on the
photo and its five landmarks (eyes, nose tip, mouth corners: licence-clean, see
``identity.landmarks``) and one threshold; a failure names the rule so the candidate knows
what to change. The thresholds, and the measurements on real photos and on the fake-camera
frames they were chosen from, are in ``docs/liveness.md``; ``tests/identity/measure.py``
re-measures them. They are set to refuse clear cases only: a refused honest candidate costs
more than a borderline photo, which the identity match still judges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from invigil.identity import faces
from invigil.identity import landmarks as lmk
from invigil.identity.faces import FaceError, LocatedFace, Pixels
from invigil.identity.landmarks import Landmarks, yaw_of

__all__ = [
    "MESSAGES",
    "Measures",
    "check_photo",
    "measure",
    "yaw_of",
]

MESSAGES = {
    "face_not_frontal": "请正对摄像头：脸部没有朝向正前方，请勿侧脸。",
    "face_covered": "检测到面部被遮挡：请摘下口罩，移开手或其他遮挡物，露出完整的脸部和双耳。",
    "face_cut_off": "脸部没有完整在画面内：请把整张脸（包括额头、下巴和双耳）放在画面中央。",
    "too_dark": "光线太暗：请打开灯或面向光源，避免背光，再重试。",
    "low_quality": "画面不够清晰：请关闭美颜、滤镜等特效，擦拭镜头，保持不动后重试。",
}

# |yaw| (see landmarks.yaw_of, in eye distances) of a frontal photo. Measured in
# docs/liveness.md: the real photos 0.00-0.20 (obama2, visibly turned), a synthetic turn of
# 0.3 jaw widths 0.40.
FRONTAL_YAW_MAX = 0.3
# Mean luma (0-255) of the inner face. Real photos 94-166; obama2 dimmed to 30 % measures 36,
# to 25 % 30; a gamma of 3 (a dim room) still 46.
DARK_LUMA_MIN = 40.0
# Detail: the standard deviation of a Laplacian over the inner face scaled to a 160 px-wide
# crop, relative to the crop's contrast (so dim light does not read as blur). Heavy blur and
# smearing measure low, mild smoothing does not (docs/liveness.md).
SHARPNESS_MIN = 0.2
# The head region that must lie inside the frame, in eye distances from the point between the
# eyes (eye-line coordinates): ear to ear, the forehead above the brows, the chin below the
# mouth. Anthropometric proportions: the head is about 2.4 eye distances wide.
HEAD_HALF_WIDTH = 1.2
FOREHEAD = 0.6
CHIN_BELOW_MOUTH = 0.5
# How far that region may still reach outside before the face counts as cut off, in eye
# distances (docs/liveness.md).
CUT_TOLERANCE = 0.25
# A mask over nose and mouth: see faces.COVER_CHROMA_MAX.
COVER_CHROMA_MAX = faces.COVER_CHROMA_MAX

_CROP_WIDTH = 160


@dataclass(frozen=True)
class Measures:
    yaw: float
    luma: float
    sharpness: float
    # Chroma distance between the lower face and the skin between the eyes.
    lower_face_chroma: float
    # How far the head region reaches outside the frame, in eye distances (0 when inside).
    outside: float


def _fail(code: str) -> FaceError:
    return FaceError(code, MESSAGES[code])


def _gray(pixels: Pixels) -> npt.NDArray[np.float64]:
    rgb = pixels.astype(np.float64)
    return np.asarray(rgb @ np.array([0.299, 0.587, 0.114]), dtype=np.float64)


def _inner_face(gray: npt.NDArray[np.float64], points: Landmarks) -> npt.NDArray[np.float64]:
    """From just above the eyes to the mouth, a little beyond the eyes sideways: skin, eyes,
    nose, mouth, never background or hair."""
    h, w = gray.shape
    d = float(np.linalg.norm(points[lmk.EYE_R] - points[lmk.EYE_L])) or 1.0
    x0 = int(max(0, np.floor(points[:, 0].min() - 0.2 * d)))
    x1 = int(min(w, np.ceil(points[:, 0].max() + 0.2 * d)))
    y0 = int(max(0, np.floor(points[[lmk.EYE_L, lmk.EYE_R], 1].min() - 0.3 * d)))
    y1 = int(min(h, np.ceil(points[[lmk.MOUTH_L, lmk.MOUTH_R], 1].max() + 0.1 * d)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return gray[:1, :1]
    return gray[y0:y1, x0:x1]


def _sharpness(region: npt.NDArray[np.float64]) -> float:
    h, w = region.shape
    if h < 8 or w < 8:
        return 0.0
    # Scaled to a fixed width so the measure does not depend on how close the candidate sits;
    # box filtering when shrinking so sensor noise does not alias into "detail".
    height = max(8, round(h * _CROP_WIDTH / w))
    img = Image.fromarray(np.clip(region, 0, 255).astype(np.uint8))
    crop = np.asarray(img.resize((_CROP_WIDTH, height), Image.Resampling.BOX), dtype=np.float64)
    lap = (
        -4 * crop[1:-1, 1:-1] + crop[:-2, 1:-1] + crop[2:, 1:-1] + crop[1:-1, :-2] + crop[1:-1, 2:]
    )
    return float(lap.std() / (crop.std() + 1.0))


def _outside(points: Landmarks, shape: tuple[int, ...]) -> float:
    p = lmk.eye_line(points)
    mouth = max(p[lmk.MOUTH_L, 1], p[lmk.MOUTH_R, 1])
    corners_eye = np.array(
        [
            [-HEAD_HALF_WIDTH, -FOREHEAD],
            [HEAD_HALF_WIDTH, -FOREHEAD],
            [-HEAD_HALF_WIDTH, mouth + CHIN_BELOW_MOUTH],
            [HEAD_HALF_WIDTH, mouth + CHIN_BELOW_MOUTH],
        ]
    )
    # Back to image coordinates: the inverse of landmarks.eye_line.
    left, right = points[lmk.EYE_L], points[lmk.EYE_R]
    dx, dy = right - left
    d = float(np.hypot(dx, dy)) or 1.0
    angle = np.arctan2(dy, dx)
    c, s = np.cos(angle), np.sin(angle)
    corners = (corners_eye * d) @ np.array([[c, -s], [s, c]]).T + (left + right) / 2
    h, w = shape[:2]
    over = np.concatenate(
        [-corners[:, 0], corners[:, 0] - (w - 1), -corners[:, 1], corners[:, 1] - (h - 1)]
    )
    return float(max(0.0, over.max()) / d)


def measure(pixels: Pixels, face: LocatedFace) -> Measures:
    points = face.landmarks
    inner = _inner_face(_gray(pixels), points)
    return Measures(
        yaw=lmk.yaw_of(points),
        luma=float(inner.mean()),
        sharpness=_sharpness(inner),
        lower_face_chroma=lmk.lower_face_chroma(pixels, points),
        outside=_outside(points, pixels.shape),
    )


def check_photo(image: bytes) -> tuple[Pixels, LocatedFace, Measures]:
    """The face login's photo, located and checked against the exam rules.

    Raises FaceError: ``bad_image``, ``no_face``, ``multiple_faces`` as before, and
    ``face_covered``, ``face_cut_off``, ``face_not_frontal``, ``too_dark``, ``low_quality``.
    """
    pixels = faces.decode(image)
    found = faces.locate_faces(pixels)
    if not found:
        raise faces.FaceError("no_face", faces.MESSAGES["no_face"])
    if len(found) > 1:
        raise faces.FaceError("multiple_faces", faces.MESSAGES["multiple_faces"])
    face = found[0]
    m = measure(pixels, face)
    if m.outside > CUT_TOLERANCE:
        raise _fail("face_cut_off")
    if m.luma < DARK_LUMA_MIN:
        raise _fail("too_dark")
    if m.lower_face_chroma > COVER_CHROMA_MAX:
        raise _fail("face_covered")
    if abs(m.yaw) > FRONTAL_YAW_MAX:
        raise _fail("face_not_frontal")
    if m.sharpness < SHARPNESS_MIN:
        raise _fail("low_quality")
    return pixels, face, m
