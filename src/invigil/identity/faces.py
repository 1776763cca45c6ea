"""Face detection and 128-d face embeddings for face login and photo enrolment.

Built on dlib: the HOG frontal-face detector, the 5-point landmark model and the ResNet
embedding shipped by ``face_recognition_models``. How the two thresholds below were chosen,
with the measurements, is in ``docs/face-threshold.md``; ``bench/face_threshold.py``
re-measures them.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

__all__ = [
    "DETECTION_SCORE_MIN",
    "MATCH_THRESHOLD",
    "FaceError",
    "LocatedFace",
    "cnn_face_count",
    "decode",
    "embed_located",
    "embed_single_face",
    "embedding_from_bytes",
    "embedding_to_bytes",
    "face_distance",
    "locate_faces",
    "warm_up",
]

# Measured on the test photos (docs/face-threshold.md): one person across different photos,
# including webcam-like degradations, 0.32-0.51; different people 0.62-0.98. 0.52 accepts every
# measured same-person pair yet stays under 0.55, where dlib has put different Asian women, so
# it is lower than dlib's customary 0.6. Re-measure on real enrolment data.
MATCH_THRESHOLD: float = 0.52

# Real faces, webcam-like degradations included, score 0.42-2.3 without upsampling; badges
# mostly 0.0-0.2 (a few very face-like smileys up to 0.7, which no score can separate). 0.3
# keeps a margin below the weakest real face. A mask over nose and mouth drops a real face
# below it as well (0.06-0.21), which is wanted: an enrolment photo must show the whole face.
DETECTION_SCORE_MIN: float = 0.3

EMBEDDING_SIZE = 128

# Faces in a webcam frame or a portrait are far larger than HOG's 80 px window, so working at
# this size costs no detections and keeps detection at 25-40 ms even for phone-camera photos.
_MAX_SIDE = 800
# Upper bound on decoded pixels, so a small PNG that inflates to a huge bitmap cannot exhaust
# memory. JPEGs are decoded at reduced scale (draft mode) before this check applies.
_MAX_PIXELS = 40_000_000
_FORMATS = ("JPEG", "PNG", "WEBP")

_MESSAGES = {
    "no_face": "未检测到人脸，请正对摄像头，保持光线充足，不要遮挡面部（包括口罩）。",
    "multiple_faces": "检测到多张人脸，请确保画面中只有您一个人。",
    "bad_image": "无法读取这张图片，请重新拍摄，或上传 JPEG/PNG 格式的照片。",
}

# The candidate-facing sentences, for callers that raise these codes themselves.
MESSAGES = _MESSAGES

Embedding = npt.NDArray[np.float64]


class FaceError(Exception):
    """A photo that cannot be used; ``message`` is meant to be shown to the candidate."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"FaceError({self.code!r}, {self.message!r})"


def _fail(code: str) -> FaceError:
    return FaceError(code, _MESSAGES[code])


@dataclass(frozen=True)
class _Models:
    detector: Any
    predictor: Any
    encoder: Any


_models: _Models | None = None
# dlib's detector loads each image's feature pyramid into the detector object itself and the
# ResNet keeps activations in its layers, so neither may be used by two threads at once. One
# set guarded by a lock rather than one set per thread: the embedding holds the GIL anyway
# (measured: two threads take as long as serial calls), and each set costs about 35 MB.
# Parallelism comes from process pools, hence warm_up().
_lock = threading.Lock()


def _model_dir() -> Path:
    # find_spec does not execute the package, whose __init__ imports pkg_resources.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package face_recognition_models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _load_locked() -> _Models:
    global _models
    if _models is None:
        folder = _model_dir()
        _models = _Models(
            detector=dlib.get_frontal_face_detector(),
            predictor=dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
            encoder=dlib.face_recognition_model_v1(
                str(folder / "dlib_face_recognition_resnet_model_v1.dat")
            ),
        )
    return _models


def warm_up() -> None:
    """Load the models now instead of on the first photo (about 0.4 s)."""
    with _lock:
        _load_locked()


def _decode(image: bytes) -> npt.NDArray[np.uint8]:
    try:
        with Image.open(io.BytesIO(image), formats=_FORMATS) as img:
            img.draft("RGB", (_MAX_SIDE, _MAX_SIDE))
            if img.width * img.height > _MAX_PIXELS:
                raise _fail("bad_image")
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:
                # A readable photo with a mangled EXIF block is still worth trying sideways.
                oriented = img
            upright = oriented.convert("RGB")
        upright.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(upright, dtype=np.uint8)
    except FaceError:
        raise
    except Exception as exc:
        # Whatever a decoder throws on hostile or truncated bytes, the photo is unusable.
        raise _fail("bad_image") from exc


@dataclass(frozen=True)
class _Detected:
    counted: list[tuple[Any, float]]  # (dlib rectangle, score), best first
    rejected: float | None  # the best score below DETECTION_SCORE_MIN (a badge, a mask)
    upsampled: bool


def _detect_locked(models: _Models, pixels: npt.NDArray[np.uint8]) -> _Detected:
    # Upsampling finds faces down to ~40 px but costs four times as much, so it is only
    # paid for when the plain pass found nothing that counts.
    rejected: float | None = None
    for upsample in (0, 1):
        rects, scores, _ = models.detector.run(pixels, upsample, 0.0)
        counted = []
        for rect, score in zip(rects, scores, strict=True):
            if score >= DETECTION_SCORE_MIN:
                counted.append((rect, float(score)))
            elif rejected is None or score > rejected:
                rejected = float(score)
        if counted:
            counted.sort(key=lambda pair: -pair[1])
            return _Detected(counted, rejected, upsample == 1)
    return _Detected([], rejected, True)


