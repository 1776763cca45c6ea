"""Steps of the exam day as a candidate does them in the desk client, shared by the tests."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import T
from playwright.sync_api import Page, expect
from sqlalchemy import select

from invigil.core.db import transaction
from invigil.recordings.models import Chunk, Recording, Snapshot

from .conftest import Live


def post_ok(http: httpx.Client, url: str, **kw: Any) -> Any:
    r = http.post(url, **kw)
    assert r.status_code in (200, 201), f"{url}: {r.status_code} {r.text}"
    return r.json()


# How many lines an element's text is laid out on (the distinct tops of its text boxes).
TEXT_LINES = """(el) => {
  const tops = new Set();
  const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const range = document.createRange();
    range.selectNodeContents(walk.currentNode);
    for (const r of range.getClientRects()) tops.add(Math.round(r.top));
  }
  return tops.size;
}"""
# For evaluate_all: the texts of the elements laid out on more than one line.
WRAPPED = f"els => els.filter((el) => ({TEXT_LINES})(el) > 1).map((el) => el.textContent)"


def enter_by_api(http: httpx.Client, headers: dict[str, str], live: Live, at: Any) -> None:
    """A logged-in candidate draws a lot, reads every attachment and enters at ``at`` (the
    server's clock is set there), through the API as the desk would."""
    post_ok(http, "/api/v1/candidate/lot", headers=headers)
    state = http.get("/api/v1/candidate/state", headers=headers).json()
    for a in state["attachments"]:
        post_ok(http, f"/api/v1/candidate/attachments/{a['id']}/read", headers=headers)
    live.clock.set(at)
    post_ok(http, "/api/v1/candidate/enter", headers=headers)


def shot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        page.screenshot(path=str(folder / f"desk-{name}.png"), full_page=True)


def device_check(
    page: Page,
    live: Live,
    *,
    test_recording: bool = False,
    screens: Path | None = None,
    proceed: bool = True,
) -> None:
    page.goto(live.desk())
    nxt = page.get_by_role("button", name="下一步")
    expect(nxt).to_be_enabled()
    # The level meter follows the fake microphone's tone.
    page.wait_for_function(
        "Number(document.querySelector('.meter').getAttribute('aria-valuenow')) > 0"
    )
    expect(page.locator(".checklist li.pending")).to_have_count(0, timeout=20000)
    if test_recording:
        page.get_by_role("button", name=re.compile("测试录制")).click()
        page.locator("#test-playback").wait_for(timeout=15000)
        page.wait_for_function("document.querySelector('#test-playback').readyState >= 2")
        # The candidate plays back all five seconds, not four: the time counts from the
        # recorder's start. (A recorder's WebM has no duration until seeked to its end.)
        seconds = page.evaluate(RECORDED_SECONDS, "#test-playback")
        assert 5.0 <= seconds <= 6.5, seconds
    shot(page, screens, "1-device-check")
    if proceed:
        next_after_device_check(page)


RECORDED_SECONDS = """async (sel) => {
  const v = document.querySelector(sel);
  if (Number.isFinite(v.duration)) return v.duration;
  await new Promise((resolve) => {
    v.addEventListener("durationchange", resolve, { once: true });
    v.currentTime = 1e9;
  });
  return v.duration;
}"""


def next_after_device_check(page: Page, *, consent: bool = True) -> None:
    page.get_by_role("button", name="下一步").click()
    expect(page.get_by_label("准考证号")).to_be_visible()
    # The new step starts at its heading, not at the previous step's scroll position.
    assert page.evaluate("window.scrollY") == 0
    if consent:
        agree_to_face_recognition(page)


def agree_to_face_recognition(page: Page) -> None:
    """The face-recognition notice before the first capture: the one button named 同意."""
    expect(page.locator("#face-consent")).to_contain_text("人脸识别告知")
    page.get_by_role("button", name="同意").click()
    expect(page.locator("#consent-given")).to_be_visible()


def login(page: Page, ticket: str = "1001", *, screens: Path | None = None) -> None:
    field = page.get_by_label("准考证号")
    field.fill(ticket)
    page.wait_for_function("document.querySelector('.face-guide video').videoWidth > 0")
    shot(page, screens, "2-face-login")
    page.get_by_role("button", name="人脸登录").click()


def draw_lot(page: Page, *, screens: Path | None = None) -> int:
    page.get_by_role("button", name="抽签").click()
    number = page.locator("#lot-number")
    expect(number).to_have_text(re.compile(r"^\d+$"))
    shot(page, screens, "4-lot")
    value = int(number.inner_text())
    page.get_by_role("button", name="下一步").click()
    return value


def read_attachments(page: Page, *, screens: Path | None = None) -> None:
    expect(page.locator(".attachment")).not_to_have_count(0)
    expect(page.locator(".text-file").first).to_be_visible()
    shot(page, screens, "5-attachments")
    for _ in range(page.locator(".attachment").count()):
        page.get_by_role("button", name="已阅").first.click()
        page.wait_for_timeout(100)
    page.get_by_role("button", name="下一步").click()


def enter(page: Page, live: Live, *, screens: Path | None = None) -> None:
    """Entry opens at T−10 min: move the server there and press 【刷新】."""
    button = page.get_by_role("button", name="进入考试")
    expect(button).to_be_visible()
    if live.clock.now() < T - timedelta(minutes=10):
        expect(button).to_be_disabled()
        shot(page, screens, "6a-enter-not-yet")
        live.clock.set(T - timedelta(minutes=9))
        page.get_by_role("button", name="刷新", exact=True).click()
    expect(button).to_be_enabled()
    shot(page, screens, "6-enter")
    button.click()
    expect(page.get_by_role("button", name="进入待考")).to_be_visible()


def up_to_answering(page: Page, live: Live, screens: Path | None = None) -> None:
    """Device check → login → lot → attachments → enter → device confirm → questions at T."""
    device_check(page, live, screens=screens)
    login(page)
    draw_lot(page)
    read_attachments(page)
    enter(page, live)
    wait_recording(page)
    page.get_by_role("button", name="进入待考").click()
    expect(page.locator("#countdown")).to_be_visible()
    live.clock.set(T - timedelta(seconds=2))
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)


