"""The exam file export: what the web made, written as an exam file (no passwords) and a ZIP
that ``invigil exam import`` of its folder turns into the same exam."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import yaml
from conftest import staff_token
from sqlalchemy import select

from invigil.cli import import_exam_file
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.exams import editing
from invigil.exams.models import Attachment, Candidate, Exam
from invigil.review.models import ExamStaff
from invigil.staff.models import StaffUser

from .exams_world import PDF, Admin, adm, audit_rows, imported

__all__ = ["adm", "imported"]  # fixtures


def _exam_facts(ctx: AppContext, exam_id: str) -> dict[str, object]:
    with ctx.db.session() as session:
        exam = session.get(Exam, exam_id)
        assert exam is not None
        values = editing.values(session, exam)
        values.pop("title")
        candidates = sorted(
            (c.ticket, c.name, c.room.code, hashlib.sha256(ctx.blobs.get(c.photo_key)).hexdigest())
            for c in session.scalars(select(Candidate).where(Candidate.exam_id == exam_id))
            if c.photo_key
        )
        attachments = [
            (a.title, a.content_type, a.sha256)
            for a in session.scalars(
                select(Attachment)
                .where(Attachment.exam_id == exam_id)
                .order_by(Attachment.position)
            )
        ]
        staff = sorted(
            (u.username, tuple(es.roles))
            for es, u in session.execute(
                select(ExamStaff, StaffUser)
                .join(StaffUser, StaffUser.id == ExamStaff.staff_id)
                .where(ExamStaff.exam_id == exam_id)
            )
        )
        rooms = sorted((r.code, r.name) for r in exam.rooms)
        return {
            "values": values,
            "candidates": candidates,
            "attachments": attachments,
            "staff": staff,
            "rooms": rooms,
        }


def test_yaml_has_every_field_and_no_password(adm: Admin, imported: str) -> None:
    r = adm.get(f"/exams/{imported}/examfile")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/yaml")
    assert "attachment" in r.headers["content-disposition"]
    assert "pw-" not in r.text and "password:" not in r.text
    doc = yaml.safe_load(r.text)
    assert doc["exam"]["starts_at"] == "2030-06-01T09:00:00+08:00"
    assert doc["exam"]["rules"]["evidence_camera"] == "off"
    assert doc["exam"]["rules"]["retention"] == "180d"
    assert doc["candidates"][0] == {
        "ticket": "1001",
        "name": "奥巴马",
        "room": "R01",
        "photo": "photos/1001.jpg",
    }
    p1 = next(s for s in doc["staff"] if s["username"] == "p1")
    assert p1 == {"username": "p1", "roles": ["proctor"], "rooms": ["R01"]}


def test_web_exam_exports_and_imports_the_same(
    adm: Admin, imported: str, app_ctx: AppContext, settings: Settings, tmp_path: Path
) -> None:
    # Made on the web: a copy with its candidates, then edited and given another attachment.
    exam_id = adm.post(
        f"/exams/{imported}/copy",
        {"title": "网页考试", "starts_at": "2030-07-01T14:30:00+08:00", "candidates": True},
    ).json()["exam"]["id"]
    r = adm.patch(
        f"/exams/{exam_id}",
        {
            "duration": "1h30m",
            "rules": {"upload_grace_after": "45m", "liveness": "required", "retention": "90d"},
            "scoring": {"rule": "mean", "min_examiners": 3},
            "flags": {"multiple_faces": {"of_last": 4, "at_least": 3}},
            "questions": [
                {"text": "导出题一", "points": 15},
                {"text": "导出题二：多行\n第二行", "points": 5},
            ],
        },
    )
    assert r.status_code == 200, r.text
    up = adm.client.post(
        f"/api/v1/admin/exams/{exam_id}/attachments",
        data={"title": "座位图"},
        files={"file": ("座位 图.pdf", PDF, "application/pdf")},
        headers=adm.headers,
    )
    assert up.status_code == 201, up.text

    z = adm.get(f"/exams/{exam_id}/examfile.zip")
    assert z.status_code == 200, z.text
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(z.content)) as archive:
        names = archive.namelist()
        archive.extractall(folder)
    assert "exam.yaml" in names and "photos/1001.jpg" in names
    assert b"pw-" not in (folder / "exam.yaml").read_bytes()
    assert "exam_export" in [e.action for e in audit_rows(app_ctx, exam_id)]

    new_id = import_exam_file(settings, folder / "exam.yaml", as_new=True)
    assert new_id != exam_id
    assert _exam_facts(app_ctx, new_id) == _exam_facts(app_ctx, exam_id)
    # Staff listed without a password keep theirs.
    assert staff_token(adm.client, "p1", "pw-p1")
