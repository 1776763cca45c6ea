"""Before the exam starts: failed face logins, 进入考试 before its time and after entry closed,
and the phone binding that 进入考试 waits for."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
from conftest import T, exam_doc, import_exam
from playwright.sync_api import Page, expect
from sqlalchemy import select

from invigil.attempts.models import Attempt
from invigil.core.db import transaction

from . import flow
from .conftest import Live

WARNINGS = """
navigator.getBattery = async () => ({ level: 0.3, charging: false });
const enumerate = MediaDevices.prototype.enumerateDevices;
MediaDevices.prototype.enumerateDevices = async function () {
  const list = await enumerate.call(this);
  return [...list, { kind: "videoinput", label: "OBS Virtual Camera", deviceId: "obs", groupId: "obs" }];
};
"""


def steps_of(page: Page) -> list[str]:
    """The stage bar's labels (drawn by CSS from data-label)."""
    labels: list[str] = page.eval_on_selector_all(
        "#steps li", "els => els.map(e => e.dataset.label)"
    )
    return labels


def test_login_failures_then_entry_before_its_time_and_after_it_closed(
    page: Page, live: Live, screens: Path | None
) -> None:
    # A laptop on battery at 30 %, a second monitor, and OBS's virtual camera installed.
    page.add_init_script(WARNINGS)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.addScreen", {"left": 1280, "top": 0, "width": 1280, "height": 1024})
    flow.device_check(page, live, proceed=False)
    checks = page.locator(".checklist")
    expect(checks.locator("li.warn")).to_have_count(3)
    expect(checks).to_contain_text("电量 30%，且未在充电")
    expect(checks).to_contain_text("检测到多个显示器")
    expect(checks).to_contain_text("OBS Virtual Camera")
    flow.next_after_device_check(page)
    message = page.locator("#login-message")
    page.get_by_label("准考证号").fill("9999")
    page.get_by_role("button", name="人脸登录").click()
    expect(message).to_contain_text("没有找到这个准考证号")
    # Biden's ticket in front of Obama's face: refused, explained; after three, the help path.
    page.get_by_label("准考证号").fill("1002")
    for _ in range(2):
        page.get_by_role("button", name="人脸登录").click()
        expect(message).to_contain_text("照片与报名照片不一致")
        expect(page.get_by_role("button", name="人脸登录")).to_be_enabled()
    expect(page.locator("#login-help").get_by_role("button", name="求助")).to_be_visible()
    page.locator("#login-help").get_by_role("button", name="求助").click()
    expect(page.locator("#login-help")).to_contain_text("技术服务")
    flow.shot(page, screens, "2b-login-help")

    flow.login(page, "1001")
    # This exam has no evidence camera: no phone step in the bar (3 is the lot).
    expect(page.locator("#steps li.current")).to_have_attribute("data-label", "3 抽取顺序号")
    assert "佐证绑定" not in " ".join(steps_of(page))
    # The headings count as the bar does.
    expect(page.locator("main h1").first).to_have_text("第三步：抽取面试顺序号")
    flow.draw_lot(page)
    expect(page.locator("main h1").first).to_have_text("第四步：阅读考试附件")
    flow.read_attachments(page)
    expect(page.locator("main h1").first).to_have_text("第五步：入场")
    enter = page.get_by_role("button", name="进入考试")
    state = page.locator("#enter-state")
    expect(state).to_contain_text("将于 2030-06-01 08:50 开放")
    expect(enter).to_be_disabled()
    page.get_by_role("button", name="刷新", exact=True).click()
    expect(enter).to_be_disabled()
    assert page.evaluate("window.__invigil.uploads().length") == 0

    live.clock.set(T + timedelta(minutes=3, seconds=1))  # entry closed at T+3
    # The page notices by itself (heartbeat); 【刷新】 would do it at once.
    expect(page.locator("main")).to_contain_text(
        "入场时间已于 2030-06-01 09:03 结束", timeout=10000
    )
    flow.shot(page, screens, "6c-entry-closed")
    # The English switch, and back.
    page.get_by_role("button", name="English").click()
    expect(page.locator("main h1")).to_have_text("Entry closed")
    page.get_by_role("button", name="中文").click()
    expect(page.locator("main h1")).to_have_text("未能入场")


def test_enter_waits_for_the_recording_phone(
    page: Page, live: Live, screens: Path | None, tmp_path: Path
) -> None:
    doc = exam_doc()
    doc["exam"]["rules"]["evidence_camera"] = "required"
    exam_id = import_exam(live.ctx, tmp_path / "evidence-exam", doc)
    live.exam_id = exam_id
    flow.device_check(page, live)
    flow.login(page)

    code = page.locator("#binding-code strong")
    expect(code).to_have_text(re.compile(r"^\d{8}$"))
    expect(page.locator("#steps li.current")).to_have_attribute("data-label", "3 佐证绑定")
    assert len(steps_of(page)) == 9
    expect(page.locator("main h1").first).to_have_text("第三步：绑定手机佐证摄像头")
    expect(page.locator("#qr img")).to_be_visible()
    page.wait_for_function("document.querySelector('#qr img').naturalWidth > 100")  # it decodes
    status = page.locator("#phone-status")
    expect(status).to_contain_text("手机尚未绑定")
    flow.shot(page, screens, "3-binding")
    with httpx.Client(base_url=live.url) as phone:
        r = phone.post("/api/v1/phone/bind", json={"code": code.inner_text()})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        assert phone.post(
            "/api/v1/phone/status", json={"state": "sweeping"}, headers=auth
        ).is_success
        # The desk polls every 3 s; a loaded CI box has taken more than 3 s to answer a poll.
        expect(status).to_contain_text("手机正在环拍房间", timeout=20000)
        page.get_by_role("button", name="下一步").click()
        flow.draw_lot(page)
        flow.read_attachments(page)
        live.clock.set(T - timedelta(minutes=9))
        page.get_by_role("button", name="刷新", exact=True).click()
        enter = page.get_by_role("button", name="进入考试")
        expect(page.locator("#enter-state")).to_contain_text("手机佐证摄像头尚未开始录制")
        expect(enter).to_be_disabled()
        assert phone.post(
            "/api/v1/phone/status", json={"state": "recording"}, headers=auth
        ).is_success
        expect(enter).to_be_enabled(timeout=20000)


