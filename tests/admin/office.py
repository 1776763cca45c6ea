"""Shared setup of the exam office's tests: the test exam with an admin among its staff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import bearer, exam_doc, import_exam, login, staff_token
from fastapi.testclient import TestClient

from invigil.core.context import AppContext

ADMIN = {"username": "adm", "password": "pw-adm-secret", "roles": ["admin"]}


def office_doc(**exam_overrides: Any) -> dict[str, Any]:
    doc = exam_doc()
    doc["staff"] = [*doc["staff"], ADMIN]
    doc["exam"].update(exam_overrides)
    return doc


def office_exam(ctx: AppContext, folder: Path, **exam_overrides: Any) -> str:
    return import_exam(ctx, folder, office_doc(**exam_overrides))


def admin_headers(client: TestClient) -> dict[str, str]:
    return bearer(staff_token(client, "adm", "pw-adm-secret"))


PHOTOS = {"1001": "obama2.jpg", "1002": "biden.jpg", "2001": "tom_hanks.jpg"}


def ready_and_enter(client: TestClient, exam_id: str, ticket: str) -> tuple[str, str]:
    """Log the candidate in, read every attachment and enter (the clock must allow it)."""
    r = login(client, exam_id, ticket, PHOTOS[ticket])
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    state = client.get("/api/v1/candidate/state", headers=bearer(token)).json()
    for a in state["attachments"]:
        client.post(f"/api/v1/candidate/attachments/{a['id']}/read", headers=bearer(token))
    r = client.post("/api/v1/candidate/enter", headers=bearer(token))
    assert r.status_code == 200, r.text
    return token, state["attempt_id"]
