"""Per-frame facts of one snapshot: light, faces with their detector scores, identity distance.

Most of an exam's snapshots show what the previous one showed, so the work is graded by what
can change the answer (docs/benchmarks.md has the cost of each step):

1. a 32x24 grey thumbnail (a JPEG decoded at an eighth of its size: a fraction of a
   millisecond) is compared with the last *detected* frame of the same stream; when nothing
   moved, and that frame is not older than ``MAX_SKIP_SECONDS``, its facts are copied
   (``unchanged``);
2. otherwise the frame is decoded at half size; a uniform frame (a lens taped over) stops after
   the light measurement (``light``);
3. the detector (libfacedetection, about 10 ms) counts the faces (``detected``); when only
   part of the picture moved since the last detected frame (the candidate shifted in front of
   a still room), it looks only there and at that frame's faces (``region``: a region of a
   third of the frame costs a quarter), since what did not move cannot hold a face that was
   not there before (the same premise as step 1);
4. only the desk webcam, with exactly one face and an enrolled candidate, may be embedded
   (dlib's ResNet, about 70 ms): on the stream's first such frame, when the face count changed
   or the face box jumped since the last detected frame, and at least every ``embed_every``
   detected frames; otherwise the last distance is carried (``embedded`` vs ``detected``).

The state this needs is the previous rows of the stream (their thumbnail, boxes, distance and
frame count since the last embedding), read from the database, so several worker processes
can analyse one stream's snapshots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import cv2
import numpy as np
import numpy.typing as npt

from invigil.identity import faces
from invigil.identity.faces import Embedding

# A frame this uniform (a lens taped over, a black frame) has nothing for a detector to find.
_UNIFORM = 2.0
THUMB_SIZE = (32, 24)
# Compared in 4x4-pixel blocks of the thumbnail (80x80 px of a 640x480 frame): the largest
# block's mean absolute difference (0-255) must reach this for the frame to count as moved. A
# mean over the whole frame would miss a small face appearing in a corner. Measured
# (docs/accuracy.md): the same scene with sensor noise and JPEG quality 60-80 at most 1.0; the
# candidate 2 px to the side 8.6; a 60 px face appearing in a corner 21; someone else 109.
MOTION_MIN = 4.0
# However still the picture, the detector runs at least this often on each stream, and on the
# whole frame at least this often (a region detection, like an unchanged frame, relies on the
# last detected frame).
MAX_SKIP_SECONDS = 60.0
# Region detection: blocks that differ by at least this much (half of MOTION_MIN; sensor noise
# and JPEG measured at most 1.0) count as moved; the region is their bounding box and the last
# detected frame's face boxes, grown by half a block on every side (a face reaching out of a
# moved block is seen whole, with the context the detector needs). A region over this share of
# the frame is not worth it: the whole frame is detected.
REGION_MOTION = MOTION_MIN / 2
REGION_MAX_SHARE = 0.6
# The detector's coarsest stride: a region starting on its grid sees a face through the same
# cells as the whole frame does, so it gives it the same score (off the grid, the scores of a
# small face moved by up to 0.2 either way, across the counting threshold).
_DETECTOR_STRIDE = 32
# Blocks of the thumbnail compared: 4x4 pixels of 32x24, so 8 across and 6 down.
_BLOCK = 4
# A face box whose centre moved by more than this share of its width, or whose width changed
# by more than this share, since the last detected frame: someone else may have sat down.
BOX_JUMP = 0.35
# Faces narrower than this (pixels of the decoded frame) are counted but not embedded: the
# network aligns faces to 150 px chips, and the candidate's own face 31 px wide (a 160 px frame
# at JPEG quality 30) measured 0.55 from the enrolment photo, over the threshold, where 60 px
# measured 0.50 (docs/accuracy.md). A candidate that far from the camera is asked to come
# closer by the proctor, not judged on identity.
MIN_EMBED_WIDTH = 40

Thumb = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class FrameFacts:
    brightness: float  # mean luma, 0..255
    contrast: float  # standard deviation of luma
    covered: bool
    scores: list[float] = field(default_factory=list)  # counted faces, best first
    # The best detection below DETECTION_SCORE_MIN, or None.
    rejected_score: float | None = None
    distance: float | None = None
    elapsed_ms: float = 0.0
    method: str = "detected"
    thumb: bytes | None = None
    boxes: list[list[int]] = field(default_factory=list)
    face_covered: bool = False
    since_embedding: int | None = None
    # The stream's last whole-frame detection behind these facts (see MAX_SKIP_SECONDS).
    whole_at: datetime | None = None

    @property
    def faces(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class Previous:
    """The stream's last detected frame (not an ``unchanged`` copy), as stored."""

    taken_at: datetime
    facts: FrameFacts

    @property
    def whole_at(self) -> datetime:
        # Rows stored before region detection carry none: every detection then was whole.
        return self.facts.whole_at or self.taken_at


