"""The phone page in the browsers candidates really open it with: WeChat, QQ and Alipay in-app
browsers and iOS Safari, emulated by their user agents (and, for an in-app browser that lacks
them, getUserMedia/MediaRecorder removed before the page loads).

Where the browser can do the job the page works as anywhere; where it cannot, the candidate is
told at page open, before binding, with the exact taps that open the page in the system
browser, and the QR code's one-time binding stays usable there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from . import flow
from .conftest import Live
from .test_phone import offer, shot, turn

ANDROID = "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
WECHAT_ANDROID = f"{ANDROID} XWEB/1300199 MMWEBSDK/20240404 MMWEBID/1234 MicroMessenger/8.0.49.2600(0x2800313D) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
WECHAT_IOS = f"{IPHONE} Mobile/15E148 MicroMessenger/8.0.50(0x18003231) NetType/WIFI Language/zh_CN"
QQ_IOS = f"{IPHONE} Mobile/15E148 QQ/9.0.60.608 V1_IPH_SQ_9.0.60_1_APP_A Pixel/1170 MiniAppEnable SimpleUISwitch/0 StudyMode/0 CurrentMode/0 CurrentFontScale/1.000000 QQTheme/1000 AppId/537228459 Core/WKWebView Device/Apple(iPhone 13) NetType/WIFI QBWebViewType/1 WKType/1"
ALIPAY_ANDROID = f"{ANDROID} UWS/3.22.2.9999 UCBS/3.22.2.9999_220000000000 Mobile Safari/537.36 NebulaSDK/1.8.100112 Nebula AlipayDefined(nt:WIFI,ws:393|0|2.75) AliApp(AP/10.5.86.8000) AlipayClient/10.5.86.8000 Language/zh-Hans useStatusBar/true"
IOS_SAFARI = f"{IPHONE} Version/17.5 Mobile/15E148 Safari/604.1"

NO_CAMERA = "delete Navigator.prototype.mediaDevices;"
NO_RECORDER = "delete window.MediaRecorder;"
# Safari records MP4 only (before 18.4): the page must pick it by itself.
MP4_ONLY = """
  const supported = MediaRecorder.isTypeSupported.bind(MediaRecorder);
  MediaRecorder.isTypeSupported = (m) => m.startsWith('video/mp4') && supported(m);
"""
# iOS 13+ asks for the motion sensor; it must be asked from the candidate's tap.
MOTION_PERMISSION = """
  window.__motionAsks = [];
  DeviceOrientationEvent.requestPermission = () => {
    window.__motionAsks.push(navigator.userActivation.isActive);
    return Promise.resolve('granted');
  };
