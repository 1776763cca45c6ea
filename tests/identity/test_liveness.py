"""Liveness at face login: a still or held photo fails, a head turn in the asked order passes.

The passing frames are a synthetic head turn (tests/identity/synth.py): they prove the
checker's logic accepts the geometry of a turn, not that every real person passes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import T, bearer, exam_doc, face, import_exam, staff_token
from fastapi.testclient import TestClient

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.identity import faces, liveness, quality

from . import synth


@pytest.fixture(scope="module")
def base() -> synth.Pixels:
    """obama2.jpg as the fake camera shows it; candidate 1001 is enrolled with obama.jpg."""
    return synth.camera_frame(synth.load("obama2.jpg"))


@pytest.fixture(scope="module")
def reference(base: synth.Pixels) -> tuple[synth.Pixels, faces.Embedding]:
    pixels, located, _ = quality.check_photo(synth.jpeg(base))
    return pixels, faces.embed_located(pixels, located)


@pytest.fixture(scope="module")
def turns(base: synth.Pixels) -> dict[str, list[bytes]]:
    return {step: synth.step_frames(base, step) for step in ("left", "right")}


def judge(
    steps: list[str], frames: list[bytes], reference: tuple[synth.Pixels, faces.Embedding]
) -> liveness.Verdict:
    return liveness.check_frames(steps, frames, reference[0], reference[1])


def refusal(
    steps: list[str], frames: list[bytes], reference: tuple[synth.Pixels, faces.Embedding]
) -> liveness.LivenessFailed:
    with pytest.raises(liveness.LivenessFailed) as info:
        judge(steps, frames, reference)
    assert info.value.message.startswith("活体检测")
    return info.value


# --- the checker --------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [["left", "right"], ["right", "left"]])
def test_synthetic_head_turn_passes(steps: list[str], turns: Any, reference: Any) -> None:
    verdict = judge(steps, turns[steps[0]] + turns[steps[1]], reference)
    for yaw, par in verdict.best:
        assert yaw >= liveness.TURN_MIN and par >= liveness.PARALLAX_MIN
    assert max(verdict.distances) < faces.MATCH_THRESHOLD


def test_still_image_fails(base: synth.Pixels, reference: Any) -> None:
    # The same frame repeated, each frame re-encoded as a camera would.
    frames = [synth.jpeg(base, q) for q in (80, 85, 90) * 4]
    failed = refusal(["left", "right"], frames, reference)
    assert failed.data["reason"] == "turn_not_seen"
    assert failed.data["not_seen"] == ["left", "right"]
    assert "向左转头" in failed.message and "向右转头" in failed.message


def test_photo_held_and_moved_fails(base: synth.Pixels, reference: Any) -> None:
    # A hand holding a print: small shifts, zoom and tilt from frame to frame.
    moves = [
        (0, 0, 1.0, 0),
        (12, -4, 1.03, 4),
        (25, -8, 1.06, 8),
        (35, 0, 1.1, 12),
        (20, 6, 1.05, 6),
        (0, 0, 1.0, 0),
        (-15, 3, 0.97, -5),
        (-30, 6, 0.94, -10),
        (-40, 0, 0.9, -15),
        (-20, -5, 0.95, -8),
        (-5, 0, 1.0, -2),
        (0, 0, 1.0, 0),
    ]
    frames = [synth.jpeg(synth.held(base, dx, dy, z, r)) for dx, dy, z, r in moves]
    for steps in (["left", "right"], ["right", "left"]):
        assert refusal(steps, frames, reference).data["reason"] == "turn_not_seen"


def test_flat_photo_turned_in_perspective_fails(base: synth.Pixels, reference: Any) -> None:
    # The print itself turned left and right about its vertical axis, up to 45 degrees, close
    # to the camera (strong perspective), with some tilt: the way one would try to fake a turn.
    angles = [0, 15, 30, 45, 30, 10, 0, -15, -30, -45, -30, -10]
    frames = [
        synth.jpeg(synth.held(synth.slanted(base, a), roll_deg=a / 5, zoom=0.9)) for a in angles
    ]
    for steps in (["left", "right"], ["right", "left"]):
        failed = refusal(steps, frames, reference)
        assert failed.data["reason"] == "turn_not_seen"
        # Each step's best frame stays under the parallax a real turn needs.
        assert all(par < liveness.PARALLAX_MIN for _, par in failed.data["best"])


def test_turns_in_the_wrong_order_fail(turns: Any, reference: Any) -> None:
    frames = turns["left"] + turns["right"]
    failed = refusal(["right", "left"], frames, reference)
    assert failed.data["not_seen"] == ["right", "left"]


def test_one_turn_only_fails(turns: Any, base: synth.Pixels, reference: Any) -> None:
    frames = turns["left"] + [synth.jpeg(base)] * liveness.FRAMES_PER_STEP
    assert refusal(["left", "right"], frames, reference).data["not_seen"] == ["right"]


def test_another_persons_face_fails(turns: Any, reference: Any) -> None:
    biden = synth.jpeg(synth.camera_frame(synth.load("biden.jpg")))
    # Someone else for the whole challenge, and a swap after the turns.
    failed = refusal(["left", "right"], [biden] * 12, reference)
    assert failed.data["reason"] == "other_person"
    swapped = turns["left"] + [biden] * liveness.FRAMES_PER_STEP
    failed = refusal(["left", "right"], swapped, reference)
    assert failed.data["reason"] == "other_person"
    assert failed.data["distances"][1] > faces.MATCH_THRESHOLD


def test_frames_without_a_face_or_with_two_fail(turns: Any, reference: Any) -> None:
    empty = (synth.FACES / "empty.jpg").read_bytes()
    frames = turns["left"][:3] + [empty] * 3 + turns["right"]
    assert refusal(["left", "right"], frames, reference).data["reason"] == "no_face"
    group = (synth.FACES / "group_t1.jpg").read_bytes()
    frames = turns["left"] + turns["right"][:5] + [group]
    assert refusal(["left", "right"], frames, reference).data["reason"] == "multiple_faces"
    assert refusal(["left", "right"], turns["left"], reference).data["reason"] == "frame_count"


# --- through the API ----------------------------------------------------------------------------


@pytest.fixture
def live_exam(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["exam"]["rules"]["liveness"] = "required"
    return import_exam(app_ctx, tmp_path / "live", doc)


def challenge(client: TestClient, exam: str, ticket: str = "1001") -> dict[str, Any]:
    r = client.post("/api/v1/candidate/liveness", json={"exam_id": exam, "ticket": ticket})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def live_login(
    client: TestClient,
    exam: str,
    photo: bytes,
    challenge_id: str | None,
    frames: list[bytes],
    ticket: str = "1001",
) -> Any:
    files = [("face", ("face.jpg", photo, "image/jpeg"))]
    files += [("frames", (f"f{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    data = {"exam_id": exam, "ticket": ticket}
    if challenge_id:
        data["challenge_id"] = challenge_id
    return client.post("/api/v1/candidate/login", data=data, files=files)


def events(client: TestClient, attempt_id: str) -> list[dict[str, Any]]:
    token = staff_token(client, "rev", "pw-rev")
    r = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(token))
    result: list[dict[str, Any]] = r.json()["events"]
    return result


def attempt_of(client: TestClient, ticket: str) -> str:
    rows = client.get(
        "/api/v1/staff/rooms/R01", headers=bearer(staff_token(client, "p1", "pw-p1"))
    ).json()["candidates"]
    return str(next(c for c in rows if c["ticket"] == ticket)["attempt_id"])


def test_login_with_a_head_turn(
    client: TestClient, clock: FrozenClock, live_exam: str, base: Any, turns: Any
) -> None:
    clock.set(T - timedelta(minutes=20))
    photo = synth.jpeg(base)
    # No challenge: the client is told to do one; nothing is logged or counted.
    r = live_login(client, live_exam, photo, None, [])
    assert (r.status_code, r.json()["error"]["code"]) == (400, "liveness_required")

    c = challenge(client, live_exam)
    assert c["required"] is True
    assert tuple(c["steps"]) in liveness.SEQUENCES
    assert c["prompts"] == [liveness.STEP_NAMES[s] for s in c["steps"]]
    assert c["frames"] == liveness.FRAMES_PER_STEP * len(c["steps"])
    frames = [f for step in c["steps"] for f in turns[step]]
    r = live_login(client, live_exam, photo, c["challenge_id"], frames)
    assert r.status_code == 200, r.text
    logged = events(client, r.json()["attempt_id"])
    assert [e["kind"] for e in logged] == ["login"]
    assert logged[0]["data"]["liveness"]["steps"] == c["steps"]

    # One use only, even after a pass.
    r = live_login(client, live_exam, photo, c["challenge_id"], frames)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "liveness_challenge_used")


def test_still_image_fails_and_counts_towards_help(
    client: TestClient, clock: FrozenClock, live_exam: str, base: Any
) -> None:
    clock.set(T - timedelta(minutes=20))
    photo = synth.jpeg(base)
    for _ in range(3):
        c = challenge(client, live_exam)
        r = live_login(client, live_exam, photo, c["challenge_id"], [photo] * c["frames"])
        assert (r.status_code, r.json()["error"]["code"]) == (403, "liveness_failed")
        assert "没有看到" in r.json()["error"]["message"]
        assert "token" not in r.json()
    logged = events(client, attempt_of(client, "1001"))
    assert [e["data"]["code"] for e in logged] == ["liveness_failed"] * 3
    assert logged[0]["data"]["reason"] == "turn_not_seen"
    # Three failed logins: tech support's manual approval is open, as after face mismatches.
    r = client.post(
        "/api/v1/candidate/login-help",
        data={"exam_id": live_exam, "ticket": "1001", "text": "转头检测不通过"},
        files={"face": ("face.jpg", photo, "image/jpeg")},
    )
    assert r.status_code == 201, r.text


def test_expired_and_foreign_challenges_are_refused(
    client: TestClient, clock: FrozenClock, live_exam: str, base: Any, turns: Any
) -> None:
    clock.set(T - timedelta(minutes=20))
    photo = synth.jpeg(base)
    c = challenge(client, live_exam)
    frames = [f for step in c["steps"] for f in turns[step]]
    clock.advance(timedelta(seconds=liveness.CHALLENGE_SECONDS))
    r = live_login(client, live_exam, photo, c["challenge_id"], frames)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "liveness_challenge_expired")

    # Biden's challenge is no use for Obama's login, nor a made-up one.
    other = challenge(client, live_exam, ticket="1002")
    r = live_login(client, live_exam, photo, other["challenge_id"], frames)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "liveness_challenge_invalid")
    r = live_login(client, live_exam, photo, "x" * 32, frames)
    assert r.json()["error"]["code"] == "liveness_challenge_invalid"
    # Each refusal is in the log.
    codes = [e["data"]["code"] for e in events(client, attempt_of(client, "1001"))]
    assert codes == ["liveness_challenge_expired"] + ["liveness_challenge_invalid"] * 2


def test_quality_gate_and_identity_before_the_challenge(
    client: TestClient, clock: FrozenClock, live_exam: str, turns: Any
) -> None:
    clock.set(T - timedelta(minutes=20))
    masked = synth.jpeg(synth.camera_frame(synth.load("obama_masked.jpg")))
    c = challenge(client, live_exam)
    r = live_login(client, live_exam, masked, c["challenge_id"], turns["left"] + turns["right"])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "face_covered")
    assert "口罩" in r.json()["error"]["message"]
    # Someone else's live turn on Biden's ticket: the photo already fails the match.
    c = challenge(client, live_exam, ticket="1002")
    frames = [f for step in c["steps"] for f in turns[step]]
    r = live_login(client, live_exam, frames[0], c["challenge_id"], frames, ticket="1002")
    assert r.json()["error"]["code"] == "face_mismatch"


def test_liveness_off_keeps_the_single_photo_login(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    r = client.post("/api/v1/candidate/liveness", json={"exam_id": exam_id, "ticket": "1001"})
    assert r.json() == {"required": False}
    r = client.post(
        "/api/v1/candidate/login",
        data={"exam_id": exam_id, "ticket": "1001"},
        files={"face": ("face.jpg", face("obama2.jpg"), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    assert "liveness" not in events(client, r.json()["attempt_id"])[0]["data"]


def test_no_code_loads_the_68_point_model() -> None:
    # Trained on iBUG 300-W (non-commercial terms): nothing in invigil may load it.
    src = Path(liveness.__file__).resolve().parents[1]
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ("shape_predictor_68", "pose_predictor_68", "pose68"):
            assert name not in text, f"{path.relative_to(src)} mentions {name}"
