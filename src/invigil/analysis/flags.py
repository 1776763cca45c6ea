"""Flag rules over the recent analysed snapshots of one attempt's stream.

Each analysed frame shows at most one condition per stream (a covered camera is not also "no
face"). Two kinds of rule turn conditions into flags:

- sustained (``no_face``, ``camera_covered``, ``candidate_out_of_view``): every snapshot of the
  latest run shows the condition and the run spans at least ``seconds``; it ends with the first
  snapshot without it;
- k of n (``multiple_faces``, ``face_mismatch``, ``second_person``): at least ``at_least`` of
  the last ``of_last`` snapshots show it — or the newest alone does with a frame confidence of
  at least ``at_once`` (a group in view, a face far from the candidate's: no reason to wait for
  a second snapshot); it ends when none of the last ``of_last`` does, so a borderline case does
  not flap.

A flag raises one event when it starts (its kind, the configured severity, the snapshot as
evidence, a confidence) and one ``flag_ended`` info event when it ends: a condition that lasts
ten minutes is two events, not 120.

Confidence (0..1) is the mean of a per-frame confidence over the frames that support the flag;
the per-frame functions are anchored on the distributions measured in docs/face-threshold.md and
docs/accuracy.md (see :func:`frame_confidence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.analysis.models import FlagState, SnapshotAnalysis
from invigil.analysis.thresholds import Rule, Thresholds
from invigil.attempts import events
from invigil.core.clock import iso
from invigil.identity.faces import DETECTION_SCORE_MIN

ENDED = "flag_ended"
SUSTAINED = ("no_face", "camera_covered", "candidate_out_of_view", "face_covered")
STREAM_FLAGS = {
    "webcam": ("camera_covered", "no_face", "multiple_faces", "face_covered", "face_mismatch"),
    "evidence": ("camera_covered", "candidate_out_of_view", "second_person"),
}
# Bounds the rows one evaluation reads: 900 s (the longest allowed `seconds`) at one snapshot
# every 5 s is 180.
WINDOW = 200
SHORT_WINDOW = 21  # more than the largest of_last (20)
EVIDENCE_LISTED = 10  # frames named in an event's data

# Anchors of the per-frame confidences (docs/face-threshold.md):
# median distance of one person's different photos (one webcam-degraded) and of different people;
GENUINE_MEDIAN, IMPOSTOR_MEDIAN = 0.39, 0.80
# a detection confidence from which a face is as certain as faces get here (real faces in the
# test frames 0.82-0.95, stray detections below 0.6; docs/accuracy.md).
SURE_SCORE = 0.9


def condition(row: SnapshotAnalysis, stream: str, rules: Thresholds) -> str | None:
    """The one condition a frame shows on its stream, or None when all is well."""
    if not row.readable:
        return None
    if row.covered:
        return "camera_covered"
    if row.faces == 0:
        return "no_face" if stream == "webcam" else "candidate_out_of_view"
    if row.faces > 1:
        return "multiple_faces" if stream == "webcam" else "second_person"
    if stream == "webcam" and row.face_covered:
        # The detector finds masked faces; the rules, not the detector's blind spot, say that
        # a covered face is its own condition (and its distance is not a verdict on identity).
        return "face_covered"
    mismatch = rules["face_mismatch"].distance
    if stream == "webcam" and row.distance is not None and row.distance > mismatch:
        return "face_mismatch"
    return None


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def frame_confidence(flag: str, row: SnapshotAnalysis, rule: Rule) -> float:
    """How sure one frame is of its condition.

    - no face / out of view: 1.0 when the detector found nothing at all, down to 0.5 as the
      best rejected detection nears DETECTION_SCORE_MIN (something face-like was there: a
      badge, a masked or turned face);
    - more than one face: from the second-best face's score, 0.5 at DETECTION_SCORE_MIN to 1.0
      at SURE_SCORE (stray detections stayed below 0.6);
    - mismatch: 0 at the genuine median distance, 1 at the impostor median, linear between (at
      the default threshold 0.52 that is 0.32: just over the line is a weak sign);
    - camera covered: 0.5 at the thresholds, 1.0 for a black or uniform frame;
    - face covered: 1.0 (the colour test has no graded measure worth reporting).
    """
    if flag in ("no_face", "candidate_out_of_view"):
        return 1.0 - 0.5 * _clip((row.rejected_score or 0.0) / DETECTION_SCORE_MIN)
    if flag in ("multiple_faces", "second_person"):
        second = row.scores[1] if len(row.scores) > 1 else DETECTION_SCORE_MIN
        return 0.5 + 0.5 * _clip(
            (second - DETECTION_SCORE_MIN) / (SURE_SCORE - DETECTION_SCORE_MIN)
        )
    if flag == "face_mismatch":
        d = row.distance or 0.0
        return _clip((d - GENUINE_MEDIAN) / (IMPOSTOR_MEDIAN - GENUINE_MEDIAN))
    if flag == "face_covered":
        return 1.0
    if flag == "camera_covered":
        dark = _clip((rule.brightness - row.brightness) / rule.brightness) if rule.brightness else 0
        flat = _clip((rule.contrast - row.contrast) / rule.contrast) if rule.contrast else 0
        return 0.5 + 0.5 * max(dark, flat)
    raise ValueError(flag)


def _sure(flag: str, row: SnapshotAnalysis, rule: Rule) -> bool:
    """One frame is enough: confident of its condition, and for a mismatch also of the face
    itself (a false detection in an empty room is far from every enrolled face too)."""
    if rule.at_once >= 1.0 or frame_confidence(flag, row, rule) < rule.at_once:
        return False
    return flag != "face_mismatch" or (bool(row.scores) and row.scores[0] >= SURE_SCORE)


@dataclass(frozen=True)
class Verdict:
    starts: bool
    ends: bool
    support: list[SnapshotAnalysis]


def judge(
    flag: str, rule: Rule, recent: Sequence[SnapshotAnalysis], shown: list[str | None]
) -> Verdict:
    """``recent`` newest first, ``shown[i]`` the condition of ``recent[i]``."""
    if flag in SUSTAINED:
        run: list[SnapshotAnalysis] = []
        for row, cond in zip(recent, shown, strict=True):
            if cond != flag:
                break
            run.append(row)
        lasted = (run[0].taken_at - run[-1].taken_at).total_seconds() if run else -1.0
        return Verdict(starts=bool(run) and lasted >= rule.seconds, ends=not run, support=run)
    window = list(zip(recent[: rule.of_last], shown[: rule.of_last], strict=True))
    support = [row for row, cond in window if cond == flag]
    sure = bool(support) and support[0] is recent[0] and _sure(flag, recent[0], rule)
    return Verdict(starts=len(support) >= rule.at_least or sure, ends=not support, support=support)


def _frame(row: SnapshotAnalysis) -> dict[str, Any]:
    out: dict[str, Any] = {"snapshot_id": row.snapshot_id, "at": iso(row.taken_at)}
    out["faces"] = row.faces
    if row.scores:
        out["scores"] = [round(s, 3) for s in row.scores]
    if row.distance is not None:
        out["distance"] = round(row.distance, 4)
    if row.rejected_score is not None:
        out["rejected_score"] = round(row.rejected_score, 3)
    if row.covered:
        out["brightness"], out["contrast"] = round(row.brightness, 1), round(row.contrast, 1)
    return out


def _nothing_can_change(
    current: SnapshotAnalysis, active: dict[str, Any], rules: Thresholds
) -> bool:
    """Whether the rules' verdicts are known without reading the stream's window (most
    snapshots: the candidate is there and nothing is flagged).

    A flag can only start on a frame that shows its condition (a sustained run must reach the
    newest frame, and a k-of-n count does not grow with a frame that does not show it), and an
    active flag can only end through a window read, unless it is a sustained one whose
    condition the frame still shows. So when the frame shows nothing and nothing is active, or
    shows the one active flag's (sustained) condition, no event can follow."""
    shown = condition(current, current.stream, rules)
    if not active:
        return shown is None
    if any(not rules[flag].enabled for flag in active):
        return False
    return list(active) == [shown] and shown in SUSTAINED


