"""The exam office's screens in the browser: 考场与人员 (a room, a staff member with a password
shown once, an XLSX import whose problems are listed first), 考务总览 (a candidate's login shows
up within 2 s without a reload) and 个别安排 (extra time moves the candidate's deadline)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FACES, T, exam_doc, import_exam, serve
from fastapi import FastAPI
from openpyxl import Workbook
from playwright.sync_api import Page, expect

from invigil.core.clock import iso
from invigil.core.context import AppContext

from .conftest import ShiftedClock

ADMIN = {"username": "adm", "password": "pw-adm", "roles": ["admin"]}


def shot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_label("用户名").fill("adm")
    page.get_by_label("密码").fill("pw-adm")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("button", name="退出")).to_be_visible()


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def office(app: FastAPI, app_ctx: AppContext, tmp_path: Path) -> Iterator[tuple[str, str]]:
    doc = exam_doc()
    doc["staff"] = [*doc["staff"], ADMIN]
    exam = import_exam(app_ctx, tmp_path / "exam", doc)
    with serve(app) as url:
        yield url, exam


def test_rooms_and_staff(page: Page, office: tuple[str, str], screens: Path | None) -> None:
    url, exam = office
    sign_in(page, f"{url}/admin/#people/{exam}")
    rooms = page.locator("#rooms")
    expect(rooms.locator("tr[data-room=R01]")).to_contain_text("p1")
    page.get_by_label("考场编号").fill("R03")
    page.get_by_label("考场名称").fill("备用考场")
    page.get_by_role("button", name="添加考场").click()
    expect(rooms.locator("tr[data-room=R03]")).to_contain_text("备用考场")

    form = page.locator("#new-staff")
    form.get_by_label("用户名").fill("p3")
    form.get_by_label("姓名").fill("王监考")
    form.get_by_label("R03 备用考场").check()
    form.get_by_role("button", name="添加工作人员").click()
    shown = page.locator("[data-password-for=p3] code.password")
    expect(shown).to_be_visible()
    password = shown.inner_text()
    assert len(password) >= 12
    expect(page.locator("#staff tr[data-staff=p3]")).to_contain_text("R03")
    r = httpx.post(f"{url}/api/v1/staff/login", json={"username": "p3", "password": password})
    assert r.status_code == 200

    # A bad sheet: every problem in a table, one row per problem naming the sheet's row.
    page.get_by_label("工作人员名单").set_input_files(
        files=[
            {
                "name": "staff.xlsx",
                "mimeType": "application/octet-stream",
                "buffer": xlsx(
                    [["用户名", "角色", "考场"], ["s1", "监考员", "R09"], ["s1", "校长", "R01"]]
                ),
            }
        ]
    )
    page.get_by_role("button", name="导入工作人员").click()
    problems = page.locator("#staff-problems tbody tr")
    expect(problems).to_have_count(3)
    expect(problems.nth(0)).to_contain_text("第 2 行")
    expect(page.get_by_role("alert")).to_contain_text("未导入任何账号")
    shot(page, screens, "admin-people-problems")

    page.get_by_label("工作人员名单").set_input_files(
        files=[
            {
                "name": "staff.xlsx",
                "mimeType": "application/octet-stream",
                "buffer": xlsx([["用户名", "角色", "考场"], ["s1", "监考员", "R01"]]),
            }
        ]
    )
    page.get_by_role("button", name="导入工作人员").click()
    expect(page.locator("#staff-created tr[data-staff=s1] code.password")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="下载密码表").click()
    assert "s1" in Path(download.value.path()).read_text(encoding="utf-8-sig")
    expect(page.get_by_role("button", name="已下载")).to_be_disabled()
    shot(page, screens, "admin-people")


def test_overview_follows_the_day_and_extra_time(
    page: Page, office: tuple[str, str], clock: ShiftedClock, screens: Path | None
) -> None:
    url, exam = office
    sign_in(page, f"{url}/admin/#overview/{exam}")
    r01 = page.locator("#overview-rooms tr[data-room=R01]")
    expect(r01.locator("td[data-status=not_logged_in]")).to_have_text("2")
    expect(page.locator("#live-state")).to_have_text("实时")
    # The link into the room's console.
    href = r01.get_by_role("link").get_attribute("href")
    assert href is not None and href.startswith("/proctor/?room=")

    r = httpx.post(
        f"{url}/api/v1/candidate/login",
        data={"exam_id": exam, "ticket": "1001"},
        files={"face": ("f.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    started = time.monotonic()
    expect(r01.locator("td[data-status=logged_in]")).to_have_text("1", timeout=2000)
    took = time.monotonic() - started
    expect(page.locator("[data-total=logged_in] .n")).to_have_text("1")
    print(f"overview showed the login after {took:.2f} s")
    shot(page, screens, "admin-overview")

    # 个别安排: extra time for that candidate.
    token = r.json()["token"]
    me = {"Authorization": f"Bearer {token}"}
    page.get_by_role("link", name="个别安排").click()
    page.get_by_label("查找考生").fill("1001")
    page.get_by_role("button", name="查找").click()
    page.get_by_label("共延长（分钟）").fill("10")
    page.get_by_label("原因").first.fill("设备故障，耽误 10 分钟")
    page.get_by_role("button", name="保存延长时间").click()
    moved = iso(T + timedelta(minutes=30))
    expect(page.locator("#candidate-deadline")).to_have_attribute("data-deadline", moved)
    expect(page.locator("#arrangement-note")).to_contain_text("截止时间改为")
    state = httpx.get(f"{url}/api/v1/candidate/state", headers=me).json()
    assert state["schedule"]["deadline"] == moved
    shot(page, screens, "admin-arrangements")
