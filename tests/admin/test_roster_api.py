"""The web import flow: upload → check job with progress → problems or preview → 确认导入 →
applied; a re-import shows and applies the difference; refused once login has opened."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import bearer, exam_doc, import_exam, login, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import select

from invigil.attempts.models import Attempt
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.jobs import run_due_jobs
from invigil.exams.models import Candidate
from invigil.review.models import AuditEntry

from .roster_files import GOOD_ROWS, csv_bytes, good_zip, photo, xlsx, zip_bytes

ADMIN = {"username": "adm", "password": "pw-adm", "roles": ["admin"]}
PROCTOR = {"username": "p1", "password": "pw-p1", "roles": ["proctor"], "rooms": ["R01"]}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def exam(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc(staff=[ADMIN, PROCTOR])
    doc["candidates"] = [{"ticket": "9001", "name": "旧考生", "room": "R02", "photo": "obama.jpg"}]
    return import_exam(app_ctx, tmp_path / "exam", doc)


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return bearer(staff_token(client, "adm", "pw-adm"))


def _upload(
    client: TestClient,
    exam: str,
    auth: dict[str, str],
    roster: bytes,
    photos: bytes | None,
    name: str = "名单.xlsx",
) -> Any:
    files: dict[str, Any] = {"roster": (name, roster, XLSX)}
    if photos is not None:
        files["photos"] = ("照片.zip", photos, "application/zip")
    return client.post(f"/api/v1/admin/exams/{exam}/roster", files=files, headers=auth)


def _checked(client: TestClient, ctx: AppContext, auth: dict[str, str], import_id: str) -> Any:
    run_due_jobs(ctx.job_context())
    r = client.get(f"/api/v1/admin/roster-imports/{import_id}", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def _candidates(
    client: TestClient, exam: str, auth: dict[str, str]
) -> list[tuple[str, str, str, bool]]:
    r = client.get(f"/api/v1/admin/exams/{exam}/roster", headers=auth)
    assert r.status_code == 200, r.text
    return [(c["ticket"], c["name"], c["room"], c["photo"]) for c in r.json()["candidates"]]


def test_the_whole_flow(
    client: TestClient, app_ctx: AppContext, exam: str, admin: dict[str, str], clock: FrozenClock
) -> None:
    # The template, in both formats.
    r = client.get("/api/v1/admin/roster/template?format=xlsx", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert "attachment" in r.headers["content-disposition"]
    r = client.get("/api/v1/admin/roster/template?format=csv", headers=admin)
    assert r.content.startswith("\ufeff准考证号".encode())

    # A bad roster: every problem at once, nothing written.
    bad = xlsx([*GOOD_ROWS, ("1001", "重复", "R09", "nope.jpg")])
    r = _upload(client, exam, admin, bad, good_zip())
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "checking"
    result = _checked(client, app_ctx, admin, r.json()["id"])
    assert result["state"] == "invalid" and result["diff"] is None and not result["can_apply"]
    assert [(p["row"], p["column"], p["code"]) for p in result["problems"]] == [
        (5, "准考证号", "duplicate_ticket"),
        (5, "考场", "unknown_room"),
        (5, "照片文件名", "photo_not_in_zip"),
    ]
    assert result["errors"] == 3
    r = client.post(f"/api/v1/admin/roster-imports/{result['id']}/apply", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_ready"
    assert _candidates(client, exam, admin) == [("9001", "旧考生", "R02", True)]

    # The fixed roster: a preview of the difference, then 确认导入.
    r = _upload(client, exam, admin, xlsx(GOOD_ROWS), good_zip())
    result = _checked(client, app_ctx, admin, r.json()["id"])
    assert result["state"] == "ready" and result["can_apply"], result
    assert (result["done"], result["total"]) == (3, 3)
    diff = result["diff"]
    assert [a["ticket"] for a in diff["added"]] == ["1001", "1002", "2001"]
    assert diff["removed"] == [{"ticket": "9001", "name": "旧考生", "room": "R02"}]
    r = client.post(f"/api/v1/admin/roster-imports/{result['id']}/apply", headers=admin)
    assert r.status_code == 202 and r.json()["state"] == "applying"
    result = _checked(client, app_ctx, admin, result["id"])
    assert result["state"] == "applied", result
    assert result["applied"] == {"added": 3, "changed": 0, "removed": 1}
    assert _candidates(client, exam, admin) == [
        ("1001", "奥巴马", "R01", True),
        ("1002", "拜登", "R01", True),
        ("2001", "汉克斯", "R02", True),
    ]
    # The uploads are gone from the blob store; each candidate has an attempt.
    assert not app_ctx.blobs.exists(f"roster-imports/{result['id']}/photos")
    with transaction(app_ctx.db) as s:
        attempts = s.scalars(select(Attempt).where(Attempt.exam_id == exam)).all()
        assert len(attempts) == 3
        old_keys = {c.ticket: c.photo_key for c in s.scalars(select(Candidate))}

    # Re-import without photos: 1002 moves room and changes name, 2001 is removed, photos kept.
    rows = [("1001", "奥巴马", "R01", "obama.jpg"), ("1002", "拜登二", "R02", "")]
    r = _upload(client, exam, admin, csv_bytes(rows, encoding="gbk"), None, name="名单.csv")
    result = _checked(client, app_ctx, admin, r.json()["id"])
    assert result["state"] == "ready", result
    assert result["diff"]["changed"] == [
        {
            "ticket": "1002",
            "name": "拜登二",
            "row": 3,
            "changes": {"name": ["拜登", "拜登二"], "room": ["R01", "R02"]},
        }
    ]
    assert [x["ticket"] for x in result["diff"]["removed"]] == ["2001"]
    assert result["diff"]["unchanged"] == 1
    client.post(f"/api/v1/admin/roster-imports/{result['id']}/apply", headers=admin)
    assert _checked(client, app_ctx, admin, result["id"])["state"] == "applied"
    assert _candidates(client, exam, admin) == [
        ("1001", "奥巴马", "R01", True),
        ("1002", "拜登二", "R02", True),
    ]
    with transaction(app_ctx.db) as s:
        moved = s.scalar(select(Candidate).where(Candidate.ticket == "1002"))
        assert moved is not None and moved.photo_key == old_keys["1002"]
        attempt = s.scalar(select(Attempt).where(Attempt.candidate_id == moved.id))
        assert attempt is not None and attempt.room_id == moved.room_id

    # A new photo for 1001 replaces the old one (the old file is removed).
    rows = [("1001", "奥巴马", "R01", "o3.jpg"), ("1002", "拜登二", "R02", "")]
    r = _upload(client, exam, admin, xlsx(rows), zip_bytes({"o3.jpg": photo("obama3.jpg")}))
    result = _checked(client, app_ctx, admin, r.json()["id"])
    assert result["diff"]["changed"][0]["changes"] == {"photo": True}
    client.post(f"/api/v1/admin/roster-imports/{result['id']}/apply", headers=admin)
    assert _checked(client, app_ctx, admin, result["id"])["state"] == "applied"
    assert not app_ctx.blobs.exists(old_keys["1001"])
    # The imported face logs in (a real face check against the new enrolment photo).
    clock.set(clock.now() + timedelta(minutes=35))  # login is open
    assert login(client, exam, "1001", "obama2.jpg").status_code == 200

    # The audit log names each upload and each 确认导入.
    with transaction(app_ctx.db) as s:
        actions = [
            a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.exam_id == exam))
        ]
    assert actions.count("roster_upload") == 4 and actions.count("roster_apply") == 3


def test_refused_once_login_opens(
    client: TestClient, app_ctx: AppContext, exam: str, admin: dict[str, str], clock: FrozenClock
) -> None:
    r = _upload(client, exam, admin, xlsx(GOOD_ROWS), good_zip())
    result = _checked(client, app_ctx, admin, r.json()["id"])
    assert result["state"] == "ready"
    clock.set(clock.now() + timedelta(minutes=31))  # T-29m: login opened at T-30m
    r = client.post(f"/api/v1/admin/roster-imports/{result['id']}/apply", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "roster_locked"
    assert "考生登录已于 2030-06-01 08:30:00 (UTC+08:00) 开放" in r.json()["error"]["message"]
    r = _upload(client, exam, admin, xlsx(GOOD_ROWS), good_zip())
    assert r.status_code == 409 and r.json()["error"]["code"] == "roster_locked"
    status = client.get(f"/api/v1/admin/roster-imports/{result['id']}", headers=admin).json()
    assert status["locked"] and not status["can_apply"]
    assert _candidates(client, exam, admin) == [("9001", "旧考生", "R02", True)]


def test_an_apply_queued_before_login_opens_is_refused_when_it_runs(
    client: TestClient, app_ctx: AppContext, exam: str, admin: dict[str, str], clock: FrozenClock
) -> None:
    r = _upload(client, exam, admin, xlsx(GOOD_ROWS), good_zip())
    result = _checked(client, app_ctx, admin, r.json()["id"])
    assert (
        client.post(f"/api/v1/admin/roster-imports/{result['id']}/apply", headers=admin).status_code
        == 202
    )
    clock.set(clock.now() + timedelta(minutes=31))
    result = _checked(client, app_ctx, admin, result["id"])
    assert result["state"] == "failed" and "考生登录已于" in result["message"]
    assert _candidates(client, exam, admin) == [("9001", "旧考生", "R02", True)]


def test_admins_only(client: TestClient, exam: str) -> None:
    proctor = bearer(staff_token(client, "p1", "pw-p1"))
    assert _upload(client, exam, proctor, xlsx(GOOD_ROWS), None).status_code == 403
    assert client.get(f"/api/v1/admin/exams/{exam}/roster", headers=proctor).status_code == 403
    assert client.get("/api/v1/admin/roster/template", headers=proctor).status_code == 403
    assert _upload(client, exam, {}, xlsx(GOOD_ROWS), None).status_code == 401
