"""Face embedding on real photos (tests/data/faces, see SOURCES.md there)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import cache
from itertools import combinations
from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest
from PIL import Image

from invigil.identity import faces
from invigil.identity.faces import (
    DETECTION_SCORE_MIN,
    MATCH_THRESHOLD,
    FaceError,
    embed_single_face,
    embedding_from_bytes,
    embedding_to_bytes,
    face_distance,
)

DATA = Path(__file__).parent / "data" / "faces"
OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg")
CJK = re.compile(r"[\u4e00-\u9fff]")


@cache
def photo(name: str) -> bytes:
    return (DATA / name).read_bytes()


@cache
def embedding(name: str) -> np.ndarray:
    return embed_single_face(photo(name))


def _raises(name_or_bytes: str | bytes) -> FaceError:
    data = photo(name_or_bytes) if isinstance(name_or_bytes, str) else name_or_bytes
    with pytest.raises(FaceError) as info:
        embed_single_face(data)
    return info.value


def test_embedding_is_128_finite_floats() -> None:
    e = embedding("obama.jpg")
    assert e.shape == (128,)
    assert e.dtype == np.float64
    assert np.isfinite(e).all()


@pytest.mark.parametrize(("a", "b"), list(combinations(OBAMA, 2)))
def test_three_photos_of_one_person_match(a: str, b: str) -> None:
    assert face_distance(embedding(a), embedding(b)) <= MATCH_THRESHOLD


@pytest.mark.parametrize("other", ["biden.jpg", "tom_hanks.jpg"])
@pytest.mark.parametrize("obama", OBAMA)
def test_other_people_do_not_match(obama: str, other: str) -> None:
    assert face_distance(embedding(obama), embedding(other)) > MATCH_THRESHOLD


def test_group_photo_is_multiple_faces() -> None:
    err = _raises("group_t1.jpg")
    assert err.code == "multiple_faces"
    assert CJK.search(err.message)


def test_room_without_face_is_no_face() -> None:
    err = _raises("empty.jpg")
    assert err.code == "no_face"
    assert CJK.search(err.message)


def test_badge_is_not_counted_as_a_face() -> None:
    # The detector's strongest response on the smiley badge stays far below the threshold.
    detected = faces.detect(cv2.imread(str(DATA / "badge.jpg")))
    assert detected.counted == []
    assert detected.rejected is None or detected.rejected < DETECTION_SCORE_MIN
    assert _raises("badge.jpg").code == "no_face"


def test_masked_face_is_found_and_refused_as_covered() -> None:
    # The detector finds the masked face (dlib's HOG did not); enrolment needs a bare face,
    # so the photo is refused by what covers it, not by a blind spot of the detector.
    pixels = faces.decode(photo("obama_masked.jpg"))
    assert len(faces.locate_faces(pixels)) == 1
    err = _raises("obama_masked.jpg")
    assert err.code == "face_covered"
    assert "口罩" in err.message


def test_five_landmarks_sit_where_the_face_is() -> None:
    pixels = faces.decode(photo("obama.jpg"))
    (face,) = faces.locate_faces(pixels)
    left, top, right, bottom = face.box
    eye_l, eye_r, nose, mouth_l, mouth_r = face.landmarks
    assert left < eye_l[0] < nose[0] < eye_r[0] < right
    assert top < eye_l[1] < nose[1] < mouth_l[1] < bottom
    assert mouth_l[0] < nose[0] < mouth_r[0]
    assert face.score >= DETECTION_SCORE_MIN


def test_frames_decode_at_half_size_and_scale_back() -> None:
    frame = faces.decode_frame(photo("obama.jpg"))
    full = faces.decode(photo("obama.jpg"))
    assert frame.bgr.shape[0] * 2 == full.shape[0]
    (half,) = faces.detect(frame.bgr).counted
    (whole,) = faces.locate_faces(full)
    scaled = half.scaled(frame.to_decoded)
    assert np.abs(np.array(scaled.box) - np.array(whole.box)).max() <= 0.1 * (
        whole.box[2] - whole.box[0]
    )
    # The embedding from the half-size detection is the login's, within JPEG noise.
    emb = faces.embed_frame_face(photo("obama.jpg"), scaled)
    assert face_distance(emb, embedding("obama.jpg")) < 0.1


def _jpeg_bytes(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kwargs)
    return buf.getvalue()


def test_exif_orientation_is_applied() -> None:
    upright = Image.open(DATA / "obama.jpg").convert("RGB")
    # Stored turned 90° anticlockwise, with the tag (6) that tells viewers to turn it back.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    assert _raises(_jpeg_bytes(stored)).code == "no_face"
    turned_back = embed_single_face(_jpeg_bytes(stored, exif=exif.tobytes()))
    assert face_distance(turned_back, embedding("obama.jpg")) < 0.1


def test_png_is_accepted() -> None:
    buf = io.BytesIO()
    Image.open(DATA / "obama2.jpg").save(buf, "PNG")
    assert face_distance(embed_single_face(buf.getvalue()), embedding("obama2.jpg")) < 0.1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        bytes(range(256)) * 8,
        pytest.param(photo("obama.jpg")[:2000], id="truncated-jpeg"),
        pytest.param(b"GIF89a" + b"\x00" * 64, id="gif-header"),
    ],
)
def test_undecodable_bytes_are_bad_image(data: bytes) -> None:
    err = _raises(data)
    assert err.code == "bad_image"
    assert CJK.search(err.message)


def test_huge_bitmap_is_refused_before_decoding() -> None:
    # 48 megapixels that compress to a few KB: must not be inflated into memory.
    buf = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buf, "PNG")
    assert len(buf.getvalue()) < 100_000
    assert _raises(buf.getvalue()).code == "bad_image"


def test_embedding_bytes_round_trip() -> None:
    e = embedding("obama.jpg")
    blob = embedding_to_bytes(e)
    assert isinstance(blob, bytes)
    assert len(blob) == 128 * 4
    back = embedding_from_bytes(blob)
    assert back.shape == (128,)
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, e, rtol=0, atol=1e-6)
    other = embedding("obama2.jpg")
    assert abs(face_distance(back, other) - face_distance(e, other)) < 1e-6


def test_embedding_bytes_reject_wrong_sizes() -> None:
    with pytest.raises(ValueError):
        embedding_from_bytes(b"\x00" * 100)
    with pytest.raises(ValueError):
        embedding_to_bytes(np.zeros(64))
    with pytest.raises(ValueError):
        face_distance(np.zeros(128), np.zeros(64))


def test_face_error_carries_code_and_message() -> None:
    err = FaceError("no_face", "未检测到人脸")
    assert err.code == "no_face"
    assert err.message == "未检测到人脸"
    assert str(err) == "未检测到人脸"


def test_concurrent_calls_give_the_serial_results() -> None:
    names = ["obama.jpg", "biden.jpg", "tom_hanks.jpg", "group_t1.jpg"]

    def outcome(name: str) -> np.ndarray | str:
        try:
            return embed_single_face(photo(name))
        except FaceError as exc:
            return exc.code

    serial = {name: outcome(name) for name in names}
    results: dict[str, list[np.ndarray | str]] = {name: [] for name in names}
    errors: list[BaseException] = []
    start = threading.Barrier(len(names))

    def worker(name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                start.wait()
                for _ in range(3):
                    results[name].append(outcome(name))
            except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
                errors.append(exc)

        return run

    threads = [threading.Thread(target=worker(name)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for name in names:
        assert len(results[name]) == 3
        for got in results[name]:
            expected = serial[name]
            if isinstance(expected, str):
                assert got == expected
            else:
                assert isinstance(got, np.ndarray)
                np.testing.assert_array_equal(got, expected)


def test_warm_up_is_idempotent() -> None:
    faces.warm_up()
    faces.warm_up()
    assert face_distance(embed_single_face(photo("obama.jpg")), embedding("obama.jpg")) == 0.0


def test_the_embedding_build_is_named_and_openblas_runs_one_thread_unless_told() -> None:
    """scripts/setup and the benchmarks say which dlib runs the embedding; OpenBLAS's spinning
    threads doubled its CPU, so invigil sets one thread unless the operator chose."""
    blas = bool(getattr(dlib, "DLIB_USE_BLAS", False))
    assert faces.embedding_build().endswith("OpenBLAS" if blas else "no BLAS (dlib-bin)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    show = "import invigil, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    run = [sys.executable, "-c", show]
    assert subprocess.run(run, env=env, capture_output=True, text=True).stdout.strip() == "1"
    env["OPENBLAS_NUM_THREADS"] = "4"
    assert subprocess.run(run, env=env, capture_output=True, text=True).stdout.strip() == "4"
