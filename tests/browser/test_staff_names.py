"""One thing, one name on the staff pages: a candidate with the evidence phone takes the exam
(webcam and phone recordings uploaded, the audio analysed), then a proctor's console and a
reviewer's page are opened on them in Chromium. Both call the audio analysis 音频分析 and the
evidence phone 手机佐证 (its picture, its recording, its state): the console used to say 语音分析
and 手机 where the review page said 音频分析 and 手机佐证. And, in both languages, every event
kind, stream and stage has the same name in the two pages' modules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FACES, T, exam_doc, import_exam
from playwright.sync_api import Page, expect

from invigil.core.context import AppContext
from invigil.core.jobs import run_due_jobs

from . import flow
from .conftest import Live, check_page, watched_page
from .flow import post_ok
from .test_review_pages import TICKET, bearer, sign_in, upload, webm

OLD_NAMES = ("语音分析", "佐证手机")  # what the console said where the review page did not


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["exam"]["rules"]["evidence_camera"] = "required"
    return import_exam(app_ctx, tmp_path / "exam", doc)


@pytest.fixture
def finished(live: Live) -> str:
    """1001 binds the phone, enters, records webcam and phone from T, hands in; the recordings
    are assembled and the audio analysed. The attempt id."""
    clock = live.clock
    with httpx.Client(base_url=live.url, timeout=60) as http:
        # All at T−9 min: the phone must still be heard from when the desk enters.
        clock.set(T - timedelta(minutes=9))
        got = post_ok(
            http,
            "/api/v1/candidate/login",
            data={"exam_id": live.exam_id, "ticket": TICKET},
            files={"face": ("face.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")},
        )
        token, attempt = got["token"], got["attempt_id"]
        offer = post_ok(http, "/api/v1/candidate/binding", headers=bearer(token))
        phone = post_ok(http, "/api/v1/phone/bind", json={"code": offer["code"]})["token"]
        for state in ("sweeping", "recording"):
            post_ok(http, "/api/v1/phone/status", json={"state": state}, headers=bearer(phone))
        flow.enter_by_api(http, bearer(token), live, T - timedelta(minutes=9))
        clock.set(T)
        upload(http, token, "webcam", webm())
        upload(http, phone, "evidence", webm())
        clock.set(T + timedelta(seconds=8))
        post_ok(http, "/api/v1/candidate/finish", headers=bearer(token))
    run_due_jobs(live.ctx.job_context())  # assembly, then the audio analysis
    clock.set(T + timedelta(minutes=1))
    return str(attempt)


def test_console_and_review_call_the_audio_analysis_and_the_phone_alike(
    live: Live, browser: Any, page: Page, finished: str
) -> None:
    # The proctor's console: the tile's pictures and facts, the detail and its timeline.
    # A 1280 px laptop: the narrowest tiles, where a four-character caption has least room.
    context, console, errors, lines = watched_page(
        browser, viewport={"width": 1280, "height": 800}, locale="zh-CN"
    )
    console.goto(f"{live.url}/proctor/")
    console.get_by_label("用户名").fill("p1")
    console.get_by_label("密码").fill("pw-p1")
    console.get_by_role("button", name="登录").click()
    tile = console.locator(".tile", has_text="奥巴马")
    expect(tile.locator("figcaption")).to_have_text(["摄像头", "屏幕", "手机佐证"])
    expect(tile.locator(".facts dt")).to_contain_text(["手机佐证"])
    # Each caption whole, on one line, inside its picture.
    for fig in tile.locator("figure.cam").all():
        seen = fig.evaluate(
            """(f) => {
                const c = f.querySelector("figcaption"), cb = c.getBoundingClientRect();
                const fb = f.getBoundingClientRect();
                const lh = parseFloat(getComputedStyle(c).fontSize) * 1.6;
                return { text: c.textContent, height: cb.height, lh,
                         whole: c.scrollWidth <= c.clientWidth,
                         inside: cb.left >= fb.left - 0.5 && cb.right <= fb.right + 0.5 };
            }"""
        )
        print(seen)
        assert seen["height"] < seen["lh"] and seen["whole"] and seen["inside"], seen
    tile.click()
    detail = console.locator("#detail")
    expect(detail.locator("dt", has_text="手机佐证")).to_have_count(1)
    timeline = console.get_by_role("list", name="事件时间线")
    expect(timeline).to_contain_text("音频分析")
    expect(timeline).to_contain_text("开始录制 手机佐证")
    expect(timeline).to_contain_text("手机佐证：录制中")  # the phone's state
    for old in OLD_NAMES:
        expect(console.locator("body")).not_to_contain_text(old)
    check_page(context, errors, lines)

    # The reviewer's page on the same candidate: the same words.
    sign_in(page, f"{live.url}/review/#attempt/{finished}", "rev")
    events = page.locator("#events")
    expect(events.locator('li[data-kind="audio_summary"] .kind')).to_have_text("音频分析")
    started = events.locator('li[data-kind="recording_started"]')
    expect(started).to_have_count(2)
    expect(started.nth(1)).to_contain_text("手机佐证")
    expect(page.locator('.player[data-kind="evidence"] figcaption')).to_have_text("手机佐证")
    expect(events.locator('li[data-kind="phone_state"]').last).to_contain_text("录制中")
    for old in OLD_NAMES:
        expect(page.locator("body")).not_to_contain_text(old)
    assert page.js_errors == []  # type: ignore[attr-defined]


# Every kind the server writes into an event log, by the pages' modules in the browser: the
# console's name (kindName …) against the review page's (kindLabel …), in both languages.
SAME_NAMES = """async (kinds) => {
  const i18n = await import('/shared/i18n.js');
  const proctor = await import('/proctor/labels.js');
  const review = await import('/review/labels.js');
  const differ = [];
  for (const lang of ['zh-CN', 'en']) {
    i18n.setLang(lang);
    const pairs = [
      ...kinds.map((k) => [k, proctor.kindName(k), review.kindLabel(k)]),
      ...['webcam', 'screen', 'evidence'].map((k) => [k, proctor.camName(k), review.streamLabel(k)]),
      ...['not_logged_in', 'lot', 'attachments', 'enter', 'waiting', 'answering', 'finished',
          'absent'].map((k) => [k, proctor.stageName(k), review.stageLabel(k)]),
    ];
    for (const [k, a, b] of pairs) if (a !== b || a === k) differ.push([lang, k, a, b]);
    // Short enough for the review log's 事件 column (test_review_log_words: one line).
    if (lang === 'zh-CN') for (const k of kinds) if (review.kindLabel(k).length > 9) differ.push([lang, k, 'too long']);
  }
  i18n.setLang('zh-CN');
  return differ;
}"""


# Kinds the server writes besides the ones its modules list (a sample of each domain's own).
SERVER_KINDS = {
    "login", "lot_drawn", "attachment_read", "entered", "finished", "phone_bound",
    "phone_state", "evidence_placement", "recording_started", "recording_finalized",
    "recording_closed", "answer_end", "long_silence", "voice_assistant", "flag_ended",
    "desk_silent", "desk_back", "warning", "proctor_note", "help_message", "help_dismissed",
    "extra_time", "room_moved", "late_entry_allowed", "data_purged", "questions_delivered",
}  # fmt: skip


def test_every_event_kind_has_one_name_on_both_pages(page: Page, live: Live) -> None:
    from invigil.analysis.audio_jobs import DONE_KINDS
    from invigil.attempts.api import CLIENT_EVENT_KINDS
    from invigil.attempts.events import VIOLATION_KINDS
    from invigil.attempts.phone_api import PHONE_EVENT_KINDS
    from invigil.attempts.service import LOGIN_EVENT_KINDS

    kinds = set(SERVER_KINDS) | CLIENT_EVENT_KINDS | VIOLATION_KINDS | PHONE_EVENT_KINDS
    kinds |= set(DONE_KINDS) | set(LOGIN_EVENT_KINDS)
    page.goto(f"{live.url}/review/", wait_until="domcontentloaded")
    differ = page.evaluate(SAME_NAMES, sorted(kinds))
    assert differ == [], differ
