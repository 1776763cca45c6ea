"""Face-recognition consent through the API: the public notice, decisions as events before login,
a declined candidate's face never processed, and the manual check open to them at once."""

from __future__ import annotations

from datetime import timedelta

import httpx
from conftest import T, bearer, face, login, staff_token
from fastapi import FastAPI
from fastapi.testclient import TestClient

from invigil.attempts.api import CONSENT_PER_ADDRESS
from invigil.core.clock import FrozenClock


def _decide(client: TestClient, exam_id: str, ticket: str, agree: bool) -> httpx.Response:
    return client.post(
        "/api/v1/candidate/face-consent",
        json={"exam_id": exam_id, "ticket": ticket, "consent": agree},
    )


def _kinds(client: TestClient, attempt_id: str) -> list[str]:
    token = staff_token(client, "rev", "pw-rev")
    r = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(token))
    return [e["kind"] for e in r.json()["events"]]


def test_notice_states_the_exams_retention(client: TestClient, exam_id: str) -> None:
    r = client.get("/api/v1/candidate/face-consent", params={"exam_id": exam_id})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["retention"]["days"] == 180
    assert body["retention"]["purge_at"].startswith("2030-11-28T01:20:00")  # deadline + 180 d
    assert body["exam"]["title"] == "测试考试" and body["notice_version"]
    r = client.get("/api/v1/candidate/face-consent", params={"exam_id": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_exam"


def test_decline_blocks_face_login_until_consent(
    client: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    r = _decide(client, exam_id, "1001", False)
    assert r.status_code == 201, r.text
    refused = login(client, exam_id, "1001")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "face_consent_refused"
    assert "人脸识别" in refused.json()["error"]["message"]
    # The manual check needs no failed face logins from someone who declined, and keeps no
    # face even if one is sent.
    r = client.post(
        "/api/v1/candidate/login-help",
        data={"exam_id": exam_id, "ticket": "1001", "text": "不同意人脸识别"},
        files={"face": ("f.jpg", b"\xff\xd8\xff\xe0 not kept", "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    # Changing one's mind: consent, then the face login works.
    assert _decide(client, exam_id, "1001", True).status_code == 201
    ok = login(client, exam_id, "1001")
    assert ok.status_code == 200, ok.text
    kinds = _kinds(client, ok.json()["attempt_id"])
    assert kinds == [
        "face_consent_refused",
        "login_help_requested",
        "face_consent_given",
        "login",
    ], kinds


def test_bad_input_and_the_cap_per_address(app: FastAPI, clock: FrozenClock, exam_id: str) -> None:
    with TestClient(app, client=("203.0.113.5", 40000)) as stranger:
        r = _decide(stranger, exam_id, "9999", True)
        assert r.json()["error"]["code"] == "login_not_open"
        clock.set(T - timedelta(minutes=20))
        r = _decide(stranger, exam_id, "9999", True)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "unknown_candidate"
        r = stranger.post(
            "/api/v1/candidate/face-consent", json={"exam_id": exam_id, "ticket": "1001"}
        )
        assert r.status_code == 422 and "error" in r.json()
        # A stranger who knows the ticket refuses again and again: stopped per address, which
        # also bounds how many tickets one address can probe.
        made = 1  # the unknown ticket above counted (the 422 never reached the route)
        while _decide(stranger, exam_id, "1001", False).status_code == 201:
            made += 1
        assert made == CONSENT_PER_ADDRESS
        r = _decide(stranger, exam_id, "1001", False)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
        assert int(r.headers["Retry-After"]) > 0
    # The candidate at their own computer is not affected: they consent and log in.
    with TestClient(app, client=("198.51.100.7", 40000)) as candidate:
        assert _decide(candidate, exam_id, "1001", True).status_code == 201
        r = candidate.post(
            "/api/v1/candidate/login",
            data={"exam_id": exam_id, "ticket": "1001"},
            files={"face": ("face.jpg", face("obama2.jpg"), "image/jpeg")},
        )
        assert r.status_code == 200, r.text
