"""Liveness at face login: a short random head-turn challenge checked from landmarks.

The server hands out a challenge (a random order of 向左转头 / 向右转头); the desk shows the
prompts and sends the frames it captured, a fixed number per step, in order. A step passes
when one of its frames shows the head turned the asked way compared with the login photo, by
two measures that must agree:

- yaw: the nose tip moved towards that side of the jaw outline (``pose68.yaw_of``);
- parallax: the nose moved against where a flat picture would have put it. The outline, brows
  and eyes of the frame are fitted to the login photo's by a homography (the exact map between
  two views of any flat picture, however held, tilted or slanted); the nose tip, which stands
  out of the face, misses that fit sideways when a real head turns and stays on it when a
  photo moves.

The same person must be seen throughout (the most frontal frame of the first and of the last
step against the login photo), with never two faces in a frame and a face in nearly all. Why these measures and thresholds,
with the measurements, and what they do not stop (video replay, 3-D masks, a screen playing a
video) are in ``docs/liveness.md``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from invigil.core.clock import iso
from invigil.identity import faces
from invigil.identity.faces import Embedding, FaceError, LocatedFace, Pixels
from invigil.identity.models import LivenessChallenge
from invigil.identity.pose68 import locate_faces, yaw_of

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
    "parallax",
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

# A step's turn, against the login photo. Synthetic turns of obama2/obama/biden/obama3 reach
# yaw 0.26-0.56 and parallax 0.046-0.098; flat photos shifted, zoomed, tilted by up to 20 deg
# and slanted by up to 45 deg reached parallax 0.042 at worst (docs/liveness.md).
TURN_YAW_MIN = 0.15
PARALLAX_MIN = 0.05
# Frames allowed without a face (a blink of motion blur), across the whole challenge.
MISSING_FACES_MAX = 2

# Points that a homography maps between two views of a flat face: jaw outline, brows, eyes.
_PLANE_POINTS = np.r_[0:27, 36:48]
# The lower nose: its tip (30) and the nostrils (31-35) stand out of that plane the most.
_NOSE_POINTS = np.r_[30:36]

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
    # Per step: the strongest turn seen the asked way (yaw, parallax).
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


def _normalised(lm: Landmarks) -> Landmarks:
    # Centred and scaled so the homography is fitted on well-conditioned numbers.
    pts = lm[_PLANE_POINTS]
    centre = pts.mean(axis=0)
    scale = float(np.sqrt(((pts - centre) ** 2).sum(axis=1).mean())) or 1.0
    return np.asarray((lm - centre) / scale, dtype=np.float64)


def _homography(src: Landmarks, dst: Landmarks) -> npt.NDArray[np.float64]:
    rows = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u])
        rows.append([0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1].reshape(3, 3)
    return np.asarray(h / h[2, 2], dtype=np.float64)


def parallax(reference: Landmarks, frame: Landmarks) -> float:
    """How far the nose moved sideways against a flat-picture fit of the rest of the face,
    in jaw widths of the frame; positive towards the image's right (the candidate's left).

    Zero (within the landmark noise) for any view of a flat picture; a head turning makes
    the protruding nose miss the fit towards the side it turns to."""
    ref, cur = _normalised(reference), _normalised(frame)
    h = _homography(ref[_PLANE_POINTS], cur[_PLANE_POINTS])
    mapped = np.c_[ref, np.ones(len(ref))] @ h.T
    predicted = mapped[:, :2] / mapped[:, 2:3]
    miss = (cur - predicted)[_NOSE_POINTS].mean(axis=0)
    # Sideways = along the frame's eye line, so a tilted head does not mix in up-down misses.
    eyes = cur[42:48].mean(axis=0) - cur[36:42].mean(axis=0)
    sideways = eyes / (np.linalg.norm(eyes) or 1.0)
    pts = frame[_PLANE_POINTS]
    scale = float(np.sqrt(((pts - pts.mean(axis=0)) ** 2).sum(axis=1).mean()))
    jaw = float(np.linalg.norm(frame[16] - frame[0])) or 1.0
    return float(miss @ sideways) * scale / jaw


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
        # The quality gate's detector found one face where HOG does not: a face too turned or
        # too small for the pose model, which cannot be judged.
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
    poses = [reference.landmarks] + [x[1].landmarks for x in located if x is not None]
    neutral = sorted(poses, key=yaw_of)[len(poses) // 2]
    ref_yaw = yaw_of(neutral)

    not_seen: list[str] = []
    for i, step in enumerate(steps):
        sign = 1.0 if step == "left" else -1.0
        best = (0.0, 0.0)
        for item in located[i * FRAMES_PER_STEP : (i + 1) * FRAMES_PER_STEP]:
            if item is None:
                continue
            lm = item[1].landmarks
            turn = sign * (yaw_of(lm) - ref_yaw)
            par = sign * parallax(neutral, lm)
            # The weaker of the two measures decides: both must show the turn.
            if min(turn / TURN_YAW_MIN, par / PARALLAX_MIN) > min(
                best[0] / TURN_YAW_MIN, best[1] / PARALLAX_MIN
            ):
                best = (turn, par)
        verdict.best.append(best)
        if best[0] < TURN_YAW_MIN or best[1] < PARALLAX_MIN:
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