def evaluate(
    session: Session, current: SnapshotAnalysis, rules: Thresholds, now: datetime
) -> list[str]:
    """Apply the rules after ``current`` was stored; returns the kinds of the events appended.

    The caller holds the attempt's row lock, so evaluations of one attempt never interleave.
    """
    stream = current.stream
    state = session.get(FlagState, (current.attempt_id, stream))
    if state is None:
        state = FlagState(
            attempt_id=current.attempt_id, stream=stream, last_at=current.taken_at, active={}
        )
        session.add(state)
    elif current.taken_at < state.last_at:
        return []  # analysed late (a retried job): its facts are kept, the flags moved on

    if _nothing_can_change(current, dict(state.active or {}), rules):
        state.last_at = current.taken_at
        return []

    def newest(limit: int) -> list[SnapshotAnalysis]:
        return list(
            session.scalars(
                select(SnapshotAnalysis)
                .where(
                    SnapshotAnalysis.attempt_id == current.attempt_id,
                    SnapshotAnalysis.stream == stream,
                    SnapshotAnalysis.taken_at <= current.taken_at,
                )
                .order_by(SnapshotAnalysis.taken_at.desc(), SnapshotAnalysis.snapshot_id.desc())
                .limit(limit)
            )
        )

    # Most evaluations need only the last few rows: a k-of-n rule looks at of_last (≤ 20) and
    # a sustained run ends at the first frame without its condition. Only a run still going at
    # the end of the short read needs the long one (loading 200 rows every time cost more than
    # the face work of an unchanged frame).
    recent = newest(SHORT_WINDOW)
    if len(recent) == SHORT_WINDOW:
        shown_short = [condition(row, stream, rules) for row in recent]
        if shown_short[-1] in SUSTAINED and len(set(shown_short)) == 1:
            recent = newest(WINDOW)
    shown = [condition(row, stream, rules) for row in recent]
    active = dict(state.active or {})
    appended: list[str] = []
    for flag in STREAM_FLAGS[stream]:
        rule = rules[flag]
        verdict = judge(flag, rule, recent, shown)
        if flag not in active and verdict.starts and rule.enabled:
            support = verdict.support
            confidence = sum(frame_confidence(flag, r, rule) for r in support) / len(support)
            event = events.append(
                session,
                current.attempt_id,
                flag,
                at=now,
                severity=rule.severity,
                data={
                    "snapshot_id": current.snapshot_id,
                    "stream": stream,
                    "confidence": round(confidence, 3),
                    "since": iso(support[-1].taken_at),
                    "frames": [_frame(r) for r in support[:EVIDENCE_LISTED]],
                    "rule": rule.as_data(),
                },
            )
            active[flag] = {
                "since": iso(support[-1].taken_at),
                "seq": event.seq,
                "snapshot_id": current.snapshot_id,
            }
            appended.append(flag)
        elif flag in active and (verdict.ends or not rule.enabled):
            started = active.pop(flag)
            events.append(
                session,
                current.attempt_id,
                ENDED,
                at=now,
                severity="info",
                data={
                    "flag": flag,
                    "stream": stream,
                    "snapshot_id": current.snapshot_id,
                    "started_seq": started["seq"],
                    "since": started["since"],
                },
            )
            appended.append(ENDED)
    state.active = active
    state.last_at = current.taken_at
    return appended