def wait_recording(page: Page, chunks: int = 1) -> None:
    """Both recorders running and at least `chunks` chunks of each stored."""
    page.wait_for_function(
        """n => {
            const s = window.__invigil.uploads();
            const kinds = new Set(s.filter(r => !r.stopped && r.produced >= n).map(r => r.kind));
            return kinds.has('webcam') && kinds.has('screen');
        }""",
        arg=chunks,
        timeout=20000,
    )


def chunk_log(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.evaluate("window.__invigil.chunkLog()")
    return rows


def server_chunks(live: Live) -> dict[tuple[str, int], str]:
    with transaction(live.ctx.db) as session:
        return {(c.recording_id, c.seq): c.sha256 for c in session.scalars(select(Chunk))}


def server_recordings(live: Live) -> list[Recording]:
    with transaction(live.ctx.db) as session:
        recs = list(session.scalars(select(Recording).order_by(Recording.created_at)))
        session.expunge_all()
        return recs


def finish(page: Page, *, screens: Path | None = None) -> None:
    page.get_by_role("button", name="结束考试").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    shot(page, screens, "9-finish-confirm")
    dialog.get_by_role("button", name="确定").click()
    expect(page.get_by_text("交卷完成")).to_be_visible(timeout=60000)


def staff_get(live: Live, path: str) -> Any:
    with httpx.Client(base_url=live.url, timeout=60) as http:
        r = http.post("/api/v1/staff/login", json={"username": "p1", "password": "pw-p1"})
        r.raise_for_status()
        token = r.json()["token"]
        r = http.get(path, headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
        return r


def snapshot_kinds(live: Live) -> set[str]:
    with transaction(live.ctx.db) as session:
        return set(session.scalars(select(Snapshot.kind).distinct()))
