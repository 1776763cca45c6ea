"""Issue 16 end to end, in the browser: the exam office creates an exam from the web (新建考试,
保存), adds its room, imports an XLSX roster with a photo ZIP after seeing every problem of a
bad file first (导入考生 → the problems table → 确认导入), adds a proctor; a candidate then runs
the day at the desk while 考务总览 shows each stage change within 2 s without a reload; extra
time from 个别安排 moves the deadline on the candidate's screen.

The server runs its embedded job worker (the roster check and import are jobs), and its clock
is real time shifted: it starts two hours before T (the roster may still change) and jumps to
the moments the day needs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from admin.roster_files import photo, xlsx, zip_bytes
from conftest import T, exam_doc, import_exam, serve
from playwright.sync_api import Page, expect

from invigil.app import create_app
from invigil.core.clock import iso
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database

from .conftest import CSP_LISTENER, Live, ShiftedClock
from .flow import device_check, draw_lot, login, wait_recording

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JOB_WAIT = 30_000  # the roster check and import are worker jobs (face checks on 2 loaded cores)
LIVE_WAIT = 2_000  # the promise: the overview follows within 2 s


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock(T - timedelta(hours=2))


@pytest.fixture
def office(settings: Settings, db: Database, clock: ShiftedClock, tmp_path: Path) -> Iterator[Live]:
    """A server with the worker running and nothing but an admin account (which comes, like
    any account, from an earlier exam's file)."""
    app = create_app(settings, clock=clock, db=db, start_worker=True)
    ctx: AppContext = app.state.ctx
    seed = exam_doc(staff=[{"username": "adm", "password": "pw-adm", "roles": ["admin"]}])
    seed["exam"]["title"] = "往期考试"
    seed["exam"]["starts_at"] = "2030-07-01T09:00:00+08:00"
    seed["candidates"] = seed["candidates"][:1]
    import_exam(ctx, tmp_path / "seed", seed)
    with serve(app) as url:
        yield Live(url, ctx, clock, "")


@pytest.fixture
def admin(browser: Any) -> Iterator[Page]:
    """The office's own browser window, beside the candidate's."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.add_init_script(CSP_LISTENER)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"errors in the admin page: {errors}"


def shot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        page.screenshot(path=str(folder / f"admin-day-{name}.png"), full_page=True)


def create_exam(admin: Page, url: str) -> str:
    admin.goto(f"{url}/admin/")
    admin.get_by_label("用户名").fill("adm")
    admin.get_by_label("密码").fill("pw-adm")
    admin.get_by_role("button", name="登录").click()
    admin.get_by_role("button", name="新建考试").click()
    admin.get_by_label("考试名称").fill("网页创建的结构化面试")
    admin.locator("#f-start").fill("2030-06-01T09:00")  # T, in UTC+08:00
    admin.locator("#f-zone").select_option("+08:00")
    admin.get_by_label("考试时长").fill("20m")
    admin.locator("#f-rule-evidence_camera").select_option("off")
    admin.locator("#f-rule-liveness").select_option("off")
    admin.locator(".q-text").first.fill("QUESTION-ONE 请谈谈你对本岗位的认识。")
    admin.get_by_role("button", name="保存").click()
    expect(admin.locator("#exam-title")).to_have_text("网页创建的结构化面试")
    found = re.search(r"#exam/([^/]+)", admin.url)
    assert found, admin.url
    return found.group(1)


def choose_roster(admin: Page, roster: bytes, photos: bytes) -> None:
    admin.get_by_label("考生名单").set_input_files(
        files=[{"name": "考生名单.xlsx", "mimeType": XLSX, "buffer": roster}]
    )
    admin.get_by_label("照片压缩包").set_input_files(
        files=[{"name": "照片.zip", "mimeType": "application/zip", "buffer": photos}]
    )


def overview_cell(admin: Page, status: str) -> Any:
    return admin.locator(f"#overview-rooms tr[data-room=R01] td[data-status={status}]")


def test_the_office_runs_the_day(
    page: Page, admin: Page, office: Live, screens: Path | None
) -> None:
    url = office.url
    exam = create_exam(admin, url)
    office.exam_id = exam

    # 考场与人员: the exam's room.
    admin.goto(f"{url}/admin/#people/{exam}")
    admin.get_by_label("考场编号").fill("R01")
    admin.get_by_label("考场名称").fill("第1考场")
    admin.get_by_role("button", name="添加考场").click()
    expect(admin.locator("#rooms tr[data-room=R01]")).to_be_visible()

    # 导入考生: a bad file first, every problem named by its row; then the right one.
    admin.goto(f"{url}/admin/#roster/{exam}")
    bad = xlsx(
        [
            ("1001", "奥巴马", "R01", "obama.jpg"),
            ("1001", "拜登", "R01", "biden.jpg"),  # row 3: the same ticket again
            ("1003", "汉克斯", "R09", "tom_hanks.jpg"),  # row 4: no such room
        ]
    )
    photos = zip_bytes({n: photo(n) for n in ("obama.jpg", "biden.jpg", "tom_hanks.jpg")})
    choose_roster(admin, bad, photos)
    admin.get_by_role("button", name="导入考生").click()
    problems = admin.locator("#roster-problems tbody tr")
    expect(problems).to_have_count(2, timeout=JOB_WAIT)
    assert [r.locator("td").first.inner_text() for r in problems.all()] == ["3", "4"]
    shot(admin, screens, "1-roster-problems")
    choose_roster(admin, xlsx([("1001", "奥巴马", "R01", "obama.jpg")]), photos)
    admin.get_by_role("button", name="导入考生").click()
    expect(admin.locator("#roster-preview")).to_be_visible(timeout=JOB_WAIT)
    admin.get_by_role("button", name="确认导入").click()
    admin.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(admin.locator("#roster-verdict")).to_contain_text("导入完成", timeout=JOB_WAIT)

    # 考场与人员: a proctor for the room (password shown once).
    admin.goto(f"{url}/admin/#people/{exam}")
    staff = admin.locator("#new-staff")
    staff.get_by_label("用户名").fill("p1")
    staff.get_by_label("R01 第1考场").check()
    staff.get_by_role("button", name="添加工作人员").click()
    expect(admin.locator("[data-password-for=p1] code.password")).to_be_visible()

    # 考务总览, open before the day starts; it is never reloaded from here on.
    admin.get_by_role("link", name="考务总览").click()
    expect(admin.locator("#live-state")).to_have_text("实时")
    expect(overview_cell(admin, "not_logged_in")).to_have_text("1")
    admin.evaluate("window.__sameOverview = true")  # gone if the page reloads

    # The candidate's day at the desk; each stage change reaches the overview within 2 s.
    office.clock.set(T - timedelta(minutes=15))
    device_check(page, office)
    login(page, "1001")
    expect(page.get_by_role("button", name="抽签")).to_be_visible(timeout=20000)
    started = time.monotonic()
    expect(overview_cell(admin, "logged_in")).to_have_text("1", timeout=LIVE_WAIT)
    seen_login = time.monotonic() - started
    draw_lot(page)  # no attachments: straight to entering
    office.clock.set(T - timedelta(minutes=9))
    page.get_by_role("button", name="刷新", exact=True).click()
    page.get_by_role("button", name="进入考试").click()
    expect(page.get_by_role("button", name="进入待考")).to_be_visible()
    started = time.monotonic()
    expect(overview_cell(admin, "entered")).to_have_text("1", timeout=LIVE_WAIT)
    seen_entry = time.monotonic() - started
    wait_recording(page)
    page.get_by_role("button", name="进入待考").click()
    office.clock.set(T - timedelta(seconds=2))
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)
    expect(overview_cell(admin, "answering")).to_have_text("1", timeout=LIVE_WAIT + 1000)
    assert admin.evaluate("window.__sameOverview") is True
    print(f"overview: login after {seen_login:.2f} s, entry after {seen_entry:.2f} s")
    shot(admin, screens, "2-overview")

    # 个别安排: 10 minutes more; the desk's countdown follows without a reload.
    countdown = page.locator("#answer-countdown")
    expect(countdown).to_have_text(re.compile(r"^(19|20):\d\d$"))
    admin.get_by_role("link", name="个别安排").click()
    admin.get_by_label("查找考生").fill("1001")
    admin.get_by_role("button", name="查找").click()
    admin.get_by_label("共延长（分钟）").fill("10")
    admin.get_by_role("button", name="保存延长时间").click()
    moved = iso(T + timedelta(minutes=30))
    expect(admin.locator("#candidate-deadline")).to_have_attribute("data-deadline", moved)
    expect(countdown).to_have_text(re.compile(r"^(29|30):\d\d$"), timeout=8000)
    shot(admin, screens, "3-extra-time")
