"""The face-login quality gate on real photos and on photos made to break one rule each."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from invigil.identity import faces, quality

from . import synth

REAL = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "tom_hanks.jpg"]


def code_of(image: bytes) -> str:
    try:
        quality.check_photo(image)
    except faces.FaceError as exc:
        assert exc.message == (quality.MESSAGES | faces.MESSAGES)[exc.code]
        return exc.code
    return "ok"


@pytest.mark.parametrize("name", REAL)
def test_real_photos_pass(name: str) -> None:
    photo = synth.load(name)
    assert code_of((synth.FACES / name).read_bytes()) == "ok"
    if name != "tom_hanks.jpg":
        # The photo as the fake camera shows it (centred on grey, 640x480, JPEG). tom_hanks is
        # a 112 px crop: blown up to 456 px it is as blurred as a lens smeared with grease,
        # and low_quality is the right answer for it (docs/liveness.md).
        assert code_of(synth.jpeg(synth.camera_frame(photo), 80)) == "ok"


def test_masked_face_is_covered() -> None:
    # The detector finds the masked face; the mask's colour between nose and mouth, unlike the
    # skin between the eyes, gives it away: covered, not absent.
    assert len(faces.locate_faces(synth.load("obama_masked.jpg"))) == 1
    assert code_of((synth.FACES / "obama_masked.jpg").read_bytes()) == "face_covered"
    masked = synth.camera_frame(synth.load("obama_masked.jpg"))
    assert code_of(synth.jpeg(masked)) == "face_covered"


def test_empty_frame_is_still_no_face() -> None:
    assert code_of((synth.FACES / "empty.jpg").read_bytes()) == "no_face"
    assert code_of((synth.FACES / "group_t1.jpg").read_bytes()) == "multiple_faces"


def test_dark_photo() -> None:
    frame = synth.camera_frame(synth.load("obama2.jpg"))
    assert code_of(synth.jpeg((frame * 0.25).astype(np.uint8))) == "too_dark"
    # Dim but usable (half the light) still passes.
    assert code_of(synth.jpeg((frame * 0.5).astype(np.uint8))) == "ok"


def test_face_cut_off() -> None:
    frame = synth.camera_frame(synth.load("obama.jpg"))
    face = faces.locate_faces(frame)[0]
    jaw_right = face.box[2]
    # Move the picture so the right side of the face (and the ear beside it) is a fifth of the
    # face width past the frame's edge.
    width = face.box[2] - face.box[0]
    dx = frame.shape[1] - 1 - jaw_right + 0.2 * width
    cut = synth.held(frame, dx=dx)
    assert len(faces.locate_faces(cut)) == 1  # still found: the gate, not detection, refuses
    assert code_of(synth.jpeg(cut)) == "face_cut_off"
    # Off-centre but whole: fine.
    assert code_of(synth.jpeg(synth.held(frame, dx=dx - 0.4 * width))) == "ok"


def test_turned_face_is_not_frontal() -> None:
    frame = synth.camera_frame(synth.load("obama2.jpg"))
    turned = synth.turn(frame, -0.3)
    m = quality.measure(turned, faces.locate_faces(turned)[0])
    assert abs(m.yaw) > quality.FRONTAL_YAW_MAX
    assert code_of(synth.jpeg(turned)) == "face_not_frontal"


def test_heavy_blur_is_low_quality_but_mild_smoothing_passes() -> None:
    frame = Image.fromarray(synth.camera_frame(synth.load("obama.jpg")))
    blurred = np.asarray(frame.filter(ImageFilter.GaussianBlur(4)))
    assert code_of(synth.jpeg(blurred)) == "low_quality"
    smoothed = np.asarray(frame.filter(ImageFilter.MedianFilter(5)))
    assert code_of(synth.jpeg(smoothed)) == "ok"


def test_yaw_ignores_in_plane_tilt() -> None:
    frame = synth.camera_frame(synth.load("obama.jpg"))
    upright = quality.yaw_of(faces.locate_faces(frame)[0].landmarks)
    tilted = synth.held(frame, roll_deg=15)
    assert abs(quality.yaw_of(faces.locate_faces(tilted)[0].landmarks) - upright) < 0.12
