"""The evidence phone as the desk shows it: through the exam a calm 手机录制中 in the header
that turns into a warning when the phone stops or drops off.

The phone here is a plain HTTP client (its status reports are its heartbeat), so the test says
exactly when it records, stops or falls silent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from conftest import T, bearer, exam_doc, import_exam
from playwright.sync_api import Page, expect

from invigil.core.context import AppContext

from . import flow
from .conftest import Live
from .test_desk_layout import check_header

# The desk hears the phone's state with its heartbeat (every 5 s); a loaded CI box answers late.
HEARD = 20_000


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["exam"]["rules"] = {"evidence_camera": "required", "liveness": "off"}
    return import_exam(app_ctx, tmp_path / "exam", doc)


class Phone:
    """A bound phone that reports its state when told to (each report keeps it alive 20 s)."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http, self.auth = http, bearer(token)

    def report(self, state: str) -> None:
        r = self.http.post("/api/v1/phone/status", json={"state": state}, headers=self.auth)
        assert r.is_success, r.text


@pytest.fixture
def phone_client(live: Live) -> Iterator[httpx.Client]:
    # A new connection per report: between two reports the test may wait longer than the
    # server keeps an idle connection (uvicorn: 5 s), and a POST on a connection the server is
    # closing just then fails with "Server disconnected" (httpx does not resend a POST).
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=live.url, timeout=30, limits=no_reuse) as http:
        yield http


def bind(page: Page, http: httpx.Client) -> Phone:
    code = page.locator("#binding-code strong")
    expect(code).to_have_text(re.compile(r"^\d{8}$"))
    r = http.post("/api/v1/phone/bind", json={"code": code.inner_text()})
    assert r.status_code == 200, r.text
    return Phone(http, r.json()["token"])


def test_exam_pages_show_whether_the_phone_records(
    page: Page, live: Live, phone_client: httpx.Client, screens: Path | None
) -> None:
    flow.device_check(page, live)
    flow.login(page)
    phone = bind(page, phone_client)
    phone.report("recording")
    pill = page.locator("#phone-state")
    expect(pill).to_be_hidden()  # before the exam the steps themselves say it
    page.get_by_role("button", name="下一步").click()
    flow.draw_lot(page)
    flow.read_attachments(page)
    live.clock.set(T - timedelta(minutes=9))
    phone.report("recording")  # the clock's jump made it look silent
    page.get_by_role("button", name="刷新", exact=True).click()
    flow.enter(page, live)
    flow.wait_recording(page)
    phone.report("recording")
    page.get_by_role("button", name="进入待考").click()
    expect(page.locator("#countdown")).to_be_visible()

    # Waiting: calm, green, next to 网络正常.
    expect(pill).to_be_visible()
    expect(pill).to_have_text("手机录制中")
    expect(pill).to_have_class(re.compile(r"\bok\b"))
    # The candidate tapped 结束录制 on the phone: a warning within a heartbeat or two.
    phone.report("stopped")
    expect(pill).to_have_text("手机未在录制，请检查手机", timeout=HEARD)
    expect(pill).to_have_class(re.compile(r"\bbad\b"))
    phone.report("recording")
    expect(pill).to_have_text("手机录制中", timeout=HEARD)

    # Answering: the same status beside the countdown's page.
    live.clock.set(T - timedelta(seconds=2))
    phone.report("recording")
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)
    expect(pill).to_have_text("手机录制中", timeout=HEARD)
    flow.wait_recording(page, chunks=3)
    phone.report("recording")
    expect(pill).to_have_text("手机录制中")
    flow.shot(page, screens, "8e-answering-phone-recording")

    # The laptop's own network drops: the desk cannot know the phone's state any more, and says
    # so instead of the last 手机录制中; back online, the next heartbeat brings it again.
    page.context.set_offline(True)
    expect(pill).to_have_text("手机状态未知", timeout=HEARD)
    expect(pill).to_have_class(re.compile(r"\bunknown\b"))
    expect(page.locator("#net")).to_have_text("网络已断开")
    flow.shot(page, screens, "8f-answering-laptop-offline")
    page.context.set_offline(False)
    phone.report("recording")
    expect(pill).to_have_text("手机录制中", timeout=HEARD)

    # The phone falls silent (battery, network): after 20 s the server calls it offline.
    live.clock.advance(timedelta(seconds=21))
    expect(pill).to_have_text("手机已断开，请检查手机", timeout=HEARD)
    expect(pill).to_have_class(re.compile(r"\bbad\b"))
    check_header(page, ["获取试题", "手机已断开，请检查手机", "网络正常", "求助", "8 开始答题"])
    flow.shot(page, screens, "8g-answering-phone-lost")
    page.get_by_role("button", name="English").click()
    expect(pill).to_have_text("Phone disconnected: check it")
    page.get_by_role("button", name="中文").click()
    expect(pill).to_have_text("手机已断开，请检查手机")


def test_binding_page_folds_the_qr_code_once_the_phone_records(
    page: Page, live: Live, phone_client: httpx.Client, screens: Path | None
) -> None:
    flow.device_check(page, live)
    flow.login(page)
    qr = page.locator("#qr img")
    connected = page.locator("#phone-connected")
    first = bind(page, phone_client)
    first.report("sweeping")
    expect(page.locator("#phone-status")).to_contain_text("手机正在环拍房间", timeout=HEARD)
    expect(qr).to_be_visible()
    expect(connected).to_be_hidden()

    # Recording: the QR code and the used code give way to a confirmation.
    first.report("recording")
    expect(connected).to_be_visible(timeout=HEARD)
    expect(connected).to_contain_text("手机已连接并在录制")
    expect(qr).to_be_hidden()
    expect(page.locator("#binding-code")).to_be_hidden()
    expect(page.get_by_role("button", name="下一步")).to_be_visible()
    flow.shot(page, screens, "3c-phone-connected")

    # A replacement phone: the QR code comes back with a fresh code, which binds it.
    used = page.locator("#binding-code strong").inner_text()
    page.get_by_role("button", name="重新显示二维码").click()
    expect(qr).to_be_visible()
    expect(connected).to_be_hidden()
    expect(page.locator("#binding-code strong")).not_to_have_text(used)
    second = bind(page, phone_client)
    expect(page.locator("#phone-status")).to_contain_text("手机已绑定", timeout=HEARD)
    second.report("recording")
    expect(connected).to_be_visible(timeout=HEARD)
    expect(qr).to_be_hidden()
    page.get_by_role("button", name="下一步").click()
    flow.draw_lot(page)
    flow.read_attachments(page)

    # The entry step's link shows the QR code at once, even while the phone records.
    second.report("recording")
    page.get_by_role("button", name="显示手机绑定二维码").click()
    expect(qr).to_be_visible()
    expect(connected).to_be_hidden()
