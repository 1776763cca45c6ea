"""A phone token reaches only the phone's own streams (issue 13 #15), and every candidate
route it can reach is checked."""

from __future__ import annotations

from conftest import bearer
from fastapi.testclient import TestClient
from recordings.conftest import entered, new_recording, phone_token, put

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext

DATA_FOR_TESTS = b"\x1aE\xdf\xa3" + bytes(range(256)) * 10


def test_phone_reads_only_its_own_recordings(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    desk, attempt = entered(client, clock, exam_id)
    phone = phone_token(app_ctx, attempt)
    webcam = new_recording(client, desk, "webcam")
    evidence = new_recording(client, phone, "evidence", "video/mp4")
    assert put(client, desk, webcam, 0, DATA_FOR_TESTS).status_code == 201
    assert put(client, phone, evidence, 0, DATA_FOR_TESTS).status_code == 201

    def status(token: str, rec: str) -> int:
        return client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).status_code

    # The phone: its evidence yes, the desk's webcam as if it did not exist; the desk likewise.
    assert (status(phone, evidence), status(phone, webcam)) == (200, 404)
    assert (status(desk, webcam), status(desk, evidence)) == (200, 404)

    from_phone = client.get("/api/v1/candidate/uploads", headers=bearer(phone)).json()
    assert [r["kind"] for r in from_phone["recordings"]] == ["evidence"]
    assert {p["kind"] for p in from_phone["problems"]} == {"evidence"}
    # The desk's upload page still sees every stream of its attempt (交卷完成 needs them all).
    from_desk = client.get("/api/v1/candidate/uploads", headers=bearer(desk)).json()
    assert sorted(r["kind"] for r in from_desk["recordings"]) == ["evidence", "webcam"]

    # The desk's own routes refuse the phone token outright.
    for method, path in [
        ("GET", "/api/v1/candidate/state"),
        ("GET", "/api/v1/candidate/questions"),
        ("GET", "/api/v1/candidate/help"),
        ("POST", "/api/v1/candidate/heartbeat"),
        ("POST", "/api/v1/candidate/lot"),
        ("POST", "/api/v1/candidate/enter"),
        ("POST", "/api/v1/candidate/finish"),
        ("POST", "/api/v1/candidate/binding"),
        ("POST", "/api/v1/candidate/evidence/placement"),
        ("GET", "/api/v1/staff/me"),
    ]:
        body = {"ok": True} if path.endswith("placement") else {}
        r = client.request(method, path, headers=bearer(phone), json=body)
        assert r.status_code == 401, (method, path, r.status_code)
    # Nor can it finalize the desk's recording.
    r = client.post(
        f"/api/v1/recordings/{webcam}/finalize",
        json={"chunks": 1, "sha256": "0" * 64},
        headers=bearer(phone),
    )
    assert r.status_code == 403
