"""The desk's snapshots show what the cameras see, and a lone, well-lit candidate raises no flag.

The server runs its embedded job worker here (as `invigil serve` does), so every webcam
snapshot is analysed by the real face pipeline while the day goes on. The fake camera shows
obama2.jpg on grey; the enrolment photo is obama.jpg (another photo of the same man)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page
from sqlalchemy import select

from invigil.analysis.models import SnapshotAnalysis
from invigil.attempts.models import Event
from invigil.core.db import transaction
from invigil.recordings.models import Snapshot

from . import flow
from .conftest import Live

FALSE_FLAGS = ("camera_covered", "no_face", "face_mismatch", "multiple_faces")
WEBCAM_SNAPSHOTS = (
    6  # 5 s apart: half a minute, longer than camera_covered's 10 s and no_face's 15 s
)


def _snapshots(live: Live, kind: str) -> list[Snapshot]:
    with transaction(live.ctx.db) as session:
        rows = list(
            session.scalars(
                select(Snapshot).where(Snapshot.kind == kind).order_by(Snapshot.taken_at)
            )
        )
        session.expunge_all()
        return rows


def _analyses(live: Live) -> list[SnapshotAnalysis]:
    with transaction(live.ctx.db) as session:
        rows = list(session.scalars(select(SnapshotAnalysis).order_by(SnapshotAnalysis.taken_at)))
        session.expunge_all()
        return rows


def _luma(jpeg: bytes) -> tuple[tuple[int, int], float, float]:
    """(size, mean luma, luma standard deviation) of a JPEG."""
    img = Image.open(io.BytesIO(jpeg))
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    return img.size, float(grey.mean()), float(grey.std())


def test_lit_snapshots_and_no_false_flags_over_the_day(
    page: Page, live_worker: Live, screens: Path | None
) -> None:
    live = live_worker
    flow.up_to_answering(page, live)
    deadline = time.monotonic() + 60
    while len(_snapshots(live, "webcam")) < WEBCAM_SNAPSHOTS and time.monotonic() < deadline:
        time.sleep(1)
    flow.finish(page)

    webcam = _snapshots(live, "webcam")
    screen = _snapshots(live, "screen")
    assert len(webcam) >= WEBCAM_SNAPSHOTS and len(screen) >= WEBCAM_SNAPSHOTS - 1
    # What a proctor is served: the staff snapshot endpoint, decoded and measured.
    measured: dict[str, list[float]] = {"webcam": [], "screen": []}
    for snap in webcam:
        jpeg = flow.staff_get(live, f"/api/v1/snapshots/{snap.id}").content
        size, mean, std = _luma(jpeg)
        # The fake camera's 640×480 frame: grey (luma 150) around a lit face; black is 0–2.
        assert size == (640, 480), size
        measured["webcam"].append(mean)
        assert mean > 90 and std > 20, (snap.taken_at, mean, std)
    for snap in screen:
        size, mean, std = _luma(live.ctx.blobs.get(snap.blob_key))
        assert size == (960, 540), size  # the 1280×720 screen scaled to 960 wide
        measured["screen"].append(mean)
        assert mean > 20 and std > 5, (snap.taken_at, mean, std)

    # Every webcam snapshot was analysed (so "no flags" below is not vacuous): one face each,
    # close to the enrolled one, nothing dark.
    deadline = time.monotonic() + 60
    while len(_analyses(live)) < len(webcam) and time.monotonic() < deadline:
        time.sleep(0.5)
    analyses = _analyses(live)
    assert len(analyses) == len(webcam), (len(analyses), len(webcam))
    for row in analyses:
        assert row.readable and not row.covered and row.faces == 1, row.__dict__
        assert row.brightness > 60 and row.distance is not None and row.distance < 0.5, row.__dict__
    with transaction(live.ctx.db) as session:
        flagged = list(session.scalars(select(Event.kind).where(Event.kind.in_(FALSE_FLAGS))))
    assert flagged == []
    print(  # the figures behind the thresholds, for the record (pytest -s)
        {k: (len(v), round(min(v), 1), round(max(v), 1)) for k, v in measured.items()},
        "distances",
        sorted({round(r.distance or 0, 3) for r in analyses}),
    )
