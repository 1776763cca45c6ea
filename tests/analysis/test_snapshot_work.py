"""How much work each snapshot costs: unchanged frames copy the last detected frame's facts, the
embedding runs only when it can change the answer, and the flags still come out right. Through
the real path (upload, durable job, stored rows) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from conftest import exam_doc, import_exam
from fastapi.testclient import TestClient
from identity import synth
from PIL import Image
from recordings.conftest import entered
from sqlalchemy import select

from invigil.analysis import frames
from invigil.analysis.models import SnapshotAnalysis
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.jobs import run_due_jobs
from invigil.identity import faces

from .test_snapshot_flags import EVERY, flags_of, post, run

_rng = np.random.default_rng(5)


def _noisy(pixels: np.ndarray, quality: int = 80) -> bytes:
    """Fresh sensor noise every time, as a camera sends it."""
    noisy = np.clip(pixels.astype(np.float64) + _rng.normal(0, 3, pixels.shape), 0, 255)
    return synth.jpeg(noisy.astype(np.uint8), quality)


def camera(name: str, shift: int = 0, quality: int = 80) -> bytes:
    """A webcam frame: the photo on grey."""
    return _noisy(synth.camera_frame(synth.load(name), shift=shift), quality)


def rows(ctx: AppContext, ids: list[str]) -> list[SnapshotAnalysis]:
    with ctx.db.session() as s:
        by_id = {r.snapshot_id: r for r in s.scalars(select(SnapshotAnalysis))}
        for r in by_id.values():
            s.expunge(r)
    return [by_id[i] for i in ids]


def desk_exam(ctx: AppContext, tmp_path: Path, **mismatch: int) -> str:
    doc = exam_doc()
    if mismatch:
        doc["exam"]["flags"] = {"face_mismatch": mismatch}
    return import_exam(ctx, tmp_path / "e", doc)


def test_thumbnail_motion_ignores_noise_and_sees_a_small_face() -> None:
    still = frames.thumbnail(camera("obama2.jpg"))
    assert still is not None
    for quality in (60, 80, 90):
        again = frames.thumbnail(camera("obama2.jpg", quality=quality))
        assert again is not None
        assert frames.motion(again, still.tobytes()) < frames.MOTION_MIN
    moved = frames.thumbnail(camera("obama2.jpg", shift=4))
    assert moved is not None and frames.motion(moved, still.tobytes()) > frames.MOTION_MIN
    # A small face appearing in a corner moves little of the frame, but all of one block.
    img = Image.fromarray(synth.camera_frame(synth.load("obama2.jpg")))
    small = Image.fromarray(synth.load("biden.jpg"))
    small.thumbnail((60, 60))
    img.paste(small, (640 - small.width, 0))
    corner = frames.thumbnail(synth.jpeg(np.asarray(img)))
    assert corner is not None and frames.motion(corner, still.tobytes()) > frames.MOTION_MIN


def test_unchanged_frames_skip_the_detector_up_to_the_maximum_skip_time(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    token, attempt_id = entered(client, clock, desk_exam(app_ctx, tmp_path), "1001")
    ids = run(client, clock, app_ctx, token, "webcam", [camera("obama2.jpg") for _ in range(4)])
    got = rows(app_ctx, ids)
    assert [r.method for r in got] == ["embedded", "unchanged", "unchanged", "unchanged"]
    # The copies carry the detected frame's facts: one face, the candidate's distance.
    assert all(r.faces == 1 and r.distance == got[0].distance for r in got)
    assert all(r.thumb == got[0].thumb for r in got)  # compared with the detected frame
    # However still the picture, the detector runs again after MAX_SKIP_SECONDS.
    clock.advance(timedelta(seconds=frames.MAX_SKIP_SECONDS))
    late = rows(app_ctx, run(client, clock, app_ctx, token, "webcam", [camera("obama2.jpg")]))
    assert late[0].method == "detected" and late[0].since_embedding == 1
    # A moved picture is detected again at once.
    moved = rows(app_ctx, run(client, clock, app_ctx, token, "webcam", [camera("obama2.jpg", 6)]))
    assert moved[0].method == "detected"
    assert flags_of(client, attempt_id) == []


def test_embedding_runs_on_the_first_frame_a_count_change_a_jump_and_every_n(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    token, attempt_id = entered(client, clock, desk_exam(app_ctx, tmp_path, embed_every=3), "1001")
    # The candidate sways a few pixels: every frame moved, none jumped.
    sway = [camera("obama2.jpg", shift=s) for s in (0, 5, 0, 5, 0, 5)]
    got = rows(app_ctx, run(client, clock, app_ctx, token, "webcam", sway))
    assert [r.method for r in got] == ["embedded", "detected", "detected"] * 2
    assert [r.since_embedding for r in got] == [0, 1, 2] * 2
    # Nobody, then the candidate again: the count changed, so the face is embedded again.
    empty = (synth.FACES / "empty.jpg").read_bytes()
    got = rows(app_ctx, run(client, clock, app_ctx, token, "webcam", [empty, sway[1]]))
    assert [r.method for r in got] == ["detected", "embedded"]
    # The face far to the side (its box jumped): embedded again.
    got = rows(app_ctx, run(client, clock, app_ctx, token, "webcam", [camera("obama2.jpg", 200)]))
    assert got[0].method == "embedded"
    assert flags_of(client, attempt_id) == []  # one empty frame is not 15 s without a face


def test_a_batch_analyses_a_stream_as_one_by_one_would(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    """A worker that falls behind takes a stream's snapshots several at a time: each is
    still compared with the one before it in the batch, so the detector and the embedding run
    exactly as often as when every snapshot is analysed on arrival."""
    token, attempt_id = entered(client, clock, desk_exam(app_ctx, tmp_path, embed_every=3), "1001")
    still = [camera("obama2.jpg") for _ in range(3)]
    sway = [camera("obama2.jpg", shift=s) for s in (5, 0, 5, 0, 5)]
    ids = []
    for data in still + sway:  # all queued before the worker runs
        clock.advance(EVERY)
        ids.append(post(client, token, "webcam", data))
    run_due_jobs(app_ctx.job_context())
    got = rows(app_ctx, ids)
    # As test_unchanged_frames_skip... and test_embedding_runs... find one by one: copies of
    # the embedded frame, then detections with an embedding every third.
    copies, swaying = ["embedded", "unchanged", "unchanged"], ["detected", "detected", "embedded"]
    assert [r.method for r in got] == [*copies, *swaying, "detected", "detected"]
    assert [r.since_embedding for r in got] == [0, 0, 0, 1, 2, 0, 1, 2]
    assert flags_of(client, attempt_id) == []


def test_impersonation_is_caught_within_the_stated_bound(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    """Someone else takes the seat between two snapshots. If neither the face count nor the
    box says so, the forced embedding every N detected frames bounds the delay: the flag is
    raised within N snapshots of the swap (docs/accuracy.md)."""
    every = 4
    exam = desk_exam(app_ctx, tmp_path, embed_every=every)
    token, attempt_id = entered(client, clock, exam, "1002")  # Biden, enrolled with biden.jpg
    own = run(client, clock, app_ctx, token, "webcam", [camera("biden.jpg", s) for s in (0, 5)])
    assert [r.method for r in rows(app_ctx, own)] == ["embedded", "detected"]
    swapped = [camera("obama2.jpg", shift=s) for s in (0, 5) * every]
    ids = run(client, clock, app_ctx, token, "webcam", swapped)
    got = flags_of(client, attempt_id)
    assert [e["kind"] for e in got] == ["face_mismatch"]
    assert got[0]["data"]["snapshot_id"] in ids[:every]


def test_a_masked_candidate_raises_face_covered_not_a_mismatch(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    token, attempt_id = entered(client, clock, desk_exam(app_ctx, tmp_path), "1001")
    run(client, clock, app_ctx, token, "webcam", [camera("obama2.jpg")])
    masked = [camera("obama_masked.jpg", shift=s) for s in (0, 5, 0, 5)]
    ids = run(client, clock, app_ctx, token, "webcam", masked)
    got = rows(app_ctx, ids)
    assert all(r.faces == 1 and r.face_covered for r in got)  # found, and seen to be covered
    flagged = flags_of(client, attempt_id)
    assert [e["kind"] for e in flagged] == ["face_covered"]
    assert flagged[0]["severity"] == "warning"
    # Mask off: the flag ends.
    run(client, clock, app_ctx, token, "webcam", [camera("obama2.jpg", shift=3)])
    assert [e["kind"] for e in flags_of(client, attempt_id)] == ["face_covered", "flag_ended"]


def in_room(name: str, x: int, height: int = 300) -> bytes:
    """A webcam frame of a person in front of a still room."""
    return _noisy(synth.person_in_room(synth.load(name), x, height))


def test_a_candidate_moving_in_front_of_a_still_room_is_detected_where_the_picture_moved(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    token, attempt_id = entered(client, clock, desk_exam(app_ctx, tmp_path), "1001")
    sway = [in_room("obama2.jpg", x) for x in (170, 170, 182, 170, 182)]
    got = rows(app_ctx, run(client, clock, app_ctx, token, "webcam", sway))
    assert [r.method for r in got] == ["embedded", "unchanged", "region", "region", "region"]
    # The same face as the whole frame shows, where the whole frame shows it.
    whole = faces.detect(faces.decode_frame(sway[2]).bgr).counted
    assert len(whole) == 1 and all(r.faces == 1 for r in got)
    scale = faces.decode_frame(sway[2]).to_decoded
    assert np.abs(np.array(got[2].boxes[0]) - np.array(whole[0].scaled(scale).box)).max() <= 8
    assert abs(got[2].scores[0] - whole[0].score) <= 0.02
    # Every region rests on the first frame's whole-frame detection.
    assert all(r.whole_at == got[0].taken_at for r in got)

    # Someone comes into view at the far side of the room while the candidate sways: the
    # moved blocks reach there, and the detector sees them.
    other = Image.fromarray(synth.person_in_room(synth.load("obama2.jpg"), 170))
    visitor = Image.fromarray(synth.load("biden.jpg"))
    visitor.thumbnail((90, 180))
    other.paste(visitor, (520, 40))
    two = run(client, clock, app_ctx, token, "webcam", [synth.jpeg(np.asarray(other), 80)] * 2)
    assert [r.faces for r in rows(app_ctx, two)] == [2, 2]
    # However much the candidate keeps moving, the whole frame is detected again after
    # MAX_SKIP_SECONDS.
    clock.advance(timedelta(seconds=frames.MAX_SKIP_SECONDS))
    later = rows(
        app_ctx, run(client, clock, app_ctx, token, "webcam", [in_room("obama2.jpg", 176)])
    )
    # (Embedded too: the count went from two faces back to one.)
    assert later[0].method == "embedded" and later[0].whole_at == later[0].taken_at
    # The visitor, seen in a region, raised the flag as a whole-frame detection would.
    assert "multiple_faces" in {e["kind"] for e in flags_of(client, attempt_id)}


def test_a_region_gives_the_face_counts_the_whole_frame_gives() -> None:
    """From the last detected frame to the next: the candidate sways or leaves, or someone
    else appears at one of several places and sizes. The detector on the region counts what it
    counts on the whole frame, with the same scores (its cells aligned on the same grid)."""
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    room = np.asarray(Image.open(synth.FACES / "empty.jpg").convert("RGB"))
    candidate = synth.load("obama2.jpg")
    visitors = [Image.fromarray(synth.load(n)) for n in ("biden.jpg", "tom_hanks.jpg")]

    def facts(image: bytes, previous: frames.Previous | None) -> frames.FrameFacts:
        return frames.analyse_frame(
            image,
            taken_at=t0 + EVERY if previous else t0,
            previous=previous,
            embed=False,
            enrolled=None,
            embed_every=6,
            dark_below=40,
            flat_below=10,
        )

    methods = []
    for x in (100, 250, 400):
        seated = synth.person_in_room(candidate, x)
        before = frames.Previous(t0, facts(synth.jpeg(seated, 80), None))
        assert before.facts.faces == 1
        after = [synth.person_in_room(candidate, x + 10), room]
        for visitor in visitors:
            for size in (60, 100):
                for at in ((20, 20), (540, 60), (x + 170, 200)):
                    scene = Image.fromarray(seated)
                    small = visitor.copy()
                    small.thumbnail((size, 2 * size))
                    scene.paste(small, at)
                    after.append(np.asarray(scene))
        for pixels in after:
            image = synth.jpeg(pixels, 80)
            got = facts(image, before)
            whole = faces.detect(faces.decode_frame(image).bgr).counted
            assert got.faces == len(whole), (x, got.method)
            assert np.allclose(got.scores, [f.score for f in whole], atol=0.02)
            methods.append(got.method)
    # Not every frame was detected whole, or this would prove nothing.
    assert methods.count("region") >= len(methods) // 2, methods
