"""The evidence phone at the end of the exam, and what its screens show on the way there.

The phone learns from the server (its status heartbeat's answer) that the candidate submitted
on the desk, or that their time is over, and says so in Chinese with 【结束录制】 as the next
step, while it keeps recording until the candidate taps it; on the sweep and placement screens
(nothing recorded yet) 结束录制 takes the place of the step's button and uploads the sweep.
The stop confirmation is worded by that state. The preview of a rear camera is not mirrored;
the sweep's hints about pressing 【开始环拍】 and the motion-sensor prompt leave once the sweep
has begun."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import T, bearer
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from . import flow
from .conftest import Live
from .test_phone import offer, shot, turn
from .test_phone_platforms import IOS_SAFARI, MOTION_PERMISSION, MP4_ONLY, phone_as, qr

HEARTBEATS = 25_000  # the status heartbeat runs every 10 s: a couple of them, and some slack


def record(phone: Page, live: Live, o: dict[str, Any]) -> None:
    """Bind by the QR URL, sweep with orientation events, start recording."""
    phone.goto(qr(live, o))
    phone.get_by_role("button", name="开始环拍").click()
    phone.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
    turn(phone, 360)
    phone.get_by_role("button", name="开始录制").click()
    expect(phone.get_by_role("button", name="结束录制", exact=True)).to_be_visible()


def still_recording(phone: Page) -> None:
    expect(phone.get_by_text("● REC")).to_be_visible()
    assert phone.evaluate("window.__invigil.S.phase") == "recording"
    assert phone.evaluate("window.__invigil.S.recorder.active") is True


def test_phone_tells_the_candidate_to_stop_after_the_desk_submitted(
    phone: Page, live: Live, screens: Path | None
) -> None:
    o = offer(live)
    record(phone, live, o)
    notice = phone.locator("#exam-ended")
    stop = phone.get_by_role("button", name="结束录制", exact=True)

    # During the exam: no end notice; stopping is a warned, early stop.
    with httpx.Client(base_url=live.url, timeout=30) as http:
        desk = bearer(o["desk_token"])
        flow.enter_by_api(http, desk, live, T - timedelta(minutes=1))
        stop.click()
        dialog = phone.get_by_role("dialog")
        expect(dialog).to_contain_text("考试尚未结束")
        expect(dialog).to_contain_text("考试余下的时间将没有手机佐证录像")
        expect(notice).to_be_hidden()
        dialog.get_by_role("button", name="取消，继续录制").click()
        expect(dialog).to_be_hidden()

        # 交卷 on the desk (its API): the phone hears it within a heartbeat or two.
        assert http.post("/api/v1/candidate/finish", headers=desk).status_code == 200

    expect(notice).to_be_visible(timeout=HEARTBEATS)
    expect(notice).to_contain_text("考生已交卷")
    expect(notice).to_contain_text("请点击下方【结束录制】")
    # Only words: the phone goes on recording until the candidate taps 结束录制.
    phone.wait_for_timeout(1500)
    still_recording(phone)
    shot(phone, screens, "7-exam-ended")

    stop.click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_contain_text("考生已交卷。结束录制并上传剩余录像？")
    shot(phone, screens, "8-stop-after-submit")
    expect(dialog).not_to_contain_text("考试尚未结束")
    expect(dialog).not_to_contain_text("考试结束后才可")
    dialog.get_by_role("button", name="确定结束录制", exact=True).click()
    expect(phone.get_by_text("上传完成", exact=True)).to_be_visible(timeout=40000)


def test_phone_tells_the_candidate_to_stop_when_the_time_is_over(phone: Page, live: Live) -> None:
    o = offer(live)
    record(phone, live, o)
    notice = phone.locator("#exam-ended")
    expect(notice).to_be_hidden()
    live.clock.set(T + timedelta(minutes=20, seconds=1))  # the exam's 20 minutes are over
    expect(notice).to_be_visible(timeout=HEARTBEATS)
    expect(notice).to_contain_text("考试时间已到")
    expect(notice).to_contain_text("【结束录制】")
    still_recording(phone)
    phone.get_by_role("button", name="结束录制", exact=True).click()
    expect(phone.get_by_role("dialog")).to_contain_text("考试时间已到。结束录制并上传剩余录像？")
    phone.get_by_role("dialog").get_by_role("button", name="取消，继续录制").click()
    still_recording(phone)


def test_phone_being_placed_hears_that_the_exam_ended(
    phone: Page, live: Live, screens: Path | None
) -> None:
    """A phone still being placed when the candidate submits (a replacement phone, one that
    never got to record): the same notice, 结束录制 instead of 开始录制, and its sweep uploads."""
    o = offer(live)
    phone.goto(qr(live, o))
    phone.get_by_role("button", name="开始环拍").click()
    phone.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
    turn(phone, 360)
    start = phone.get_by_role("button", name="开始录制")
    expect(start).to_be_visible()
    notice = phone.locator("#exam-ended")
    expect(notice).to_be_hidden()
    expect(phone.get_by_role("button", name="结束录制", exact=True)).to_be_hidden()
    with httpx.Client(base_url=live.url, timeout=30) as http:
        desk = bearer(o["desk_token"])
        flow.enter_by_api(http, desk, live, T - timedelta(minutes=1))
        assert http.post("/api/v1/candidate/finish", headers=desk).status_code == 200

    expect(notice).to_be_visible(timeout=HEARTBEATS)
    expect(notice).to_contain_text("考生已交卷，考试已结束。")
    expect(notice).to_contain_text("手机无需再环拍或录制")
    expect(notice).to_contain_text("请点击下方【结束录制】")
    expect(start).to_be_hidden()
    expect(phone.locator("#place-guide")).to_be_hidden()  # its 【开始录制】 no longer applies
    stop = phone.get_by_role("button", name="结束录制", exact=True)
    expect(stop).to_be_visible()
    shot(phone, screens, "7b-exam-ended-while-placing")
    stop.click()
    expect(phone.get_by_text("上传完成", exact=True)).to_be_visible(timeout=40000)
    assert phone.evaluate("window.__invigil.uploads().every(r => r.finalized)")


def test_phone_before_its_sweep_hears_that_the_time_is_over(phone: Page, live: Live) -> None:
    o = offer(live)
    phone.goto(qr(live, o))
    sweep = phone.get_by_role("button", name="开始环拍")
    expect(sweep).to_be_visible()
    notice = phone.locator("#exam-ended")
    expect(notice).to_be_hidden()
    live.clock.set(T + timedelta(minutes=20, seconds=1))  # the exam's 20 minutes are over
    expect(notice).to_be_visible(timeout=HEARTBEATS)
    expect(notice).to_contain_text("考试时间已到，考试已结束。")
    expect(notice).to_contain_text("手机无需再环拍或录制")
    expect(sweep).to_be_hidden()
    # In English too, and back.
    phone.get_by_role("button", name="English").click()
    expect(notice).to_contain_text("The exam time is over.")
    phone.get_by_role("button", name="中文").click()
    expect(notice).to_contain_text("考试时间已到")
    phone.get_by_role("button", name="结束录制", exact=True).click()
    expect(phone.get_by_text("上传完成", exact=True)).to_be_visible(timeout=40000)


def test_phone_status_answer_says_whether_the_exam_is_over(
    client: TestClient, exam_id: str, clock: Any
) -> None:
    from conftest import login

    clock.set(T - timedelta(minutes=15))
    desk = login(client, exam_id, "1001").json()["token"]
    code = client.post("/api/v1/candidate/binding", headers=bearer(desk)).json()["code"]
    phone = bearer(client.post("/api/v1/phone/bind", json={"code": code}).json()["token"])
    r = client.post("/api/v1/phone/status", headers=phone, json={"state": "recording"}).json()
    assert r["state"] == "recording" and r["ended"] is None
    assert r["deadline"].startswith("2030-06-01T01:20:00")
    assert client.get("/api/v1/phone/state", headers=phone).json()["ended"] is None
    client.post("/api/v1/candidate/lot", headers=bearer(desk))
    for a in client.get("/api/v1/candidate/state", headers=bearer(desk)).json()["attachments"]:
        client.post(f"/api/v1/candidate/attachments/{a['id']}/read", headers=bearer(desk))
    clock.set(T - timedelta(minutes=1))
    assert client.post("/api/v1/candidate/enter", headers=bearer(desk)).status_code == 200
    clock.set(T + timedelta(minutes=20))  # their deadline, not submitted
    r = client.post("/api/v1/phone/status", headers=phone, json={"state": "recording"}).json()
    assert r["ended"] == "time_over"
    clock.set(T + timedelta(minutes=5))
    r = client.post("/api/v1/phone/status", headers=phone, json={"state": "recording"}).json()
    assert r["ended"] is None
    assert client.post("/api/v1/candidate/finish", headers=bearer(desk)).status_code == 200
    r = client.post("/api/v1/phone/status", headers=phone, json={"state": "recording"}).json()
    assert r["ended"] == "submitted"
    assert client.get("/api/v1/phone/state", headers=phone).json()["ended"] == "submitted"


# A phone's rear camera: the fake camera says it faces the environment.
FACING = """
  const settings = MediaStreamTrack.prototype.getSettings;
  MediaStreamTrack.prototype.getSettings = function () {
    const s = settings.call(this);
    return this.kind === 'video' ? {...s, facingMode: window.__facing || 'environment'} : s;
  };
