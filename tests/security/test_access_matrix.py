"""Who can reach what: the role × resource matrix of docs/security.md, as tested.

Every cell is a real request with a real token at T+5 min (the exam running, candidate 1001 of
room R01 logged in and entered); 2xx means the role reaches the resource, 401 no valid token
of that kind, 403 a role or room that is not allowed, 404 a resource hidden from that token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T, bearer, exam_doc, import_exam, staff_token
from fastapi.testclient import TestClient
from recordings.conftest import entered, new_recording, phone_token

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext

ROLES = [
    "anonymous",
    "candidate",
    "phone",
    "proctor",
    "proctor_other_room",
    "tech",
    "reviewer",
    "examiner",
    "admin",
]

# resource → expected status per role, in ROLES order (docs/security.md shows this table).
MATRIX: dict[str, tuple[str, list[int]]] = {
    "GET /candidate/state": (
        "/api/v1/candidate/state",
        [401, 200, 401, 401, 401, 401, 401, 401, 401],
    ),
    "GET /candidate/uploads": (
        "/api/v1/candidate/uploads",
        [401, 200, 200, 401, 401, 401, 401, 401, 401],
    ),
    "GET /phone/state": ("/api/v1/phone/state", [401, 401, 200, 401, 401, 401, 401, 401, 401]),
    "GET /recordings/{webcam}": (
        "/api/v1/recordings/{webcam}",
        [401, 200, 404, 200, 403, 200, 200, 403, 200],
    ),
    "GET /staff/me": ("/api/v1/staff/me", [401, 401, 401, 200, 200, 200, 200, 200, 200]),
    "GET /staff/rooms/R01": (
        "/api/v1/staff/rooms/R01",
        [401, 401, 401, 200, 404, 200, 200, 404, 200],
    ),
    "GET /staff/attempts/{id}": (
        "/api/v1/staff/attempts/{attempt}",
        [401, 401, 401, 200, 403, 200, 200, 403, 200],
    ),
    "GET /staff/attempts/{id}/events": (
        "/api/v1/staff/attempts/{attempt}/events",
        [401, 401, 401, 200, 403, 200, 200, 403, 200],
    ),
    "GET /staff/attempts/{id}/snapshots": (
        "/api/v1/staff/attempts/{attempt}/snapshots",
        [401, 401, 401, 200, 403, 200, 200, 403, 200],
    ),
    "GET /staff/alerts?room=R01": (
        "/api/v1/staff/alerts?room=R01",
        [401, 401, 401, 200, 404, 200, 200, 404, 200],
    ),
    "GET /staff/login-help": (
        "/api/v1/staff/login-help",
        [401, 401, 401, 403, 403, 200, 403, 403, 200],
    ),
    "GET /review/exams": ("/api/v1/review/exams", [401, 401, 401, 403, 403, 403, 200, 403, 200]),
    "GET /review/attempts/{id}": (
        "/api/v1/review/attempts/{attempt}",
        [401, 401, 401, 403, 403, 403, 200, 403, 200],
    ),
    "GET /review/audit": ("/api/v1/review/audit", [401, 401, 401, 403, 403, 403, 200, 403, 200]),
    "GET /scoring/exams": ("/api/v1/scoring/exams", [401, 401, 401, 403, 403, 403, 403, 200, 403]),
    "GET /admin/exams": ("/api/v1/admin/exams", [401, 401, 401, 403, 403, 403, 403, 403, 200]),
    "GET /admin/exams/{id}/results": (
        "/api/v1/admin/exams/{exam}/results",
        [401, 401, 401, 403, 403, 403, 403, 403, 200],
    ),
}


@pytest.fixture
def tokens(
    client: TestClient, app_ctx: AppContext, clock: FrozenClock, tmp_path: Path
) -> dict[str, object]:
    doc = exam_doc()
    doc["staff"].append({"username": "adm", "password": "pw-adm", "roles": ["admin"]})
    exam = import_exam(app_ctx, tmp_path / "matrix", doc)
    desk, attempt = entered(client, clock, exam)
    clock.set(T + timedelta(minutes=5))
    phone = phone_token(app_ctx, attempt)
    out: dict[str, object] = {
        "exam": exam,
        "attempt": attempt,
        "webcam": new_recording(client, desk, "webcam"),
        "anonymous": None,
        "candidate": desk,
        "phone": phone,
    }
    for role, (user, pw) in {
        "proctor": ("p1", "pw-p1"),
        "proctor_other_room": ("p2", "pw-p2"),
        "tech": ("tech1", "pw-tech1"),
        "reviewer": ("rev", "pw-rev"),
        "examiner": ("exm", "pw-exm"),
        "admin": ("adm", "pw-adm"),
    }.items():
        out[role] = staff_token(client, user, pw)
    return out


def test_role_resource_matrix(client: TestClient, tokens: dict[str, object]) -> None:
    ids = {k: str(tokens[k]) for k in ("attempt", "exam", "webcam")}
    got: dict[str, list[int]] = {}
    for name, (template, _) in MATRIX.items():
        path = template.format(**ids)
        row = []
        for role in ROLES:
            token = tokens[role]
            r = client.get(path, headers=bearer(str(token)) if token else {})
            assert r.status_code < 300 or "error" in r.json(), (name, role)
            row.append(r.status_code)
        got[name] = row
    assert got == {name: expected for name, (_, expected) in MATRIX.items()}