def embed_single_face(image: bytes) -> Embedding:
    """Return the 128-d embedding of the only face in a JPEG/PNG/WebP photo.

    Raises FaceError with code ``bad_image``, ``no_face`` or ``multiple_faces``.
    """
    pixels = _decode(image)
    with _lock:
        models = _load_locked()
        faces = _detect_locked(models, pixels).counted
        if not faces:
            raise _fail("no_face")
        if len(faces) > 1:
            raise _fail("multiple_faces")
        shape = models.predictor(pixels, faces[0][0])
        descriptor = models.encoder.compute_face_descriptor(pixels, shape)
    return np.array(descriptor, dtype=np.float64).reshape(EMBEDDING_SIZE)


def face_distance(a: Embedding, b: Embedding) -> float:
    """Euclidean distance; at most MATCH_THRESHOLD means the same person."""
    if a.shape != b.shape:
        raise ValueError(f"embedding shapes differ: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b))


def embedding_to_bytes(e: Embedding) -> bytes:
    """512 bytes, little-endian float32: the precision dropped is far below the match margin."""
    if e.shape != (EMBEDDING_SIZE,):
        raise ValueError(f"expected a {EMBEDDING_SIZE}-d embedding, got shape {e.shape}")
    return np.asarray(e, dtype="<f4").tobytes()


def embedding_from_bytes(b: bytes) -> Embedding:
    if len(b) != EMBEDDING_SIZE * 4:
        raise ValueError(f"expected {EMBEDDING_SIZE * 4} bytes, got {len(b)}")
    return np.frombuffer(b, dtype="<f4").astype(np.float64)


# --- landmarks and detector-level detail (quality gate, liveness) ------------------------------

LandmarkArray = npt.NDArray[np.float64]
Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class LocatedFace:
    """One HOG detection with its 68 landmarks (dlib's iBUG numbering: 0-16 jaw from the
    image's left, 27-35 nose with 30 its tip, 36-41 / 42-47 the eyes)."""

    box: tuple[int, int, int, int]  # left, top, right, bottom; may reach outside the image
    score: float
    landmarks: LandmarkArray  # (68, 2) x, y in pixels


_predictor68: Any = None
_cnn: Any = None


def decode(image: bytes) -> Pixels:
    """The photo as upright RGB pixels, at most 800 px a side; FaceError ``bad_image``."""
    return _decode(image)


def locate_faces(pixels: Pixels) -> list[LocatedFace]:
    """Every face HOG finds with a score of at least DETECTION_SCORE_MIN, with 68 landmarks."""
    global _predictor68
    with _lock:
        models = _load_locked()
        if _predictor68 is None:
            _predictor68 = dlib.shape_predictor(
                str(_model_dir() / "shape_predictor_68_face_landmarks.dat")
            )
        found = []
        for rect, score in _detect_locked(models, pixels).counted:
            shape = _predictor68(pixels, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            found.append(LocatedFace(box, score, points))
    return found


def embed_located(pixels: Pixels, face: LocatedFace) -> Embedding:
    """The embedding of a face already located (skips a second detection)."""
    left, top, right, bottom = face.box
    with _lock:
        models = _load_locked()
        rect = dlib.rectangle(left, top, right, bottom)
        shape = models.predictor(pixels, rect)
        descriptor = models.encoder.compute_face_descriptor(pixels, shape)
    return np.array(descriptor, dtype=np.float64).reshape(EMBEDDING_SIZE)


def cnn_face_count(pixels: Pixels, min_confidence: float = 0.5) -> int:
    """Faces dlib's CNN (MMOD) detector finds. It still finds a face behind a mask or a hand,
    where HOG's score collapses, but costs about 2 s a frame on one core: call it only to
    explain a frame HOG found empty."""
    global _cnn
    with _lock:
        if _cnn is None:
            _cnn = dlib.cnn_face_detection_model_v1(
                str(_model_dir() / "mmod_human_face_detector.dat")
            )
        found = _cnn(pixels, 0)
    return sum(1 for d in found if float(d.confidence) >= min_confidence)


@dataclass(frozen=True)
class Scan:
    """One frame as the snapshot analysis sees it."""

    scores: list[float]  # counted faces, best first
    rejected_score: float | None  # the best detection that did not count, or None
    upsampled: bool
    embedding: Embedding | None  # of the only counted face, when asked for


def scan(pixels: Pixels, *, embed: bool) -> Scan:
    """Detection (with the rejected detections' best score) and, when ``embed`` and exactly one
    face counts, its embedding, under one hold of the models."""
    embedding: Embedding | None = None
    with _lock:
        models = _load_locked()
        found = _detect_locked(models, pixels)
        if embed and len(found.counted) == 1:
            shape = models.predictor(pixels, found.counted[0][0])
            descriptor = models.encoder.compute_face_descriptor(pixels, shape)
            embedding = np.array(descriptor, dtype=np.float64).reshape(EMBEDDING_SIZE)
    return Scan([score for _, score in found.counted], found.rejected, found.upsampled, embedding)