"""


def preview_transform(page: Page) -> str:
    page.wait_for_function(
        "document.querySelector('#preview') && document.querySelector('#preview').srcObject"
    )
    return str(page.evaluate("getComputedStyle(document.querySelector('#preview')).transform"))


def test_rear_camera_preview_is_not_mirrored(phone_browser: Any, live: Live) -> None:
    o = offer(live)
    with phone_as(phone_browser, phone_browser.invigil_profile["user_agent"], FACING) as app:
        app.goto(qr(live, o))
        app.get_by_role("button", name="开始环拍").click()
        # "none" or the identity matrix: not scaleX(-1), which is matrix(-1, 0, 0, 1, 0, 0).
        assert preview_transform(app) in ("none", "matrix(1, 0, 0, 1, 0, 0)")
        # The sweep listens for the sensor once its recording has started (turned earlier, the
        # events are lost and the phone falls back to a timed sweep).
        app.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
        turn(app, 360)
        expect(app.get_by_role("button", name="开始录制")).to_be_visible()
        assert preview_transform(app) in ("none", "matrix(1, 0, 0, 1, 0, 0)")
        app.get_by_role("button", name="开始录制").click()
        expect(app.get_by_role("button", name="结束录制", exact=True)).to_be_visible()
        assert preview_transform(app) in ("none", "matrix(1, 0, 0, 1, 0, 0)")


def test_front_camera_preview_stays_a_mirror(phone_browser: Any, live: Live) -> None:
    o = offer(live)
    user = "window.__facing = 'user';"
    with phone_as(phone_browser, phone_browser.invigil_profile["user_agent"], user, FACING) as app:
        app.goto(qr(live, o))
        app.get_by_role("button", name="开始环拍").click()
        assert preview_transform(app) == "matrix(-1, 0, 0, 1, 0, 0)"


def test_sweep_hints_leave_once_the_sweep_has_begun(phone_browser: Any, live: Live) -> None:
    o = offer(live)
    with phone_as(phone_browser, IOS_SAFARI, MP4_ONLY, MOTION_PERMISSION) as app:
        app.goto(qr(live, o))
        hint = app.locator("#sweep-hint")
        motion = app.locator("#motion-hint")
        expect(hint).to_contain_text("开始环拍")
        expect(motion).to_contain_text("动作与方向")
        before = motion.inner_text()
        app.get_by_role("button", name="开始环拍").click()
        app.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
        # At 0 %, before any turn (and before the 3 s wait for the sensor runs out).
        expect(app.locator("#sweep-ring")).to_have_attribute("aria-valuenow", "0")
        expect(hint).to_contain_text("正在环拍", timeout=2000)
        expect(hint).not_to_contain_text("开始环拍")
        expect(motion).to_be_hidden()
        expect(app.get_by_role("button", name="开始环拍")).to_be_hidden()
        # The page's quotes: 【】 for buttons, “” for other names, no 「」.
        assert "请点【允许】" in before, before
        assert "「" not in before and "「" not in app.inner_text("body")