def thumbnail(image: bytes) -> Thumb | None:
    gray = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if gray is None:
        return None
    return np.asarray(cv2.resize(gray, THUMB_SIZE, interpolation=cv2.INTER_AREA), np.uint8)


def block_motion(a: Thumb, b: bytes) -> npt.NDArray[np.float64] | None:
    """Each 4x4 block's mean absolute difference between two thumbnails (6 rows of 8), or
    None when they cannot be compared."""
    other = np.frombuffer(b, np.uint8)
    if other.size != a.size:
        return None
    w, h = THUMB_SIZE
    diff = np.abs(a.astype(np.int16) - other.astype(np.int16).reshape(h, w))
    return np.asarray(diff.reshape(h // _BLOCK, _BLOCK, w // _BLOCK, _BLOCK).mean(axis=(1, 3)))


def motion(a: Thumb, b: bytes) -> float:
    """The largest 4x4-block mean absolute difference between two thumbnails."""
    blocks = block_motion(a, b)
    return float("inf") if blocks is None else float(blocks.max())


def moved_region(
    blocks: npt.NDArray[np.float64], size: tuple[int, int], faces_before: list[list[int]]
) -> tuple[int, int, int, int] | None:
    """Where the detector must look in a frame of ``size`` (width, height): the moved blocks
    and the faces of the last detected frame (in this frame's pixels), grown by half a block;
    None when that is most of the frame anyway."""
    width, height = size
    rows, cols = blocks.shape
    bw, bh = width / cols, height / rows
    boxes = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in faces_before]
    moved = np.argwhere(blocks >= REGION_MOTION)
    if len(moved):
        (r0, c0), (r1, c1) = moved.min(axis=0), moved.max(axis=0)
        boxes.append((c0 * bw, r0 * bh, (c1 + 1) * bw, (r1 + 1) * bh))
    if not boxes:
        return None
    mx, my, grid = bw / 2, bh / 2, _DETECTOR_STRIDE
    left = max(0, int(min(b[0] for b in boxes) - mx) // grid * grid)
    top = max(0, int(min(b[1] for b in boxes) - my) // grid * grid)
    right = min(width, -(-int(np.ceil(max(b[2] for b in boxes) + mx)) // grid) * grid)
    bottom = min(height, -(-int(np.ceil(max(b[3] for b in boxes) + my)) // grid) * grid)
    if right <= left or bottom <= top:
        return None
    if (right - left) * (bottom - top) > REGION_MAX_SHARE * width * height:
        return None
    return left, top, right, bottom


def light(bgr: npt.NDArray[np.uint8]) -> tuple[float, float]:
    # Every 2nd pixel of the half-size frame: every 4th of the full frame, as measured.
    luma = cv2.cvtColor(bgr[::2, ::2], cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(luma.mean()), float(luma.std())


def _jumped(box: list[int], before: list[int]) -> bool:
    width = max(1.0, float(before[2] - before[0]))
    dx = (box[0] + box[2] - before[0] - before[2]) / 2
    dy = (box[1] + box[3] - before[1] - before[3]) / 2
    grew = abs((box[2] - box[0]) - width) / width
    return bool(np.hypot(dx, dy) / width > BOX_JUMP or grew > BOX_JUMP)


def _embed_now(facts: FrameFacts, previous: Previous | None, embed_every: int) -> bool:
    """The distance can only have changed if the person can have: see the module doc."""
    if previous is None:
        return True
    before = previous.facts
    if before.faces != 1 or before.since_embedding is None or not before.boxes:
        return True
    if _jumped(facts.boxes[0], before.boxes[0]):
        return True
    return before.since_embedding + 1 >= embed_every


def analyse_frame(
    image: bytes,
    *,
    taken_at: datetime,
    previous: Previous | None,
    embed: bool,
    enrolled: Embedding | None,
    embed_every: int,
    dark_below: float,
    flat_below: float,
) -> FrameFacts:
    """Facts of one JPEG. ``embed``: this stream is checked against ``enrolled``.

    Raises faces.FaceError("bad_image") on bytes that do not decode.
    """
    started = time.process_time()

    def took() -> float:
        # CPU time, not wall time: what the analysis costs the machine (and libfacedetection
        # may use more than the calling thread).
        return (time.process_time() - started) * 1000

    thumb = thumbnail(image)
    if thumb is None:
        raise faces.FaceError("bad_image", faces.MESSAGES["bad_image"])
    blocks = None
    if (
        previous is not None
        and previous.facts.thumb is not None
        and previous.taken_at <= taken_at
        and (taken_at - previous.whole_at).total_seconds() <= MAX_SKIP_SECONDS
    ):
        blocks = block_motion(thumb, previous.facts.thumb)
        if blocks is not None and blocks.max() < MOTION_MIN:
            # The thumbnail stays the detected frame's, so slow drift adds up to a detection.
            return replace(
                previous.facts, method="unchanged", whole_at=previous.whole_at, elapsed_ms=took()
            )

    frame = faces.decode_frame(image)
    brightness, contrast = light(frame.bgr)
    if contrast < _UNIFORM:
        return FrameFacts(
            brightness,
            contrast,
            covered=True,
            method="light",
            thumb=thumb.tobytes(),
            whole_at=taken_at,
            elapsed_ms=took(),
        )
    region, whole_at = None, taken_at
    if blocks is not None and previous is not None:
        height, width = frame.bgr.shape[:2]
        before = [[round(v / frame.to_decoded) for v in box] for box in previous.facts.boxes]
        region = moved_region(blocks, (width, height), before)
        if region is not None:
            whole_at = previous.whole_at
    found = faces.detect(frame.bgr, region)
    located = [f.scaled(frame.to_decoded) for f in found.counted]
    # The light statistics do not mean "covered" while a face is found: the detector still
    # finds faces in a dim room (docs/accuracy.md).
    covered = not located and (brightness < dark_below or contrast < flat_below)
    facts = FrameFacts(
        brightness,
        contrast,
        covered=covered,
        scores=[f.score for f in located],
        rejected_score=found.rejected,
        thumb=thumb.tobytes(),
        boxes=[list(f.box) for f in located],
        # An RGB view, not a copy: the check reads two small regions of the face (copying the
        # whole frame took 0.5 ms, a twentieth of a detected frame's cost).
        face_covered=len(found.counted) == 1
        and faces.is_covered(frame.bgr[:, :, ::-1], found.counted[0]),
        method="detected" if region is None else "region",
        whole_at=whole_at,
    )
    wide = bool(located) and located[0].box[2] - located[0].box[0] >= MIN_EMBED_WIDTH
    if not (embed and enrolled is not None and len(located) == 1 and wide):
        return replace(facts, elapsed_ms=took())
    if _embed_now(facts, previous, embed_every):
        distance = faces.face_distance(faces.embed_frame_face(image, located[0]), enrolled)
        return replace(
            facts, distance=distance, since_embedding=0, method="embedded", elapsed_ms=took()
        )
    assert previous is not None and previous.facts.since_embedding is not None
    return replace(
        facts,
        distance=previous.facts.distance,
        since_embedding=previous.facts.since_embedding + 1,
        elapsed_ms=took(),
    )
