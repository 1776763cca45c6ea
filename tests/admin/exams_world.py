"""What the 考试管理 tests share: an imported exam with an admin and a reviewer, and a form
as the console sends it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import bearer, exam_doc, import_exam, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import select

from invigil.core.context import AppContext
from invigil.review.models import AuditEntry

ADMIN = "/api/v1/admin"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def form(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "网页新建的考试",
        "starts_at": "2030-06-02T09:00:00+08:00",
        "duration": "25m",
        "rules": {"login_opens_before": "40m", "evidence_camera": "off", "liveness": "required"},
        "help_phone": "010-12345678",
        "practice": False,
        "scoring": {"rule": "mean", "min_examiners": 2},
        "flags": {"no_face": {"seconds": 20, "severity": "warning"}},
        "questions": [
            {"text": "WEB-QUESTION-ONE 请介绍你自己。", "points": 10},
            {"text": "WEB-QUESTION-TWO 谈谈团队合作。", "points": 20},
        ],
    }
    body.update(over)
    return body


class Admin:
    """An HTTP client signed in as one staff member."""

    def __init__(self, client: TestClient, username: str, password: str) -> None:
        self.client = client
        self.headers = bearer(staff_token(client, username, password))

    def get(self, path: str) -> Any:
        return self.client.get(ADMIN + path, headers=self.headers)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(ADMIN + path, json=body, headers=self.headers, **kw)

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(ADMIN + path, json=body, headers=self.headers)

    def delete(self, path: str) -> Any:
        return self.client.delete(ADMIN + path, headers=self.headers)


def staffed_doc() -> dict[str, Any]:
    doc = exam_doc()
    doc["staff"].append({"username": "adm", "password": "pw-adm", "roles": ["admin"]})
    return doc


@pytest.fixture
def imported(app_ctx: AppContext, tmp_path: Path) -> str:
    return import_exam(app_ctx, tmp_path / "exam", staffed_doc())


@pytest.fixture
def adm(client: TestClient, imported: str) -> Admin:
    return Admin(client, "adm", "pw-adm")


@pytest.fixture
def rev(client: TestClient, imported: str) -> Admin:
    return Admin(client, "rev", "pw-rev")


def audit_rows(ctx: AppContext, exam_id: str) -> list[AuditEntry]:
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.exam_id == exam_id).order_by(AuditEntry.id)
            )
        )
