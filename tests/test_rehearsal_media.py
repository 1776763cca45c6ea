"""The snapshots a rehearsal (and bench/ingest.py) sends: real frames with one face each, that
the server's analysis treats as a seated candidate's — mostly unchanged, detected again where
the person moved — rather than as new pictures every time."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import FACES
from PIL import Image

from invigil.analysis.frames import FrameFacts, Previous, analyse_frame
from invigil.identity import faces
from invigil.rehearsal.media import FRAMES, MOVE_EVERY, face_frames, room_frames


def _analyse(frames: list[bytes], enrolled: faces.Embedding | None) -> list[FrameFacts]:
    previous: Previous | None = None
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    out = []
    for i, data in enumerate(frames):
        at = t0 + timedelta(seconds=5 * i)
        facts = analyse_frame(
            data,
            taken_at=at,
            previous=previous,
            embed=enrolled is not None,
            enrolled=enrolled,
            embed_every=6,
            dark_below=30,
            flat_below=5,
        )
        out.append(facts)
        if facts.method != "unchanged":
            previous = Previous(at, facts)
    return out


@pytest.mark.parametrize("stream", ["webcam", "evidence"])
def test_every_frame_is_a_camera_picture_of_one_face(stream: str) -> None:
    photo = FACES / "obama.jpg"
    frames = face_frames(photo) if stream == "webcam" else room_frames(photo)
    assert len(frames) == FRAMES
    assert len(set(frames)) == FRAMES  # fresh sensor noise: no two frames are the same bytes
    for data in frames:
        with Image.open(io.BytesIO(data)) as img:
            assert (img.format, img.size) == ("JPEG", (640, 480))
    enrolled = faces.embed_single_face(photo.read_bytes()) if stream == "webcam" else None
    # Three rounds, as a stream cycles through its frames for a whole exam.
    facts = _analyse(frames * 3, enrolled)
    assert all(f.faces == 1 for f in facts), [f.faces for f in facts]
    methods = Counter(f.method for f in facts)
    # A seated candidate: most frames need no detector; the moved ones (and the way back) do.
    assert methods["unchanged"] >= len(facts) // 3, methods
    assert set(methods) <= {"unchanged", "region", "detected", "embedded"}, methods
    assert facts[MOVE_EVERY - 1].method != "unchanged"  # the first move is seen
    if enrolled is not None:
        distances = [f.distance for f in facts if f.distance is not None]
        assert distances and max(distances) < 0.5  # the same person as the photo