def danger_background(page: Page) -> str:
    """The computed background of a `button.danger` on this page (the red of 交卷 today)."""
    colour: str = page.evaluate(
        """() => {
            const b = document.createElement('button');
            b.className = 'danger';
            document.body.append(b);
            const c = getComputedStyle(b).backgroundColor;
            b.remove();
            return c;
        }"""
    )
    return colour


# Chunks made so far by the running (not stopped) recorders, per kind.
PRODUCED = """() => {
    const out = {};
    for (const r of window.__invigil.uploads()) {
        if (!r.stopped) out[r.kind] = (out[r.kind] || 0) + r.produced;
    }
    return out;
}"""


def test_finish_before_t_is_quiet_and_means_giving_up(page: Page, live: Live) -> None:
    flow.device_check(page, live)
    flow.login(page)
    flow.draw_lot(page)
    flow.read_attachments(page)
    flow.enter(page, live)
    flow.wait_recording(page)
    page.get_by_role("button", name="进入待考").click()
    expect(page.locator("#countdown")).to_be_visible()
    expect(page.locator("main h1")).to_have_text("待考")

    # While recording, the side panel does not read as if everything were over.
    side = page.locator("#backlog")
    expect(side).to_have_text("录像中 · 已录内容均已上传", timeout=20000)
    expect(side).not_to_contain_text("录像已全部上传到服务器")

    # Before T 【结束考试】 is there, but not the red button of handing in.
    finish = page.get_by_role("button", name="结束考试")
    expect(finish).to_be_visible()
    expect(finish).not_to_have_class(re.compile(r"\bdanger\b"))
    red = danger_background(page)
    assert finish.evaluate("b => getComputedStyle(b).backgroundColor") != red

    # Clicked anyway: the confirmation says the exam has not started and what ending means,
    # with the focus on 取消 so that Enter does not give the exam up.
    finish.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("考试尚未开始（2030-06-01 09:00 开考）")
    expect(dialog).to_contain_text("放弃本场考试")
    expect(dialog).not_to_contain_text("交卷")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "取消"
    before = page.evaluate(PRODUCED)
    dialog.get_by_role("button", name="取消").click()
    expect(dialog).to_be_hidden()

    # Still waiting, still recording, and the server has not finished the attempt.
    expect(page.locator("main h1")).to_have_text("待考")
    expect(page.locator("#countdown")).to_be_visible()
    page.wait_for_function(
        f"b => {{ const now = ({PRODUCED})(); return now.webcam > b.webcam && now.screen > b.screen; }}",
        arg=before,
        timeout=20000,
    )
    with transaction(live.ctx.db) as session:
        entered = list(session.scalars(select(Attempt).where(Attempt.entered_at.is_not(None))))
        assert len(entered) == 1 and entered[0].finished_at is None
    expect(side).to_have_text("录像中 · 已录内容均已上传", timeout=20000)

    # From T on it is the red hand-in button with today's confirmation.
    live.clock.set(T - timedelta(seconds=2))
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)
    finish = page.get_by_role("button", name="结束考试")
    expect(finish).to_have_class(re.compile(r"\bdanger\b"))
    assert finish.evaluate("b => getComputedStyle(b).backgroundColor") == red
    finish.click()
    expect(dialog).to_contain_text("确认现在交卷吗？")
    expect(dialog).not_to_contain_text("放弃本场考试")
    dialog.get_by_role("button", name="取消").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("main h1")).to_have_text("答题中")


def test_a_candidate_who_comes_after_entry_closed_is_not_shown_steps_they_never_did(
    page: Page, live: Live
) -> None:
    """Logged in after entry closed, without a lot or the attachments read: 未能入场, and the
    stage bar marks the device check and the face check done, not the lot and the attachments.
    On the way, the device check's upload speed reads in Mbps."""
    live.clock.set(T + timedelta(minutes=4))
    flow.device_check(page, live, proceed=False)
    # The upload speed as a person reads it (here: loopback, tens of Mbps or more).
    expect(page.locator(".checklist")).to_contain_text(
        re.compile(r"上传速度约 (\d\.\d|[1-9]\d+) Mbps，正常。")
    )
    flow.next_after_device_check(page)
    flow.login(page)
    expect(page.locator("main h1")).to_have_text("未能入场")
    classes = page.eval_on_selector_all("#steps li", "els => els.map(e => e.className)")
    assert [label.split(" ", 1)[1] for label in steps_of(page)][:5] == [
        "设备准备",
        "人脸识别",
        "抽取顺序号",
        "阅读附件",
        "入场",
    ]
    assert classes[:5] == ["done", "done", "", "", "current"], classes
