"""What staff do reaches the desk: tech support lets a candidate in by hand after failed face
checks, and a proctor's warning appears on the candidate's screen."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from conftest import T
from playwright.sync_api import Page, expect

from . import flow
from .conftest import Live


def _staff(http: httpx.Client, username: str, password: str) -> dict[str, str]:
    r = http.post("/api/v1/staff/login", json={"username": username, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_tech_support_approval_and_proctor_warning(page: Page, live: Live) -> None:
    live.clock.set(T - timedelta(minutes=20))
    flow.device_check(page, live)
    # Obama's face on Biden's ticket: three refusals, then the help request. (A capture taken
    # while the camera is still starting may be refused as "no face": a failure all the same.)
    page.get_by_label("准考证号").fill("1002")
    refused = re.compile("照片与报名照片不一致|没有检测到人脸")
    for _ in range(3):
        page.get_by_role("button", name="人脸登录").click()
        expect(page.locator("#login-message")).to_contain_text(refused)
        expect(page.get_by_role("button", name="人脸登录")).to_be_enabled()
    expect(page.locator("#login-message")).to_contain_text("照片与报名照片不一致")
    page.locator("#login-help").get_by_role("button", name="求助").click()
    page.locator("#login-help-text").fill("我是本人，光线不好")
    page.get_by_role("button", name="提交求助").click()
    expect(page.locator("#login-help")).to_contain_text("正在等待技术服务审核")

    with httpx.Client(base_url=live.url, timeout=30) as http:
        tech = _staff(http, "tech1", "pw-tech1")
        pending = http.get("/api/v1/staff/login-help", headers=tech).json()["requests"]
        assert len(pending) == 1 and pending[0]["text"] == "我是本人，光线不好"
        r = http.post(
            f"/api/v1/staff/login-help/{pending[0]['request_id']}/approve",
            headers=tech,
            json={"reason": "电话核实身份"},
        )
        assert r.status_code == 200, r.text
        # The page takes the approval by itself and moves on to the lot.
        expect(page.get_by_role("button", name="抽签")).to_be_visible(timeout=15000)

        room = http.get("/api/v1/staff/rooms/R01", headers=_staff(http, "p1", "pw-p1")).json()
        attempt = next(c for c in room["candidates"] if c["ticket"] == "1002")["attempt_id"]
        r = http.post(
            f"/api/v1/staff/attempts/{attempt}/warnings",
            headers=_staff(http, "p1", "pw-p1"),
            json={"text": "请保持面部在画面内"},
        )
        assert r.status_code in (200, 201), r.text
    warning = page.locator("#warnings [role=alert]")
    expect(warning).to_contain_text("请保持面部在画面内", timeout=10000)
    warning.get_by_role("button", name="知道了").click()
    expect(page.locator("#warnings [role=alert]")).to_have_count(0)
