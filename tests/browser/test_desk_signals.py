"""Entire screen only, integrity signals as events, and the help panel, in a real browser."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import T
from playwright.sync_api import Page, expect

from . import flow
from .conftest import Live

# The first screen request asks for a browser tab instead of the screen: under the fake-UI flag
# Chromium then shares a tab (displaySurface "browser") without a prompt, as a candidate picking
# the tab would. Later requests are left alone.
TAB_FIRST = """
(() => {
  const original = MediaDevices.prototype.getDisplayMedia;
  let calls = 0;
  MediaDevices.prototype.getDisplayMedia = function (options) {
    calls += 1;
    if (calls === 1) return original.call(this, { video: { displaySurface: 'browser' }, audio: false });
    return original.call(this, options);
  };
})();
"""


def staff_events(live: Live, attempt_id: str) -> list[dict[str, Any]]:
    r = flow.staff_get(live, f"/api/v1/staff/attempts/{attempt_id}/events")
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def test_tab_share_refused_then_signals_become_events(
    page: Page, live: Live, screens: Path | None
) -> None:
    page.add_init_script(TAB_FIRST)
    flow.device_check(page, live)
    flow.login(page)
    flow.draw_lot(page)
    flow.read_attachments(page)
    live.clock.set(T - timedelta(minutes=9))
    page.get_by_role("button", name="刷新", exact=True).click()
    page.get_by_role("button", name="进入考试").click()

    # A tab is not the screen: refused, explained, asked again.
    expect(page.get_by_role("alert")).to_contain_text("不是整个屏幕")
    flow.shot(page, screens, "6b-share-refused")
    assert page.evaluate("window.__invigil.uploads().length") == 0  # nothing recorded yet
    page.get_by_role("button", name="共享整个屏幕").click()
    expect(page.get_by_role("button", name="进入待考")).to_be_visible()
    flow.wait_recording(page)
    page.get_by_role("button", name="进入待考").click()
    live.clock.set(T - timedelta(seconds=1))
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)
    attempt_id = page.evaluate("window.__invigil.S.state.attempt_id")

    # Focus lost to another window and back.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    other = page.context.new_page()
    other.bring_to_front()
    page.wait_for_timeout(300)
    page.bring_to_front()
    other.close()
    # Full screen left (the page asked for it on entering; ask again in case it was refused).
    page.evaluate("document.documentElement.requestFullscreen().catch(() => {})")
    page.wait_for_function("!!document.fullscreenElement")
    page.evaluate("document.exitFullscreen()")
    # The tab hidden and shown (not producible headless: the state is redefined).
    page.evaluate(
        """() => {
        const set = (v) => Object.defineProperty(document, 'visibilityState', {value: v, configurable: true});
        set('hidden'); document.dispatchEvent(new Event('visibilitychange'));
        set('visible'); document.dispatchEvent(new Event('visibilitychange'));
    }"""
    )
    page.keyboard.press("PrintScreen")
    page.locator("#questions li").first.dblclick()
    page.evaluate("document.execCommand('copy')")
    page.locator("#questions").click(button="right")
    cdp.send("Emulation.addScreen", {"left": 1280, "top": 0, "width": 1280, "height": 1024})
    page.evaluate("navigator.mediaDevices.dispatchEvent(new Event('devicechange'))")
    # The camera track ends (unplugged): reported, and the camera is reopened into a new recording.
    page.evaluate("window.__invigil.S.cam.getVideoTracks()[0].dispatchEvent(new Event('ended'))")
    page.context.set_offline(True)
    page.wait_for_timeout(2500)
    page.context.set_offline(False)

    # 求助: the panel shows the help phone; a message reaches staff and their reply comes back.
    page.get_by_role("button", name="求助").click()
    panel = page.get_by_role("dialog")
    expect(panel).to_contain_text("400-000-0000")
    panel.get_by_label("留言").fill("摄像头画面有点暗")
    panel.get_by_role("button", name="发送").click()
    # Just back online, the recording backlog is uploading beside the message: allow for it.
    expect(panel.locator("#help-messages")).to_contain_text("摄像头画面有点暗", timeout=15000)
    with httpx.Client(base_url=live.url) as http:
        token = http.post("/api/v1/staff/login", json={"username": "p1", "password": "pw-p1"})
        auth = {"Authorization": f"Bearer {token.json()['token']}"}
        r = http.post(
            f"/api/v1/staff/attempts/{attempt_id}/help", json={"text": "请打开台灯"}, headers=auth
        )
        assert r.status_code == 201, r.text
    expect(panel.locator("#help-messages")).to_contain_text("请打开台灯", timeout=10000)
    flow.shot(page, screens, "8c-help")
    # Sent while the network drops for a moment: tried again, not lost.
    page.context.set_offline(True)
    panel.get_by_label("留言").fill("网络刚才断了一下")
    panel.get_by_role("button", name="发送").click()
    page.wait_for_timeout(2500)  # as long as the drop above: its `online` event is checked below
    page.context.set_offline(False)
    expect(panel.locator("#help-messages")).to_contain_text("网络刚才断了一下", timeout=15000)
    panel.get_by_role("button", name="关闭").click()

    wanted = {
        "focus_lost", "focus_back", "fullscreen_exit", "visibility_hidden", "visibility_visible",
        "screenshot_key", "copy_paste", "context_menu", "second_screen", "device_change",
        "track_ended", "offline", "online", "help_requested", "device_check",
    }  # fmt: skip
    page.wait_for_function(
        "kinds => kinds.every(k => window.__invigil.eventsSent().some(e => e.kind === k))",
        arg=sorted(wanted),
        timeout=15000,
    )
    events = staff_events(live, attempt_id)
    kinds = {e["kind"] for e in events}
    assert wanted <= kinds, wanted - kinds
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["focus_back"]["data"]["duration_ms"] >= 200
    assert by_kind["online"]["data"]["duration_ms"] >= 2000
    assert by_kind["second_screen"]["data"]["extended"] is True
    offline_events = [e for e in events if e["kind"] == "offline"]
    # Queued while offline, sent when back, with when it happened.
    assert offline_events[0]["data"]["queued_offline"] is True
    assert offline_events[0]["data"]["delayed_s"] >= 2
    refused = [e for e in events if e["kind"] == "device_check" and "screen_share" in e["data"]]
    assert refused and refused[0]["data"]["display_surface"] == "browser"
    # The new camera recording after the track ended.
    page.wait_for_function(
        "window.__invigil.uploads().filter(r => r.kind === 'webcam').length >= 2"
    )
    flow.finish(page)
