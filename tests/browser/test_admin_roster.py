"""考生导入 in the browser: a bad roster shows every problem (one row each, naming the roster
row), the fixed one shows the difference, 确认导入 (确定) applies it and the candidates are
listed. The server's embedded worker runs the check and import jobs, as under `invigil serve`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from admin.roster_files import GOOD_ROWS, good_zip, photo, xlsx, zip_bytes
from conftest import T, exam_doc, import_exam, serve
from playwright.sync_api import Page, expect

from invigil.app import create_app
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database

from .conftest import Live, ShiftedClock

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ADMIN = {"username": "adm", "password": "pw-adm", "roles": ["admin"]}
# The check and the import are jobs of the server's worker (it polls every second; the face
# checks take a few seconds on a loaded 2-core machine): more than expect's 5 s default.
JOB_WAIT = 30_000


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock(T - timedelta(hours=2))  # login not open yet: the roster may change


@pytest.fixture
def office(settings: Settings, db: Database, clock: ShiftedClock, tmp_path: Path) -> Iterator[Live]:
    app = create_app(settings, clock=clock, db=db, start_worker=True)
    ctx: AppContext = app.state.ctx
    doc = exam_doc(staff=[ADMIN])
    doc["candidates"] = [{"ticket": "9001", "name": "旧考生", "room": "R02", "photo": "obama.jpg"}]
    exam = import_exam(ctx, tmp_path / "exam", doc)
    with serve(app) as url:
        yield Live(url, ctx, clock, exam)


def _shot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _choose(page: Page, roster: bytes, photos: bytes) -> None:
    page.get_by_label("考生名单").set_input_files(
        files=[{"name": "考生名单.xlsx", "mimeType": XLSX, "buffer": roster}]
    )
    page.get_by_label("照片压缩包").set_input_files(
        files=[{"name": "照片.zip", "mimeType": "application/zip", "buffer": photos}]
    )


def test_bad_roster_then_fixed_then_imported(
    page: Page, office: Live, screens: Path | None
) -> None:
    page.goto(f"{office.url}/admin/#roster/{office.exam_id}")
    page.get_by_label("用户名").fill("adm")
    page.get_by_label("密码").fill("pw-adm")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="考生导入")).to_be_visible()
    expect(page.get_by_role("button", name="下载模板 (XLSX)")).to_be_visible()
    # Every progress bar the page shows is noted (the check may be over between two looks).
    page.evaluate(
        """() => { window.__bars = new Set();
        new MutationObserver(() => document.querySelectorAll('#roster-status progress')
          .forEach((p) => window.__bars.add(p.getAttribute('aria-label'))))
          .observe(document.body, {subtree: true, childList: true}); }"""
    )

    bad = xlsx(
        [
            ("1001", "奥巴马", "R01", "obama.jpg"),
            ("1001", "拜登", "R01", "biden.jpg"),  # row 3: duplicate ticket
            ("2001", "汉克斯", "R09", "tom_hanks.jpg"),  # row 4: unknown room
            ("2002", "空", "R02", "empty.jpg"),  # row 5: no face in the photo
            ("2003", "缺", "R02", "missing.jpg"),  # row 6: not in the ZIP
        ]
    )
    photos = zip_bytes(
        {n: photo(n) for n in ("obama.jpg", "biden.jpg", "tom_hanks.jpg", "empty.jpg")}
        | {"nobody.jpg": photo("obama2.jpg")}  # named by no row: a note, not a problem
    )
    _choose(page, bad, photos)
    page.get_by_role("button", name="导入考生").click()
    table = page.locator("#roster-problems")
    expect(table).to_be_visible(timeout=JOB_WAIT)
    # The count matches the table: four problems, and the note counted apart.
    expect(page.locator("#roster-verdict")).to_contain_text(
        "发现 4 处问题（另有 1 条提示），未导入任何内容"
    )
    headers = table.locator("thead th").all_inner_texts()
    assert headers == ["行", "列", "问题", "如何修改"]
    expect(table.locator("tbody tr.warning")).to_contain_text("nobody.jpg")
    rows = [r.locator("td").all_inner_texts() for r in table.locator("tbody tr.error").all()]
    assert [(r[0], r[1]) for r in rows] == [
        ("3", "准考证号"),
        ("4", "考场"),
        ("5", "照片文件名"),
        ("6", "照片文件名"),
    ]
    assert "准考证号 1001 重复：第 2 行与第 3 行" in rows[0][2]
    assert "未知考场「R09」" in rows[1][2] and "考场与人员" in rows[1][3]
    assert "未检测到人脸" in rows[2][2]
    assert "没有「missing.jpg」" in rows[3][2]
    assert all(r[3] for r in rows)  # each says how to fix it
    assert set(page.evaluate("[...window.__bars]")) >= {"上传进度", "检查进度"}
    _shot(page, screens, "admin-roster-1-problems")

    _choose(page, xlsx(GOOD_ROWS), good_zip())
    page.get_by_role("button", name="导入考生").click()
    preview = page.locator("#roster-preview")
    expect(preview).to_be_visible(timeout=JOB_WAIT)
    expect(page.locator("#roster-verdict")).to_contain_text(
        "新增 3 人，变更 0 人，删除 1 人，不变 0 人"
    )
    expect(page.locator("#diff-removed")).to_contain_text("9001")
    _shot(page, screens, "admin-roster-2-preview")

    page.get_by_role("button", name="确认导入").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("确认导入？将新增 3 人，变更 0 人，删除 1 人。")
    dialog.get_by_role("button", name="确定").click()
    expect(page.locator("#roster-verdict")).to_contain_text(
        "导入完成：新增 3 人，变更 0 人，删除 1 人。", timeout=JOB_WAIT
    )
    listed = page.locator("#candidates tbody tr")
    expect(listed).to_have_count(3)
    assert [r.locator("td").all_inner_texts()[:3] for r in listed.all()] == [
        ["1001", "奥巴马", "R01"],
        ["1002", "拜登", "R01"],
        ["2001", "汉克斯", "R02"],
    ]
    _shot(page, screens, "admin-roster-3-imported")
    # The English switch: the page's own words change, the contract's labels stay findable.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Roster import")).to_be_visible()
    expect(page.get_by_role("button", name="导入考生")).to_contain_text("Import")
    expect(page.locator("#candidates thead")).to_contain_text("Ticket")
    expect(page.get_by_label("考生名单")).to_be_visible()
