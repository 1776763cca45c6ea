"""The OpenAPI document names every answer (issue 13 #16)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_enums_files_and_errors_are_documented(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    export = paths["/api/v1/admin/exams/{exam_id}/export"]["get"]
    params = {p["name"]: p["schema"] for p in export["parameters"]}
    assert params["what"]["enum"] == ["scores", "absences", "uploads", "rulings"]
    assert params["format"]["enum"] == ["csv", "xlsx"]
    assert schemas["CreateBody"]["properties"]["kind"]["enum"] == ["webcam", "screen", "evidence"]
    assert "focus_lost" in schemas["ClientEvent"]["properties"]["kind"]["enum"]
    for path in (
        "/api/v1/snapshots/{snapshot_id}",
        "/api/v1/review/attempts/{attempt_id}/photo",
        "/api/v1/staff/login-help/{request_id}/face",
        "/api/v1/candidate/evidence/snapshot",
    ):
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == ["image/jpeg"], path
    media = paths["/api/v1/recordings/{recording_id}/media"]["get"]["responses"]
    assert "video/webm" in media["200"]["content"] and "206" in media
    login = paths["/api/v1/staff/login"]["post"]["responses"]
    assert {"200", "401", "413", "422", "429"} <= set(login)
    assert login["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    chunk = paths["/api/v1/recordings/{recording_id}/chunks/{seq}"]["put"]
    assert "application/octet-stream" in chunk["requestBody"]["content"]
    assert {"200", "201", "409", "413"} <= set(chunk["responses"])
    assert any(p["name"] == "X-Chunk-SHA256" for p in chunk["parameters"])
    snapshot = paths["/api/v1/snapshots"]["post"]["requestBody"]["content"]
    assert snapshot["multipart/form-data"]["schema"]["required"] == ["kind", "image"]
    # Backpressure: the traffic a loaded process defers says so; chunks never get a 503.
    assert "503" in paths["/api/v1/snapshots"]["post"]["responses"]
    assert "503" in paths["/api/v1/candidate/heartbeat"]["post"]["responses"]
    assert "503" not in chunk["responses"]
