"""Face-recognition consent at login (人脸识别技术应用安全管理办法): the notice before the first
capture, 人脸登录 (or 同意) as the consent in the contract's flow, and 不同意 leading to the manual check by tech support."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from conftest import exam_doc, face, import_exam
from playwright.sync_api import Page, expect
from sqlalchemy import select

from invigil.attempts.models import Event
from invigil.core.db import transaction
from invigil.proctoring.models import LoginHelpRequest

from . import flow
from .conftest import Live


def _log(live: Live) -> list[tuple[str, dict[str, Any]]]:
    with transaction(live.ctx.db) as session:
        return [(e.kind, dict(e.data)) for e in session.scalars(select(Event).order_by(Event.seq))]


def _kinds(live: Live) -> list[str]:
    return [k for k, _ in _log(live)]


def test_notice_first_then_the_contract_flow_with_agree(
    page: Page, live: Live, screens: Path | None
) -> None:
    flow.device_check(page, live, proceed=False)
    flow.next_after_device_check(page, consent=False)
    notice = page.locator("#face-consent")
    # What is captured, why, who sees it and how long it is kept: the exam's 180 days after
    # its end (2030-06-01 09:20 Beijing + 180 d).
    expect(notice).to_contain_text("人脸识别告知")
    expect(notice).to_contain_text("登录时的人脸照片")
    expect(notice).to_contain_text("与您的报名照片比对")
    expect(page.locator("#login-how")).to_contain_text("系统会把这张照片与您的报名照片比对")
    expect(notice).to_contain_text("考试结束后保存 180 天（至 2030-11-28）")
    flow.shot(page, screens, "2a-face-consent")
    page.wait_for_timeout(1000)
    assert _kinds(live) == []  # nothing captured, sent or logged while the notice is read
    expect(notice).to_contain_text("点击【同意】或下方的【人脸登录】，即表示您单独同意")
    # The contract's steps in the order an outside check takes them: the ticket, 人脸登录; the
    # notice says that click is the consent, so it is recorded first and the login goes on.
    page.get_by_label("准考证号").fill("1001")
    page.wait_for_function("document.querySelector('.face-guide video').videoWidth > 0")
    page.get_by_role("button", name="人脸登录").click()
    expect(page.get_by_role("button", name="抽签")).to_be_visible(timeout=20000)
    kinds = _kinds(live)
    assert kinds.index("face_consent_given") < kinds.index("login"), kinds
    given = dict(_log(live))["face_consent_given"]
    assert given["retention_days"] == 180 and given["notice_version"]
    # A reload keeps the session: no second notice, no second login.
    page.reload()
    expect(page.get_by_role("button", name="抽签")).to_be_visible()


def test_a_practice_exam_says_the_first_login_photo_is_the_reference(
    page: Page, live: Live, tmp_path: Path
) -> None:
    """A practice exam has no enrolment photos: the page must not promise a comparison with
    one, but say what the first login's photo becomes."""
    doc = exam_doc()
    doc["exam"]["practice"] = True
    for candidate in doc["candidates"]:
        del candidate["photo"]
    live.exam_id = import_exam(live.ctx, tmp_path / "practice", doc)
    flow.device_check(page, live, proceed=False)
    flow.next_after_device_check(page, consent=False)
    purpose = page.locator("#consent-purpose")
    expect(purpose).to_contain_text("这是模拟考试，没有报名照片")
    expect(purpose).to_contain_text("第一次成功登录时的照片作为比对照片")
    how = page.locator("#login-how")
    expect(how).to_contain_text("您第一次成功登录时拍的照片将作为之后比对的照片")
    for text in (purpose, how):
        expect(text).not_to_contain_text("报名照片比对")
    # Its first login enrols the face, as the page said.
    page.get_by_label("准考证号").fill("1001")
    page.wait_for_function("document.querySelector('.face-guide video').videoWidth > 0")
    page.get_by_role("button", name="人脸登录").click()
    expect(page.get_by_role("button", name="抽签")).to_be_visible(timeout=20000)
    assert dict(_log(live))["login"]["enrolled_now"] is True


