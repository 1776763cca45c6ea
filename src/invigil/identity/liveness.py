"""Liveness at face login: a short random head-turn challenge checked from landmarks and the
picture's own motion.

The server hands out a challenge (a random order of 向左转头 / 向右转头); the desk shows the
prompts and sends the frames it captured, a fixed number per step, in order. A step passes
when one of its frames shows the head turned the asked way compared with the neutral pose, by
two measures that must agree. Both come from where the face's pixels moved (dense optical flow
between the two face crops, each placed by the detector's five landmarks: eyes, nose tip, mouth
corners, see ``identity.landmarks``):

- turn: the nose region moved sideways against the eyes-and-mouth region;
- parallax: the nose region moved against where a flat picture would have put it. The flow of
  the face around the nose (eyes, brows, cheeks, mouth, chin) is fitted by a homography, the
  exact map between two views of any flat picture however held, tilted or slanted; the nose,
  which stands out of the face, misses that fit sideways when a real head turns and stays on
  it when a photo moves.

The landmarks only place the regions. The landmark points themselves cannot carry the parallax
measure: they are a network's regression, which puts the nose of a slanted photo where a
turned head would have it (docs/liveness.md). No point of dlib's 68-point model is used: it is
trained on iBUG 300-W, whose terms exclude commercial use.

The same person must be seen throughout (the most frontal frame of the first and of the last
step against the login photo), with never two faces in a frame and a face in nearly all. Why
these measures and thresholds, with the measurements, and what they do not stop (video
replay, 3-D masks, a screen playing a video, a bent print) are in ``docs/liveness.md``.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from invigil.core.clock import iso
from invigil.identity import faces
from invigil.identity import landmarks as lmk
from invigil.identity.faces import Embedding, FaceError, LocatedFace, Pixels, locate_faces
from invigil.identity.landmarks import yaw_of
from invigil.identity.models import LivenessChallenge

__all__ = [
    "CHALLENGE_SECONDS",
    "FRAMES_PER_STEP",
    "FRAME_INTERVAL_MS",
    "MAX_FRAMES",
    "MAX_FRAME_BYTES",
    "ChallengeError",
    "LivenessFailed",
    "Verdict",
    "check_frames",
    "describe",
    "issue",
    "motion",
    "redeem",
]

STEP_NAMES = {"left": "向左转头", "right": "向右转头"}
# Orders a challenge may ask for. Both directions every time: the measurements showed a flat
# photo slanted far enough to fool the landmark fit reads as a turn to the same side whichever
# way it is slanted, so asking for both sides refuses it as well.
SEQUENCES = (("left", "right"), ("right", "left"))
FRAMES_PER_STEP = 6
FRAME_INTERVAL_MS = 500
# Long enough for the prompts (about 6 s) and a slow upload, short enough that a challenge
# cannot be kept for later.
CHALLENGE_SECONDS = 90
MAX_FRAME_BYTES = 512 * 1024
MAX_FRAMES = FRAMES_PER_STEP * max(len(s) for s in SEQUENCES)

# A step's turn against the neutral pose, in eye distances (docs/liveness.md): synthetic turns
# of obama/obama2/obama3/biden by 0.1 jaw widths already measure turn 0.07-0.11 and parallax
# 0.057-0.084 (0.2: 0.13-0.17 and 0.089-0.126); flat photos shifted, zoomed 0.8-1.15, tilted
# by up to 20 deg and slanted by up to 45 deg in perspective measured parallax 0.003 at worst
# (and turn up to 0.24, which is why turn alone decides nothing).
TURN_MIN = 0.05
PARALLAX_MIN = 0.04
# Frames allowed without a face (a blink of motion blur), across the whole challenge.
MISSING_FACES_MAX = 2
# A face whose eyes are closer than this (pixels) is too small for its motion to be read, and
# so is one less than half or more than twice the neutral pose's size: such a frame shows no
# turn, whichever way it moved.
MIN_EYE_DISTANCE = 16.0
_SIZE_RATIO_MAX = 2.0

# The face crop the motion is read in: eye distance _EYE pixels, the eyes' middle at _MIDDLE.
_EYE = 40.0
_CROP = (160, 160)
_MIDDLE = (80.0, 60.0)
# Regions in eye distances: the nose region is a disc round the nose tip; the plane is the face
# (from the brows to below the mouth, a little wider than eyes and mouth) outside a wider disc.
_NOSE_RADIUS = 0.2
_PLANE_FROM = 0.5
_GRID = 2  # every 2nd pixel of the crop is a flow sample
_RANSAC_PX = 1.0

Landmarks = npt.NDArray[np.float64]


class ChallengeError(Exception):
    """The challenge named in a login cannot be used (unknown, someone else's, used, expired)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LivenessFailed(Exception):
    """The frames did not show a live person doing the challenge; ``message`` says what was
    not seen, ``data`` goes into the event log."""

    def __init__(self, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


@dataclass
class Verdict:
    steps: list[str]
    # Per step: the strongest turn seen the asked way (turn, parallax; eye distances).
    best: list[tuple[float, float]] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    missing: int = 0

    def log_data(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "best": [[round(y, 3), round(p, 3)] for y, p in self.best],
            "distances": [round(d, 4) for d in self.distances],
            "missing_faces": self.missing,
        }


# --- challenges -------------------------------------------------------------------------------


def issue(session: Session, attempt_id: str, now: datetime) -> LivenessChallenge:
    steps = SEQUENCES[secrets.randbelow(len(SEQUENCES))]
    challenge = LivenessChallenge(
        attempt_id=attempt_id,
        steps=",".join(steps),
        created_at=now,
        expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
    )
    session.add(challenge)
    session.flush()
    return challenge


def describe(challenge: LivenessChallenge) -> dict[str, Any]:
    steps = challenge.steps.split(",")
    return {
        "challenge_id": challenge.id,
        "steps": steps,
        "prompts": [STEP_NAMES[s] for s in steps],
        "frames_per_step": FRAMES_PER_STEP,
        "frame_interval_ms": FRAME_INTERVAL_MS,
        "frames": FRAMES_PER_STEP * len(steps),
        "expires_at": iso(challenge.expires_at),
    }


def redeem(
    session: Session, attempt_id: str, challenge_id: str, now: datetime
) -> LivenessChallenge:
    """The challenge, marked used; ChallengeError when it may not be used for this login."""
    challenge = session.get(LivenessChallenge, challenge_id, with_for_update=True)
    if challenge is None or challenge.attempt_id != attempt_id:
        raise ChallengeError(
            "liveness_challenge_invalid", "活体检测无效，请重新点击【人脸登录】开始活体检测。"
        )
    if challenge.used_at is not None:
        raise ChallengeError(
            "liveness_challenge_used", "这次活体检测已经用过，请重新点击【人脸登录】再做一次。"
        )
    challenge.used_at = now
    if now >= challenge.expires_at:
        raise ChallengeError(
            "liveness_challenge_expired",
            "活体检测已超时，请重新点击【人脸登录】，并按提示及时转头。",
        )
    return challenge


# --- the check --------------------------------------------------------------------------------


def _to_crop(points: Landmarks) -> npt.NDArray[np.float64]:
    """The similarity (3x3) that puts the eyes of ``points`` level, _EYE pixels apart, their
    middle at _MIDDLE: the crop both motion measures are read in."""
    left, right = points[lmk.EYE_L], points[lmk.EYE_R]
    dx, dy = right - left
    scale = _EYE / (float(np.hypot(dx, dy)) or 1.0)
    angle = np.arctan2(dy, dx)
    c, s = np.cos(-angle) * scale, np.sin(-angle) * scale
    m = np.eye(3)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:2, 2] = np.asarray(_MIDDLE) - m[:2, :2] @ ((left + right) / 2)
    return m


_flow_engine = threading.local()


def _flow(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Dense optical flow (DIS, OpenCV: an algorithm, no trained model) from ``a`` to ``b``."""
    engine = getattr(_flow_engine, "dis", None)
    if engine is None:
        create = cv2.DISOpticalFlow_create  # type: ignore[attr-defined]
        engine = _flow_engine.dis = create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return np.asarray(engine.calc(a, b, None), dtype=np.float32)


def _gray(pixels: Pixels) -> npt.NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


@dataclass(frozen=True)
class Motion:
    turn: float  # eye distances; positive towards the image's right (the candidate's left)
    parallax: float  # likewise


NO_MOTION = Motion(0.0, 0.0)


def motion(
    reference: Pixels, reference_points: Landmarks, frame: Pixels, frame_points: Landmarks
) -> Motion:
    """How the nose moved between two views of one face (RGB pixels and their five landmarks).

    The frame is brought onto the reference's face crop, first by the landmarks, then by the
    homography the flow of the face outside the nose shows, and the flow is read again: after
    the second pass what is left of a flat picture's motion is noise, and the nose's miss is
    the parallax. Zero for a face too small or too differently sized to be read."""
    d_ref = float(np.linalg.norm(reference_points[lmk.EYE_R] - reference_points[lmk.EYE_L]))
    d = float(np.linalg.norm(frame_points[lmk.EYE_R] - frame_points[lmk.EYE_L]))
    if min(d, d_ref) < MIN_EYE_DISTANCE or max(d / d_ref, d_ref / d) > _SIZE_RATIO_MAX:
        return NO_MOTION
    to_ref = _to_crop(reference_points)
    ref = cv2.warpPerspective(_gray(reference), to_ref, _CROP, flags=cv2.INTER_AREA)
    pts = (np.c_[reference_points, np.ones(5)] @ to_ref.T)[:, :2]
    yy, xx = np.mgrid[0 : _CROP[1] : _GRID, 0 : _CROP[0] : _GRID]
    grid = np.c_[xx.ravel(), yy.ravel()].astype(np.float64)
    from_nose = np.linalg.norm(grid - pts[lmk.NOSE], axis=1) / _EYE
    eyes, mouth = pts[[lmk.EYE_L, lmk.EYE_R]], pts[[lmk.MOUTH_L, lmk.MOUTH_R]]
    face = (
        (grid[:, 0] > pts[:, 0].min() - 0.3 * _EYE)
        & (grid[:, 0] < pts[:, 0].max() + 0.3 * _EYE)
        & (grid[:, 1] > eyes[:, 1].min() - 0.4 * _EYE)
        & (grid[:, 1] < mouth[:, 1].max() + 0.2 * _EYE)
    )
    plane = face & (from_nose > _PLANE_FROM)
    nose = from_nose < _NOSE_RADIUS

    similarity = _to_crop(frame_points)
    aligned = similarity
    gray = _gray(frame)
    for second in (False, True):
        cur = cv2.warpPerspective(gray, aligned, _CROP, flags=cv2.INTER_LINEAR)
        moved = grid + _flow(ref, cur)[yy.ravel(), xx.ravel()]
        fit, _ = cv2.findHomography(grid[plane], moved[plane], cv2.RANSAC, _RANSAC_PX)
        if fit is None:
            return NO_MOTION
        if not second:
            aligned = np.linalg.inv(fit) @ aligned
    predicted = cv2.perspectiveTransform(grid[nose].reshape(-1, 1, 2), fit).reshape(-1, 2)
    parallax = float(np.median(moved[nose, 0] - predicted[:, 0])) / _EYE
    # Where each sample landed in the crop placed by the landmarks alone: the nose's sideways
    # motion against the rest of the face.
    back = similarity @ np.linalg.inv(aligned)
    landed = cv2.perspectiveTransform(moved.reshape(-1, 1, 2), back).reshape(-1, 2) - grid
    turn = float(np.median(landed[nose, 0]) - np.median(landed[plane, 0])) / _EYE
    return Motion(turn, parallax)


def _describe_missing(steps: list[str]) -> str:
    return "、".join(STEP_NAMES[s] for s in steps)


def check_frames(
    steps: list[str],
    frames: list[bytes],
    photo: Pixels,
    reference_embedding: Embedding,
) -> Verdict:
    """Judge the challenge's frames against the login photo (its pixels, already checked and
    matched: ``reference_embedding`` is its embedding).

    Raises LivenessFailed with a message naming what was not seen."""
    verdict = Verdict(steps=steps)
    in_photo = locate_faces(photo)
    if len(in_photo) != 1:
        # The quality gate found one face in it; the frames are judged against that face.
        raise LivenessFailed(
            "活体检测未通过：登录照片中的脸部无法用于转头检测，请正对摄像头、靠近一些后重试。",
            {"reason": "photo_pose", "faces": len(in_photo)},
        )
    reference = in_photo[0]
    expected = FRAMES_PER_STEP * len(steps)
    if len(frames) != expected:
        raise LivenessFailed(
            f"活体检测的画面数量不对（应为 {expected} 张，收到 {len(frames)} 张），请重新开始。",
            {"reason": "frame_count", "frames": len(frames)},
        )
    located: list[tuple[npt.NDArray[np.uint8], LocatedFace] | None] = []
    for data in frames:
        try:
            pixels = faces.decode(data)
        except FaceError:
            located.append(None)
            continue
        found = locate_faces(pixels)
        if len(found) > 1:
            raise LivenessFailed(
                "活体检测未通过：转头过程中画面里出现了多张人脸，请确保镜头前只有您本人。",
                {"reason": "multiple_faces"},
            )
        located.append((pixels, found[0]) if found else None)
    verdict.missing = sum(1 for x in located if x is None)
    if verdict.missing > MISSING_FACES_MAX:
        raise LivenessFailed(
            "活体检测未通过：转头过程中有多张画面没有检测到人脸。请保持脸部在画面内，"
            "转头幅度适中、动作不要太快。",
            {"reason": "no_face", **verdict.log_data()},
        )

    # The neutral pose the turns are measured from: of the login photo and every frame, the
    # one with the median yaw. A person following the prompts spends most frames near it; the
    # login photo alone would do too, unless it happened to be taken mid-movement.
    poses = [(photo, reference)] + [x for x in located if x is not None]
    neutral_pixels, neutral = sorted(poses, key=lambda x: yaw_of(x[1].landmarks))[len(poses) // 2]
    ref_yaw = yaw_of(neutral.landmarks)

    not_seen: list[str] = []
    for i, step in enumerate(steps):
        sign = 1.0 if step == "left" else -1.0
        best = (0.0, 0.0)
        for item in located[i * FRAMES_PER_STEP : (i + 1) * FRAMES_PER_STEP]:
            if item is None:
                continue
            moved = motion(neutral_pixels, neutral.landmarks, item[0], item[1].landmarks)
            turn, par = sign * moved.turn, sign * moved.parallax
            # The weaker of the two measures decides: both must show the turn.
            if min(turn / TURN_MIN, par / PARALLAX_MIN) > min(
                best[0] / TURN_MIN, best[1] / PARALLAX_MIN
            ):
                best = (turn, par)
        verdict.best.append(best)
        if best[0] < TURN_MIN or best[1] < PARALLAX_MIN:
            not_seen.append(step)

    # The same person throughout: in the first and in the last step, the frame nearest the
    # neutral pose against the login photo. Turned frames embed less reliably (and cost 70 ms
    # each); someone taking over for the turns or after them is in one of these two.
    for part in (located[:FRAMES_PER_STEP], located[-FRAMES_PER_STEP:]):
        present = [x for x in part if x is not None]
        if not present:
            continue
        pixels, face = min(present, key=lambda x: abs(yaw_of(x[1].landmarks) - ref_yaw))
        distance = faces.face_distance(reference_embedding, faces.embed_located(pixels, face))
        verdict.distances.append(distance)
    if not verdict.distances or max(verdict.distances) > faces.MATCH_THRESHOLD:
        raise LivenessFailed(
            "活体检测未通过：转头过程中的人脸与登录照片不是同一人。",
            {"reason": "other_person", **verdict.log_data()},
        )
    if not_seen:
        raise LivenessFailed(
            f"活体检测未通过：没有看到您按提示{_describe_missing(not_seen)}。"
            "请在提示出现时把头明显地转向提示的方向（约 30 度），再转回正面。",
            {"reason": "turn_not_seen", "not_seen": not_seen, **verdict.log_data()},
        )
    return verdict