"""


@contextmanager
def phone_as(phone_browser: Any, user_agent: str, *scripts: str) -> Iterator[Page]:
    profile = dict(phone_browser.invigil_profile, user_agent=user_agent)
    context = phone_browser.new_context(**profile, locale="zh-CN")
    for script in scripts:
        context.add_init_script(script)
    page = context.new_page()
    page.set_default_timeout(15000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


def qr(live: Live, o: dict[str, Any]) -> str:
    return str(o["url"]).replace("http://127.0.0.1:8000", live.url)


BLOCKED = [
    (
        "wechat android without camera or recorder",
        WECHAT_ANDROID,
        [NO_CAMERA, NO_RECORDER],
        ["微信内置浏览器无法使用摄像头和录像"],
        ["右上角", "···", "在浏览器打开"],
    ),
    (
        "wechat ios without recorder",
        WECHAT_IOS,
        [NO_RECORDER],
        ["微信内置浏览器无法使用录像"],
        ["···", "在 Safari 中打开"],
    ),
    (
        "qq ios without camera",
        QQ_IOS,
        [NO_CAMERA],
        ["QQ内置浏览器无法使用摄像头"],
        ["在 Safari 中打开"],
    ),
    (
        "alipay android without camera",
        ALIPAY_ANDROID,
        [NO_CAMERA],
        ["支付宝内置浏览器无法使用摄像头"],
        ["···", "在浏览器中打开"],
    ),
]


@pytest.mark.parametrize(
    ("case", "ua", "scripts", "reason", "steps"), BLOCKED, ids=[b[0] for b in BLOCKED]
)
def test_in_app_browser_that_cannot_record_sends_the_candidate_to_the_system_browser(
    phone_browser: Any,
    phone: Page,
    live: Live,
    case: str,
    ua: str,
    scripts: list[str],
    reason: list[str],
    steps: list[str],
    screens: Path | None,
) -> None:
    o = offer(live)
    with phone_as(phone_browser, ua, *scripts) as app:
        app.goto(qr(live, o))
        expect(app.get_by_role("heading", name="请用手机浏览器打开本页")).to_be_visible()
        for text in reason:
            expect(app.locator("#unsupported-reason")).to_contain_text(text)
        for text in steps:
            expect(app.locator("#open-steps")).to_contain_text(text)
        # Nothing to bind with here: no code field, no sweep button.
        expect(app.get_by_label("绑定码")).to_have_count(0)
        expect(app.get_by_role("button", name="开始环拍")).to_have_count(0)
        # The link to copy is this very address, one-time binding included.
        link = app.get_by_label("本页链接")
        assert link.input_value() == qr(live, o)
        app.get_by_role("button", name="复制链接").click()
        expect(app.locator("#copy-state")).to_contain_text("链接已复制")
        if case.startswith("wechat android"):
            shot(app, screens, "wechat-open-in-browser")
        assert app.evaluate("window.__invigil.S.token") is None
    # The system browser (the ordinary phone profile) binds with the same QR address.
    phone.goto(qr(live, o))
    expect(phone.get_by_role("button", name="开始环拍")).to_be_visible()
    expect(phone.locator("#who")).to_contain_text("1001")


def test_in_app_browser_that_can_record_just_works(phone_browser: Any, live: Live) -> None:
    """Recent WeChat on Android (XWeb) has the camera and MediaRecorder: no detour, only a
    line saying where to go should the camera fail."""
    o = offer(live)
    with phone_as(phone_browser, WECHAT_ANDROID) as app:
        app.goto(qr(live, o))
        expect(app.get_by_role("button", name="开始环拍")).to_be_visible()
        expect(app.locator("#in-app-hint")).to_contain_text("微信")
        expect(app.locator("#in-app-hint")).to_contain_text("在浏览器打开")
        expect(app.locator("#unsupported")).to_have_count(0)
        app.get_by_role("button", name="开始环拍").click()
        app.wait_for_function(
            "window.__invigil.uploads().some(r => r.kind === 'evidence' && r.produced >= 1)",
            timeout=20000,
        )


def test_ios_safari_records_mp4_and_asks_for_the_motion_sensor_from_the_tap(
    phone_browser: Any, live: Live
) -> None:
    o = offer(live)
    with phone_as(phone_browser, IOS_SAFARI, MP4_ONLY, MOTION_PERMISSION) as app:
        app.goto(qr(live, o))
        start = app.get_by_role("button", name="开始环拍")
        expect(start).to_be_visible()
        assert app.evaluate("window.__invigil.platform.safari") is True
        expect(app.locator("#motion-hint")).to_contain_text("动作与方向")
        assert app.evaluate("window.__motionAsks") == []  # not before the tap
        start.click()
        app.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
        # Asked once, from the tap (user activation), before the camera and the sweep.
        assert app.evaluate("window.__motionAsks") == [True]
        app.wait_for_timeout(3500)  # MIN_SWEEP: a chunk or two of MP4
        turn(app, 360)
        expect(app.get_by_role("button", name="开始录制")).to_be_visible()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            recs = flow.server_recordings(live)
            if recs and recs[0].state == "finalized":
                break
            time.sleep(0.5)
    assert [r.kind for r in recs] == ["evidence"]
    assert recs[0].mime.startswith("video/mp4"), recs[0].mime
    assert recs[0].state == "finalized"


def test_a_browser_without_a_camera_is_told_so_before_binding(
    phone_browser: Any, live: Live
) -> None:
    o = offer(live)
    with phone_as(phone_browser, phone_browser.invigil_profile["user_agent"], NO_CAMERA) as app:
        app.goto(qr(live, o))
        expect(app.get_by_role("heading", name="此浏览器无法录像")).to_be_visible()
        expect(app.locator("#unsupported-reason")).to_contain_text("Chrome")
        expect(app.locator("#open-steps")).to_have_count(0)
        # English too.
        app.locator("#lang").click()
        expect(app.locator("#unsupported-reason")).to_contain_text("cannot use the camera")