def test_decline_leads_to_manual_check_without_a_capture(
    page: Page, live: Live, screens: Path | None
) -> None:
    flow.device_check(page, live, proceed=False)
    flow.next_after_device_check(page, consent=False)
    page.get_by_role("link", name="不同意").click()
    expect(page.locator("#consent-declined")).to_contain_text("不会拍摄或上传您的人脸照片")
    expect(page.get_by_role("button", name="人脸登录")).to_be_hidden()
    manual = page.locator("#manual-check")
    expect(manual).to_contain_text("人工核验")
    page.get_by_label("准考证号").fill("1001")
    page.locator("#login-help-text").fill("我不想使用人脸识别")
    flow.shot(page, screens, "2d-face-consent-declined")
    page.get_by_role("button", name="提交求助").click()
    expect(manual).to_contain_text("正在等待技术服务审核")

    kinds = _kinds(live)
    assert kinds == ["face_consent_refused", "login_help_requested"], kinds
    requested = dict(_log(live))["login_help_requested"]
    assert requested["face_consent_refused"] is True and requested["has_face"] is False
    with transaction(live.ctx.db) as session:
        req = session.scalars(select(LoginHelpRequest)).one()
        assert req.face_key is None  # no face went anywhere
    with httpx.Client(base_url=live.url, timeout=30) as http:
        # While declined, the server processes no face for this candidate, whoever sends one.
        r = http.post(
            "/api/v1/candidate/login",
            data={"exam_id": live.exam_id, "ticket": "1001"},
            files={"face": ("face.jpg", face("obama2.jpg"), "image/jpeg")},
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "face_consent_refused"
        # Tech support sees why there is no photo, and lets the candidate in by hand.
        auth = http.post("/api/v1/staff/login", json={"username": "tech1", "password": "pw-tech1"})
        tech = {"Authorization": f"Bearer {auth.json()['token']}"}
        pending = http.get("/api/v1/staff/login-help", headers=tech).json()["requests"]
        assert len(pending) == 1 and pending[0]["face_consent_refused"] is True
        assert pending[0]["face_url"] is None
        r = http.post(
            f"/api/v1/staff/login-help/{pending[0]['request_id']}/approve",
            headers=tech,
            json={"reason": "视频核对身份证"},
        )
        assert r.status_code == 200, r.text
    expect(page.get_by_role("button", name="抽签")).to_be_visible(timeout=15000)
    expect(page.locator("#who-logged-in")).to_contain_text(re.compile("奥巴马.*1001"))
    assert "face_consent_given" not in _kinds(live)
    assert "login_failed" not in _kinds(live)


def test_changing_mind_and_another_ticket_ask_again(page: Page, live: Live) -> None:
    flow.device_check(page, live, proceed=False)
    flow.next_after_device_check(page, consent=False)
    page.get_by_role("link", name="不同意").click()
    page.get_by_role("button", name="改为使用人脸识别登录").click()
    flow.agree_to_face_recognition(page)
    flow.login(page, "1002")  # Obama's face on Biden's ticket: refused, but consented first
    expect(page.locator("#login-message")).to_contain_text("照片与报名照片不一致")
    # A corrected ticket on the same visit: the same person, who already chose.
    page.get_by_label("准考证号").fill("1001")
    expect(page.locator("#consent-given")).to_be_visible()
    # Later, someone else at this computer types their ticket: the notice is theirs to answer.
    page.reload()
    flow.next_after_device_check(page, consent=False)
    expect(page.locator("#consent-given")).to_be_visible()  # for 1002, typed last time
    page.get_by_label("准考证号").fill("2001")
    expect(page.get_by_role("button", name="同意")).to_be_visible()
    # English: the notice and the choice in English, the button still named 同意.
    page.get_by_role("button", name="English").click()
    expect(page.locator("#face-consent")).to_contain_text("Face recognition notice")
    expect(page.locator("#face-consent")).to_contain_text("180 days")
    expect(page.locator("#consent-agree")).to_have_text("Agree")
    page.get_by_role("button", name="中文").click()
    assert [k for k in _kinds(live) if k.startswith("face_consent")] == ["face_consent_given"]
