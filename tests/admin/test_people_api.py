"""考场与人员: rooms and staff accounts, admin only and audited."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from conftest import bearer, staff_token
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import select

from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.review.models import AuditEntry

from .office import admin_headers, office_exam


@pytest.fixture
def exam(app_ctx: AppContext, tmp_path: Path) -> str:
    return office_exam(app_ctx, tmp_path / "exam")


def audit_log(ctx: AppContext) -> list[AuditEntry]:
    with transaction(ctx.db) as session:
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        session.expunge_all()
        return rows


def audit_actions(ctx: AppContext) -> list[str]:
    return [e.action for e in audit_log(ctx)]


def test_rooms_admin_only_and_audited(client: TestClient, app_ctx: AppContext, exam: str) -> None:
    adm = admin_headers(client)
    p1 = bearer(staff_token(client, "p1", "pw-p1"))
    assert client.get(f"/api/v1/admin/exams/{exam}/rooms", headers=p1).status_code == 403
    assert client.get(f"/api/v1/admin/exams/{exam}/rooms").status_code == 401

    rooms = client.get(f"/api/v1/admin/exams/{exam}/rooms", headers=adm).json()["rooms"]
    assert [(r["code"], r["candidates"]) for r in rooms] == [("R01", 2), ("R02", 1)]
    r01 = rooms[0]
    assert (
        r01["staff"] == ["p1", "tech1"] and r01["console_url"] == f"/proctor/?room={r01['room_id']}"
    )

    r = client.post(
        f"/api/v1/admin/exams/{exam}/rooms", json={"code": "R03", "name": "第3考场"}, headers=adm
    )
    assert r.status_code == 201, r.text
    r03 = r.json()["room_id"]
    r = client.post(
        f"/api/v1/admin/exams/{exam}/rooms", json={"code": "R03", "name": "x"}, headers=adm
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "room_exists"
    r = client.patch(
        f"/api/v1/admin/exams/{exam}/rooms/{r03}", json={"name": "备用考场"}, headers=adm
    )
    assert r.json()["name"] == "备用考场"
    # A room with candidates stays; an empty one goes.
    r = client.delete(f"/api/v1/admin/exams/{exam}/rooms/{r01['room_id']}", headers=adm)
    assert r.status_code == 409 and r.json()["error"]["code"] == "room_not_empty"
    assert client.delete(f"/api/v1/admin/exams/{exam}/rooms/{r03}", headers=adm).status_code == 200
    codes = [
        r["code"]
        for r in client.get(f"/api/v1/admin/exams/{exam}/rooms", headers=adm).json()["rooms"]
    ]
    assert codes == ["R01", "R02"]
    actions = audit_actions(app_ctx)
    assert actions[-3:] == ["room_create", "room_rename", "room_delete"]


def test_staff_accounts_lifecycle(client: TestClient, app_ctx: AppContext, exam: str) -> None:
    adm = admin_headers(client)
    rooms = {
        r["code"]: r["room_id"]
        for r in client.get(f"/api/v1/admin/exams/{exam}/rooms", headers=adm).json()["rooms"]
    }
    r = client.post(
        "/api/v1/admin/staff",
        json={
            "username": "p9",
            "name": "王监考",
            "roles": ["proctor"],
            "room_ids": [rooms["R02"]],
            "exam_id": exam,
        },
        headers=adm,
    )
    assert r.status_code == 201, r.text
    made = r.json()
    password = made["password"]  # generated, shown this once
    assert len(password) >= 12 and made["rooms"][0]["code"] == "R02"
    listed = client.get(f"/api/v1/admin/staff?exam={exam}", headers=adm).json()["staff"]
    assert "p9" in [s["username"] for s in listed]
    assert all("password" not in s and "password_hash" not in s for s in listed)

    # The new proctor works in R02 only.
    token = staff_token(client, "p9", password)
    assert client.get("/api/v1/staff/rooms/R02", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/staff/rooms/R01", headers=bearer(token)).status_code == 404

    # Rooms and roles change at once.
    r = client.patch(
        f"/api/v1/admin/staff/{made['staff_id']}",
        json={"roles": ["proctor", "tech"], "room_ids": [rooms["R01"]]},
        headers=adm,
    )
    assert r.status_code == 200 and r.json()["roles"] == ["proctor", "tech"]
    assert client.get("/api/v1/staff/rooms/R01", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/staff/rooms/R02", headers=bearer(token)).status_code == 404

    # Disabled: the open token stops at once, and the login is refused.
    r = client.patch(
        f"/api/v1/admin/staff/{made['staff_id']}", json={"disabled": True}, headers=adm
    )
    assert r.status_code == 200 and r.json()["disabled"] is True and r.json()["ended"] == 1
    assert client.get("/api/v1/staff/me", headers=bearer(token)).status_code == 401
    r = client.post("/api/v1/staff/login", json={"username": "p9", "password": password})
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
    client.patch(f"/api/v1/admin/staff/{made['staff_id']}", json={"disabled": False}, headers=adm)
    token = staff_token(client, "p9", password)

    # A reset gives a new password once; the old one and the open session stop working.
    r = client.post(f"/api/v1/admin/staff/{made['staff_id']}/password", headers=adm)
    new = r.json()["password"]
    assert new != password
    assert client.get("/api/v1/staff/me", headers=bearer(token)).status_code == 401
    bad = client.post("/api/v1/staff/login", json={"username": "p9", "password": password})
    assert bad.status_code == 401
    staff_token(client, "p9", new)

    # The admin cannot lock themselves out.
    me = next(s for s in listed if s["username"] == "adm")
    r = client.patch(f"/api/v1/admin/staff/{me['staff_id']}", json={"disabled": True}, headers=adm)
    assert r.status_code == 409
    r = client.patch(
        f"/api/v1/admin/staff/{me['staff_id']}", json={"roles": ["proctor"]}, headers=adm
    )
    assert r.status_code == 409
    # Validation.
    r = client.post(
        "/api/v1/admin/staff", json={"username": "p9", "roles": ["proctor"]}, headers=adm
    )
    assert r.status_code == 409
    r = client.post("/api/v1/admin/staff", json={"username": "zz", "roles": ["boss"]}, headers=adm)
    assert r.status_code == 422 and "未知角色" in r.json()["error"]["message"]

    actions = audit_actions(app_ctx)
    for action in (
        "staff_create",
        "staff_update",
        "staff_disable",
        "staff_enable",
        "staff_password_reset",
    ):
        assert action in actions
    # Passwords never reach the audit log.
    details = repr([e.detail for e in audit_log(app_ctx)])
    assert password not in details and new not in details and "p9" in details


def sheet(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    ws = book.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(
    client: TestClient, exam: str, data: bytes, headers: dict[str, str], dry: bool = False
) -> Any:
    return client.post(
        f"/api/v1/admin/exams/{exam}/staff/import",
        files={
            "file": (
                "staff.xlsx",
                data,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        },
        data={"dry_run": "true" if dry else "false"},
        headers=headers,
    )


def test_staff_from_xlsx(client: TestClient, app_ctx: AppContext, exam: str) -> None:
    adm = admin_headers(client)
    bad = sheet(
        [
            ["用户名", "姓名", "角色", "考场"],
            ["x1", "甲", "监考员", "R01"],
            ["x1", "乙", "监考员", "R02"],  # duplicate
            ["p1", "丙", "proctor", "R01"],  # exists already
            ["x3", "丁", "校长", "R01"],  # unknown role
            ["x4", "戊", "监考员", "R99"],  # unknown room
            ["x5", "己", "技术服务", ""],  # tech without a room
            [None, None, None, None],  # a blank line is skipped
            ["", "庚", "考官", ""],  # no username
        ]
    )
    r = upload(client, exam, bad, adm)
    assert r.status_code == 422, r.text
    problems = r.json()["error"]["problems"]
    assert [(p["row"], p["column"]) for p in problems] == [
        (3, "用户名"),
        (4, "用户名"),
        (5, "角色"),
        (6, "考场"),
        (7, "考场"),
        (9, "用户名"),
    ]
    assert all(p["message"] for p in problems)
    listed = client.get(f"/api/v1/admin/staff?exam={exam}", headers=adm).json()["staff"]
    assert "x1" not in [s["username"] for s in listed]  # nothing was created
    r = upload(client, exam, b"not a spreadsheet", adm)
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["row"] is None
    r = upload(client, exam, sheet([["姓名", "考场"], ["a", "R01"]]), adm)
    assert {p["column"] for p in r.json()["error"]["problems"]} == {"用户名", "角色"}

    good = sheet(
        [
            ["角色", "用户名", "考场"],  # any column order; 姓名 may be left out
            ["监考员、技术服务", "y1", "R01, R02"],
            ["考官", "y2", None],
            ["reviewer", "y3", ""],
        ]
    )
    r = upload(client, exam, good, adm, dry=True)
    assert r.status_code == 200 and [p["username"] for p in r.json()["preview"]] == [
        "y1",
        "y2",
        "y3",
    ]
    assert r.json()["created"] == []
    r = upload(client, exam, good, adm)
    assert r.status_code == 200, r.text
    created = {c["username"]: c for c in r.json()["created"]}
    assert created["y1"]["roles"] == ["proctor", "tech"]
    assert sorted(x["code"] for x in created["y1"]["rooms"]) == ["R01", "R02"]
    token = staff_token(client, "y1", created["y1"]["password"])
    assert client.get("/api/v1/staff/rooms/R02", headers=bearer(token)).status_code == 200
    assert exam in created["y2"]["exam_ids"]  # the examiner is tied to this exam
    assert audit_actions(app_ctx).count("staff_import") == 3
    # Importing the same sheet again: every name is taken now.
    r = upload(client, exam, good, adm)
    assert r.status_code == 422 and len(r.json()["error"]["problems"]) == 3
