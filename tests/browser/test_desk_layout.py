"""What the candidate sees around the stages, at a 1280 px wide laptop screen: the header never
wraps or clips, 获取试题 appears only once the questions are out, the login is confirmed by
name and ticket, and the face-login panel keeps its shape."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import T, exam_doc, import_exam
from playwright.sync_api import Page, expect

from . import flow
from .conftest import Live

LONG_TITLE = "2026年某市事业单位公开招聘工作人员结构化面试（第一批）"

# Every piece of the header: its box, whether its text runs onto a second line and whether
# it is cut off (content wider than its box, or the box outside the window).
MEASURE = """() => {
  const top = document.querySelector('header.top');
  const vw = document.documentElement.clientWidth;
  const parts = [...top.querySelectorAll('.brand, #steps li, #phone-state:not([hidden]), #net, #top-help button, #lang, #top-left button')];
  const boxes = parts.map((el) => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    const line = parseFloat(cs.lineHeight);
    const frame = ['paddingTop', 'paddingBottom', 'borderTopWidth', 'borderBottomWidth']
      .reduce((n, k) => n + parseFloat(cs[k]), 0);
    const lines = (r.height - frame) / line;
    return {
      what: el.getAttribute('data-label') || el.textContent.trim() || el.id,
      left: r.left, right: r.right, top: r.top, bottom: r.bottom, lines,
      clipped: el.scrollWidth > el.clientWidth + 1,
    };
  });
  const steps = document.querySelector('#steps');
  return { vw, boxes, stepsClipped: steps.scrollWidth > steps.clientWidth + 1,
           height: top.getBoundingClientRect().height };
}"""


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and a["top"] < b["bottom"] - 0.5
        and b["top"] < a["bottom"] - 0.5
    )


def check_header(page: Page, expected: list[str]) -> float:
    """Asserts that nothing in the header wraps, clips or overlaps; returns its height."""
    m = page.evaluate(MEASURE)
    boxes = m["boxes"]
    names = " ".join(str(b["what"]) for b in boxes)
    for want in expected:
        assert want in names, (want, names)
    for b in boxes:
        assert b["lines"] < 1.5, ("wraps", b)
        assert not b["clipped"], ("clipped", b)
        assert b["left"] >= 0 and b["right"] <= m["vw"], ("outside the window", b)
    assert not m["stepsClipped"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), (a, b)
    return float(m["height"])


def test_header_at_1280_questions_button_and_login_confirmation(
    page: Page, live: Live, screens: Path | None, tmp_path: Path
) -> None:
    doc = exam_doc()
    doc["exam"]["title"] = LONG_TITLE
    live.exam_id = import_exam(live.ctx, tmp_path / "long-title", doc)
    assert page.viewport_size == {"width": 1280, "height": 860}
    flow.device_check(page, live)
    flow.login(page)
    # Who the system took the candidate for, at once after the face login.
    who = page.locator("#who-logged-in")
    expect(who).to_contain_text("奥巴马")
    expect(who).to_contain_text("准考证号 1001")
    flow.draw_lot(page)
    expect(who).to_have_count(0)  # only on the first page after the login
    flow.read_attachments(page)
    flow.enter(page, live)
    flow.wait_recording(page)
    page.get_by_role("button", name="进入待考").click()
    expect(page.locator("#countdown")).to_be_visible()
    # Waiting: the questions are not out, so there is nothing to fetch yet.
    expect(page.get_by_role("button", name="求助")).to_be_visible()
    expect(page.get_by_role("button", name="获取试题")).to_have_count(0)
    check_header(page, ["网络正常", "求助", "7 开始答题"])

    live.clock.set(T - timedelta(seconds=2))
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)
    expect(page.get_by_role("button", name="获取试题")).to_be_visible()
    height = check_header(page, ["获取试题", LONG_TITLE, "网络正常", "求助", "8 交卷"])
    assert height < 110, height  # two calm rows, not a pile of wrapped lines
    if screens is not None:
        page.screenshot(
            path=str(screens / "desk-header-1280.png"),
            clip={"x": 0, "y": 0, "width": 1280, "height": height + 120},
        )
    page.get_by_role("button", name="English").click()
    expect(page.locator("#top-left button")).to_have_text("Get questions")
    check_header(page, ["Get questions", "Online", "Help", "7 Answering", "8 Submit"])
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("button", name="获取试题")).to_be_visible()


FACE_BOX = """() => {
  const g = document.querySelector('.face-guide').getBoundingClientRect();
  const v = document.querySelector('.face-guide video').getBoundingClientRect();
  const o = document.querySelector('.face-guide .oval').getBoundingClientRect();
  return { g: [g.width, g.height], v: [v.width, v.height],
           ovalInside: o.top >= v.top - 1 && o.bottom <= v.bottom + 1 };
}"""


def test_face_login_panel_keeps_its_layout_and_speaks_english(page: Page, live: Live) -> None:
    flow.device_check(page, live)
    page.wait_for_function("document.querySelector('.face-guide video').videoWidth > 0")
    before = page.evaluate(FACE_BOX)
    assert before["ovalInside"], before
    # Obama's face on Biden's ticket, three times: the message, the photo taken and the help
    # box pile up beside the camera, which keeps its size and its oval.
    page.get_by_label("准考证号").fill("1002")
    for _ in range(3):
        page.get_by_role("button", name="人脸登录").click()
        expect(page.locator("#login-message .note.error")).to_be_visible()
        expect(page.get_by_role("button", name="人脸登录")).to_be_enabled()
    page.locator("#login-help").get_by_role("button", name="求助").click()
    expect(page.locator("#login-help")).to_contain_text("技术服务")
    after = page.evaluate(FACE_BOX)
    assert after == before, (before, after)

    # English: the ticket field's label is English too (zh-CN keeps 准考证号).
    page.get_by_role("button", name="English").click()
    expect(page.get_by_label("Admission ticket number")).to_have_value("1002")
    expect(page.locator("main")).not_to_contain_text("准考证号")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_label("准考证号")).to_have_value("1002")
