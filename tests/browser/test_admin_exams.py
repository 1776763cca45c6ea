"""考试管理 in a real browser: the admin signs in, 新建考试 (the page's own checks, then the
server's, shown under their fields), 保存, finds it in the list, edits it, uploads an
attachment and sees its preview, reads the audit history, exports the exam file, copies and
deletes; an exam whose face login has opened offers only its safe fields."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import exam_doc, import_exam
from playwright.sync_api import Page, expect

from invigil.core.context import AppContext

from .conftest import Live

PHOTO = (Path(__file__).resolve().parents[1] / "data" / "faces" / "obama.jpg").read_bytes()


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["staff"].append({"username": "adm", "password": "pw-adm", "roles": ["admin"]})
    return import_exam(app_ctx, tmp_path / "exam", doc)


def shot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        page.screenshot(path=str(folder / f"admin-exams-{name}.png"), full_page=True)


def test_admin_creates_edits_attaches_exports_copies_deletes(
    page: Page, live: Live, screens: Path | None
) -> None:
    page.goto(f"{live.url}/admin/")
    page.get_by_label("用户名").fill("adm")
    page.get_by_label("密码").fill("pw-adm")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#exams tbody tr")).to_have_count(1)
    for tab in ("考试管理", "考生导入", "考场与人员", "考务总览", "个别安排", "成绩发布"):
        expect(page.locator("#nav").get_by_role("link", name=tab, exact=True)).to_be_visible()
    shot(page, screens, "1-list")

    # --- 新建考试: what the page checks itself, then what only the server knows ------------------
    page.get_by_role("button", name="新建考试").click()
    expect(page.get_by_role("heading", name="新建考试")).to_be_visible()
    for rule in ("login_opens_before", "entry_closes_after", "retention", "liveness"):
        expect(page.locator(f'[data-field="rules.{rule}"] .hint')).to_contain_text("默认")
    # Each rule is named in Chinese first, with the exam file's key beside it.
    expect(page.locator('[data-field="rules.login_opens_before"] label')).to_have_text(
        "登录开放（login_opens_before）"
    )
    page.get_by_role("button", name="保存").click()
    expect(page.locator("#err-title")).to_have_text("必填：请填写考试名称")
    expect(page.locator("#err-starts_at")).to_contain_text("必填")
    page.get_by_label("考试名称").fill("网页创建的面试")
    page.locator("#f-start").fill("2030-06-10T09:30")
    page.get_by_label("考试时长").fill("25 分钟")
    page.locator("#f-rule-entry_opens_before").fill("40m")
    page.locator(".q-text").first.fill("WEB-Q1 请介绍你自己。")
    page.get_by_role("button", name="添加试题").click()
    page.locator(".q-text").nth(1).fill("WEB-Q2 谈谈团队合作。")
    page.locator(".q-points").nth(1).fill("20")
    page.get_by_label("no_face seconds").fill("25")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("#err-duration")).to_contain_text("无法识别")
    expect(page.locator("#err-rules-entry_opens_before")).to_contain_text("入场不能早于登录开放")
    expect(page.locator("#form-error")).to_contain_text("有 2 处需要修改")
    shot(page, screens, "2-form-problems")
    page.get_by_label("考试时长").fill("25m")
    page.locator("#f-rule-entry_opens_before").fill("")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("#exam-title")).to_have_text("网页创建的面试")
    expect(page.locator("#flash")).to_have_text("考试已创建。")
    expect(page.locator("#exam-facts")).to_contain_text("2030-06-10 09:30 (UTC+08:00)")
    page.get_by_role("link", name="考试列表").first.click()
    expect(page.locator("#exams tbody tr")).to_have_count(2)
    page.get_by_role("link", name="网页创建的面试").click()

    # --- edit --------------------------------------------------------------------------------------
    page.get_by_role("button", name="编辑").click()
    expect(page.locator(".q-text").nth(1)).to_have_value("WEB-Q2 谈谈团队合作。")
    expect(page.get_by_label("no_face seconds")).to_have_value("25")
    page.get_by_label("求助电话").fill("010-88886666")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("#flash")).to_have_text("已保存，修改了：help_phone。")
    expect(page.locator("#exam-facts")).to_contain_text("010-88886666")

    # --- an attachment: upload with progress, then its preview ---------------------------------------
    page.get_by_label("附件标题").fill("座位示意图")
    page.locator("#attachment-file").set_input_files(
        {"name": "seat.jpg", "mimeType": "image/jpeg", "buffer": PHOTO}
    )
    page.get_by_role("button", name="上传附件").click()
    expect(page.locator("#flash")).to_contain_text("附件“座位示意图”已上传")
    expect(page.locator("#attachment-preview img")).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#attachment-preview img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    shot(page, screens, "3-exam-page")
    page.get_by_label("附件标题").fill("病毒")
    page.locator("#attachment-file").set_input_files(
        {"name": "x.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00" * 64}
    )
    page.get_by_role("button", name="上传附件").click()
    expect(page.locator("#attachment-error")).to_contain_text("只能上传 PDF、图片")

    # --- the audit history ------------------------------------------------------------------------
    page.get_by_text("修改记录（审计）").click()
    history = page.locator("#history-table")
    expect(history.locator('tr[data-action="exam_create"]')).to_have_count(1)
    expect(history.locator('tr[data-action="exam_edit"]')).to_contain_text(
        "help_phone: — → 010-88886666"
    )
    expect(history.locator('tr[data-action="exam_attachment_add"]')).to_contain_text("座位示意图")
    shot(page, screens, "4-history")

    # --- export ----------------------------------------------------------------------------------
    with page.expect_download() as dl:
        page.get_by_role("button", name="导出考试文件").click()
    doc = yaml.safe_load(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert doc["exam"]["title"] == "网页创建的面试"
    assert doc["exam"]["flags"] == {"no_face": {"seconds": 25}}
    assert [q["points"] for q in doc["exam"]["questions"]] == [10, 20]
    assert doc["exam"]["attachments"][0]["title"] == "座位示意图"
    with page.expect_download() as dl:
        page.get_by_role("button", name="导出考试包（含照片和附件）").click()
    with zipfile.ZipFile(dl.value.path()) as package:
        assert set(package.namelist()) == {"exam.yaml", "attachments/1-seat.jpg"}
        assert package.read("attachments/1-seat.jpg") == PHOTO
    expect(page.locator("#export-done")).to_have_text("已导出。")

    # --- copy, then delete the copy (取消 first) ----------------------------------------------------
    page.get_by_text("复制考试…").click()
    page.get_by_label("新考试名称").fill("网页创建的面试（第二场）")
    page.locator("#copy-start").fill("2030-06-11T09:30")
    page.get_by_role("button", name="复制", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator("#exam-title")).to_have_text("网页创建的面试（第二场）")
    expect(page.locator("#attachments")).to_contain_text("座位示意图")
    page.get_by_role("button", name="删除", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="取消").click()
    expect(page.locator("#exam-title")).to_be_visible()
    page.get_by_role("button", name="删除", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator("#flash")).to_contain_text("已删除考试")
    expect(page.locator("#exams tbody tr")).to_have_count(2)

    # --- the imported exam: face login is open, only safe fields -------------------------------
    page.get_by_role("link", name="测试考试").click()
    expect(page.locator("#locked")).to_be_visible()
    expect(page.get_by_role("button", name="删除", exact=True)).to_be_enabled()  # nobody yet
    page.get_by_role("button", name="导入考生").click()
    expect(page).to_have_url(f"{live.url}/admin/#roster/{live.exam_id}")
    page.go_back()
    page.get_by_role("button", name="考务总览").click()
    expect(page).to_have_url(f"{live.url}/admin/#overview/{live.exam_id}")
    page.go_back()
    page.get_by_role("button", name="编辑").click()
    expect(page.locator("#locked-note")).to_be_visible()
    expect(page.get_by_label("考试名称")).to_be_disabled()
    expect(page.locator(".q-text").first).to_be_disabled()
    expect(page.get_by_label("求助电话")).to_be_enabled()
    shot(page, screens, "5-locked")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Edit exam")).to_be_visible()
