"""Details of the reviewer's candidate page as a person sees them in Chromium at 1280 px:

- 系统日志: every column header is Chinese (校验值, the word hash in its title); what the desk's
  event queue adds to a late event (delayed_s …) and the desk's refused screen share read in
  words; a short event name (同意人脸识别, 设备检测) stays on one line.
- 答题 before the start: the question release is marked 尚未到, no question text shows, and the
  page does not claim the audio was analysed; then, as the exam goes on, what it says follows
  the analysis (not analysed yet, then analysed and no marker found).
- 截图: a frame of fixed shape, empty grey until its image has loaded (never a broken-image
  icon), and a 16:9 screen snapshot shown whole in it (letterboxed, not cropped).
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from conftest import FACES, T, exam_doc, import_exam
from PIL import Image
from playwright.sync_api import Page, Route, expect

from invigil.core.context import AppContext
from invigil.core.jobs import run_due_jobs

from .conftest import Live
from .flow import post_ok
from .test_review_pages import TICKET, bearer, enter, sign_in, upload, webm

QUESTION = "QUESTION-ONE 请谈谈你对本岗位的认识。"


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["exam"]["questions"] = [{"text": QUESTION, "points": 10}]
    return import_exam(app_ctx, tmp_path / "exam", doc)


@pytest.fixture
def waiting(live: Live) -> dict[str, str]:
    """1001 consents to face recognition, logs in, sends a device check that the desk's queue
    delivered late (as it does after a reload or offline), has a screen share refused, enters
    at T−9 min; the clock stands at T−5 min: the questions are not out yet."""
    clock = live.clock
    with httpx.Client(base_url=live.url, timeout=60) as http:
        clock.set(T - timedelta(minutes=13))
        consent = {"exam_id": live.exam_id, "ticket": TICKET, "consent": True}
        post_ok(http, "/api/v1/candidate/face-consent", json=consent)
        token, attempt = enter(http, live)
        me = bearer(token)
        report = {
            "browser": {"name": "Chrome", "version": 126, "problems": []},
            "browser_ok": True,
            "camera": {"label": "Integrated Camera", "virtual": False, "width": 640},
            "client_at": (T - timedelta(minutes=12, seconds=3)).isoformat(),
            # what shared/eventqueue.js adds to an event sent late
            "delayed_s": 3,
            "queued_offline": True,
        }
        for kind, data in (
            ("device_check", report),
            ("device_check", {"screen_share": "refused", "display_surface": "window"}),
            (
                "client_error",
                {"where": "upload", "kind": "webcam", "reason": "chunk_lost", "seq": 4},
            ),
        ):
            post_ok(http, "/api/v1/candidate/events", json={"kind": kind, "data": data}, headers=me)
    clock.set(T - timedelta(minutes=5))
    return {"attempt": attempt, "token": token}


def open_candidate(page: Page, live: Live, attempt: str) -> None:
    sign_in(page, f"{live.url}/review/#attempt/{attempt}", "rev")
    expect(page.locator("#events li").first).to_be_visible()


def test_system_log_headers_keys_and_event_names_read_in_chinese_on_one_line(
    page: Page, live: Live, waiting: dict[str, str]
) -> None:
    open_candidate(page, live, waiting["attempt"])
    page.get_by_role("tab", name="系统日志").click()
    table = page.locator("#panel table.log")
    expect(table).to_be_visible()

    headers = table.locator("thead th")
    expect(headers).to_have_text(["#", "时间", "事件", "级别", "校验值"])
    assert "hash" in (headers.nth(4).get_attribute("title") or "")

    # No data key the desk adds shows raw: the visible text has no key or code of the desk's.
    text = table.inner_text()
    for raw in ("delayed_s", "queued_offline", "screen_share", "display_surface", "chunk_lost"):
        assert raw not in text, f"{raw} shows raw in the log"
    assert "上报延迟（秒）：3" in text, text
    assert "所选共享内容：单个窗口" in text, text
    assert "分段序号：4" in text and "分段丢失" in text, text

    # Short event names keep to one line: the cell's text is one line-height high.
    for name in ("同意人脸识别", "设备检测"):
        cell = table.locator("td.kind", has_text=name).first
        expect(cell).to_be_visible()
        lines = cell.evaluate(
            """td => {
                const all = document.createRange();
                all.selectNodeContents(td);
                // One line's height: the computed line-height, or (when it is "normal") the
                // height of the text's first character.
                const first = document.createRange();
                first.setStart(td.firstChild, 0);
                first.setEnd(td.firstChild, 1);
                const lh = parseFloat(getComputedStyle(td).lineHeight)
                    || first.getBoundingClientRect().height;
                return { height: all.getBoundingClientRect().height, lh };
            }"""
        )
        assert lines["height"] < 1.5 * lines["lh"], (name, lines)
    # … and the table still fits its panel.
    overflow = page.locator("#panel").evaluate("p => p.scrollWidth - p.clientWidth")
    assert overflow <= 1, f"the log is {overflow}px wider than its panel"
    assert page.js_errors == []


def test_answers_before_the_start_then_as_the_audio_is_analysed(
    page: Page, live: Live, waiting: dict[str, str]
) -> None:
    ctx, clock = live.ctx, live.clock
    open_candidate(page, live, waiting["attempt"])
    page.get_by_role("tab", name="答题").click()
    panel = page.locator("#panel")
    release = panel.locator("dt", has_text="试题发放").locator("xpath=following-sibling::dd[1]")
    expect(release).to_contain_text("（尚未到）")
    expect(panel).to_contain_text("开考前不显示试题。")
    assert "QUESTION-ONE" not in page.locator("body").inner_text()
    # No audio yet: the page does not say an analysis found nothing.
    words = panel.locator("#no-markers")
    expect(words).to_have_text("摄像头尚未开始录制，还没有可分析的音频。")
    expect(page.locator("body")).not_to_contain_text("音频分析未发现")
    expect(page.locator("body")).not_to_contain_text("未检测到回答结束标记")
    expect(page.locator("#jumps")).to_contain_text("试题尚未发放。")

    # The exam runs: the webcam recording is uploaded, not yet analysed.
    with httpx.Client(base_url=live.url, timeout=60) as http:
        clock.set(T)
        upload(http, waiting["token"], "webcam", webm())
        clock.set(T + timedelta(seconds=8))
        post_ok(http, "/api/v1/candidate/finish", headers=bearer(waiting["token"]))
    page.reload()
    page.get_by_role("tab", name="答题").click()
    expect(words).to_have_text("音频尚未分析：摄像头录像上传完成后自动分析。")
    expect(release).not_to_contain_text("尚未到")
    expect(panel).to_contain_text(QUESTION)
    expect(page.locator("#jumps")).to_contain_text("音频尚未分析")

    # The analysis runs and finds no 「该题回答完毕」 in a recording without speech.
    run_due_jobs(ctx.job_context())
    page.reload()
    expect(page.locator('#events li[data-kind="audio_summary"]')).to_have_count(1)
    page.get_by_role("tab", name="答题").click()
    assert page.locator('#events li[data-kind="answer_end"]').count() == 0
    expect(words).to_have_text("音频分析未发现回答结束标记。")
    expect(page.locator("#jumps")).to_contain_text("未检测到回答结束标记，请从开始答题处观看。")
    assert page.js_errors == []


def jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


def test_gallery_frames_wait_empty_and_show_a_screen_whole(page: Page, live: Live) -> None:
    clock = live.clock
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, attempt = enter(http, live)
        clock.set(T + timedelta(seconds=5))
        for kind, image in (
            ("webcam", (FACES / "obama2.jpg").read_bytes()),
            ("screen", jpeg((1280, 720), (0, 140, 0))),
        ):
            post_ok(
                http,
                "/api/v1/snapshots",
                data={"kind": kind},
                files={"image": ("s.jpg", image, "image/jpeg")},
                headers=bearer(token),
            )
    clock.set(T + timedelta(minutes=1))

    # Hold every snapshot's download until the frames have been looked at.
    held: list[Route] = []
    page.route(re.compile(r"/api/v1/snapshots/[^/?]+$"), lambda route: held.append(route))
    open_candidate(page, live, attempt)
    page.get_by_role("tab", name="截图").click()
    figures = page.locator(".gallery figure")
    expect(figures).to_have_count(2)
    # The downloads go out once the frames are in view (and wait here).
    for _ in range(100):
        if len(held) >= 2:
            break
        page.wait_for_timeout(100)
    assert len(held) == 2, held
    frames = figures.locator(".snap-frame")
    for i in range(2):
        frame = frames.nth(i)
        look = frame.evaluate(
            """f => {
                const r = f.getBoundingClientRect();
                const img = f.querySelector('img');
                return { w: r.width, h: r.height, bg: getComputedStyle(f).backgroundColor,
                         imgVisible: getComputedStyle(img).visibility }
            }"""
        )
        # An empty grey frame of the final shape, not a broken image with its alt text.
        assert look["w"] > 100 and abs(look["h"] - look["w"] * 3 / 4) < 2, look
        assert look["bg"] not in ("rgba(0, 0, 0, 0)", "transparent"), look
        assert look["imgVisible"] == "hidden", look

    for route in held:
        route.continue_()
    page.unroute(re.compile(r"/api/v1/snapshots/[^/?]+$"))
    screen = page.locator('.gallery figure[data-kind="screen"] img')
    expect(screen).to_have_attribute("src", re.compile("^blob:"))
    expect(page.locator('.gallery figure[data-kind="screen"] .snap-frame')).to_have_attribute(
        "data-state", "loaded"
    )
    shown = screen.evaluate(
        """img => ({ fit: getComputedStyle(img).objectFit, visible: getComputedStyle(img).visibility,
                    ratio: img.naturalWidth / img.naturalHeight,
                    w: img.clientWidth, h: img.clientHeight })"""
    )
    assert shown["fit"] == "contain", shown  # the whole screen, letterboxed
    assert shown["visible"] == "visible", shown
    assert abs(shown["ratio"] - 16 / 9) < 0.01, shown
    assert page.js_errors == []
