"""What a proctor sees on the console (/proctor/) in a real browser: the candidate's whole screen
in the tile and in the detail, the room picker's whole room name, which stream a recording
event is about, and candidates not yet entered shown calmly until the exam's entry closes.

The room and exam names are the demo's (long, with brackets), the screen snapshot is 16:9 like
a desk's (960×540) with coloured bands at its left and right edges.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FACES, T, exam_doc, import_exam
from PIL import Image, ImageDraw
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from invigil.attempts.models import Attempt
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.exams.models import Candidate

from . import flow
from .conftest import Live, check_page, watched_page
from .flow import TEXT_LINES

ROOM = "第1考场（演示·仅电脑）"
TITLE = "invigil 演示 · 结构化面试模拟考试（仅电脑）"
LEFT, RIGHT = (220, 30, 30), (30, 60, 220)  # the screen snapshot's edge bands
LONG_TICKET, LONG_NAME = "2026120101", "欧阳娜娜"
# A name as long as some real ones (Uyghur names written in Chinese), with a ten-digit ticket.
LONGEST_TICKET, LONGEST_NAME = "2026120102", "买买提艾力·阿不都热合曼"


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["exam"]["title"] = TITLE
    doc["rooms"][0]["name"] = ROOM
    # A ticket number as long as a real one (the exam file's example), and a four-character name.
    doc["candidates"].append(
        {"ticket": LONG_TICKET, "name": LONG_NAME, "room": "R01", "photo": "obama.jpg"}
    )
    doc["candidates"].append(
        {"ticket": LONGEST_TICKET, "name": LONGEST_NAME, "room": "R01", "photo": "obama.jpg"}
    )
    return import_exam(app_ctx, tmp_path / "exam", doc)


@pytest.fixture
def console(browser: Any) -> Iterator[Page]:
    """The console as a proctor's laptop shows it (1440×900), with script errors and CSP
    violations checked at the end."""
    context, page, errors, lines = watched_page(
        browser, viewport={"width": 1440, "height": 900}, locale="zh-CN"
    )
    yield page
    check_page(context, errors, lines)


def sign_in(page: Page, live: Live, username: str = "p1") -> None:
    page.goto(f"{live.url}/proctor/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(f"pw-{username}")
    page.get_by_role("button", name="登录").click()


def candidate(http: httpx.Client, live: Live, ticket: str = "1001") -> dict[str, str]:
    r = http.post(
        "/api/v1/candidate/login",
        data={"exam_id": live.exam_id, "ticket": ticket},
        files={"face": ("face.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def post_desk_snapshots(http: httpx.Client, cand: dict[str, str]) -> None:
    """A webcam frame of a face and a 16:9 screen, as the desk sends them."""
    for kind, data in (("webcam", webcam_jpeg()), ("screen", screen_jpeg())):
        r = http.post(
            "/api/v1/snapshots",
            headers=cand,
            data={"kind": kind},
            files={"image": ("s.jpg", data, "image/jpeg")},
        )
        assert r.status_code == 201, r.text


def jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def screen_jpeg() -> bytes:
    """A 16:9 screen: a light page with a red band at its left edge and a blue one at its
    right (where a clock or a chat window would sit)."""
    img = Image.new("RGB", (960, 540), (235, 238, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 79, 539), fill=LEFT)
    draw.rectangle((880, 0, 959, 539), fill=RIGHT)
    return jpeg(img)


def webcam_jpeg() -> bytes:
    img = Image.new("RGB", (640, 480), (150, 150, 150))
    face = Image.open(FACES / "obama2.jpg").convert("RGB")
    face.thumbnail((420, 420))
    img.paste(face, ((640 - face.width) // 2, (480 - face.height) // 2))
    return jpeg(img)


# Where an <img>'s picture lands on the page, from its object-fit and natural size, and the box
# of the tile or dialog it sits in.
PICTURE_BOX = """(img) => {
  const style = getComputedStyle(img);
  const box = img.getBoundingClientRect();
  const w = img.naturalWidth, h = img.naturalHeight;
  let scale = Math.min(box.width / w, box.height / h);  // contain
  if (style.objectFit === "cover") scale = Math.max(box.width / w, box.height / h);
  if (style.objectFit === "fill") scale = NaN;
  const cw = w * scale, ch = h * scale;
  const left = box.left + (box.width - cw) / 2, top = box.top + (box.height - ch) / 2;
  const outer = img.closest(".tile, .detail-card").getBoundingClientRect();
  return {
    fit: style.objectFit, natural: [w, h], box: [box.left, box.top, box.right, box.bottom],
    picture: [left, top, left + cw, top + ch],
    outer: [outer.left, outer.top, outer.right, outer.bottom],
  };
}"""


def loaded(page: Page, img: Locator) -> None:
    expect(img).to_have_attribute("src", re.compile("^blob:"), timeout=10000)
    page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=img.element_handle())


def assert_whole(img: Locator, natural: tuple[int, int]) -> dict[str, Any]:
    """The whole picture is on the page: contained in the <img>'s box and in its tile, and
    filling the box's width or height."""
    seen: dict[str, Any] = img.evaluate(PICTURE_BOX)
    print(seen)
    assert seen["fit"] == "contain", seen
    assert tuple(seen["natural"]) == natural
    pic, box, outer = seen["picture"], seen["box"], seen["outer"]
    eps = 0.5
    for inner, around in ((pic, box), (box, outer)):
        assert inner[0] >= around[0] - eps and inner[1] >= around[1] - eps, seen
        assert inner[2] <= around[2] + eps and inner[3] <= around[3] + eps, seen
    # Not a thumbnail in a big frame: the picture spans the box one way or the other.
    assert pic[2] - pic[0] >= (box[2] - box[0]) - 1 or pic[3] - pic[1] >= (box[3] - box[1]) - 1
    return seen


def edge_colours(img: Locator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The colours a person sees at the left and right edges of the picture, mid-height."""
    shot = Image.open(io.BytesIO(img.screenshot())).convert("RGB")
    y = shot.height // 2
    return shot.getpixel((2, y)), shot.getpixel((shot.width - 3, y))  # type: ignore[return-value]


def near(colour: tuple[int, ...], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(colour, want, strict=False))


def test_the_screen_snapshot_is_shown_whole_in_the_tile_and_the_detail(
    live: Live, console: Page
) -> None:
    """A 960×540 screen in the tile and in the detail: object-fit contain, the picture inside
    the tile, and both edge bands of the screen visible (cover cut a quarter of its width)."""
    with httpx.Client(base_url=live.url, timeout=60) as http:
        post_desk_snapshots(http, candidate(http, live))

    sign_in(console, live)
    tile = console.locator(".tile", has_text="奥巴马")
    screen = tile.locator("figure.cam-screen img")
    webcam = tile.locator("figure.cam-webcam img")
    for img in (screen, webcam):
        loaded(console, img)
    assert_whole(screen, (960, 540))
    assert_whole(webcam, (640, 480))
    left, right = edge_colours(screen)
    assert near(left, LEFT) and near(right, RIGHT), (left, right)
    # The screen's picture is as tall as the webcam's beside it: a 16:9 box, not a letterbox
    # in a 4:3 one.
    s_box = screen.bounding_box()
    w_box = webcam.bounding_box()
    assert s_box and w_box and abs(s_box["height"] - w_box["height"]) <= 2, (s_box, w_box)

    tile.click()
    detail = console.locator("#detail")
    big = detail.locator("figure.cam-screen img")
    loaded(console, big)
    seen = assert_whole(big, (960, 540))
    assert seen["picture"][2] - seen["picture"][0] >= 400  # a large view, 1440 px wide window
    left, right = edge_colours(big)
    assert near(left, LEFT) and near(right, RIGHT), (left, right)
    big_webcam = detail.locator("figure.cam-webcam img")
    loaded(console, big_webcam)
    assert_whole(big_webcam, (640, 480))


def test_the_room_picker_shows_the_whole_room_name(live: Live, console: Page) -> None:
    """The picker's text is the room and its code, all of it inside the picker; the exam's
    title is in the picker's list (its group) and its tooltip, and in the heading below."""
    sign_in(console, live)
    picker = console.get_by_label("考场", exact=True)
    expect(picker).to_be_visible()
    expect(console.locator("#room-title")).to_have_text(f"{ROOM}（R01）· {TITLE}")
    shown = picker.evaluate("(s) => s.selectedOptions[0].textContent")
    assert shown == f"{ROOM}（R01）"
    # The text's width in the picker's font against the room the picker gives it (its content
    # box less the drop-down arrow).
    fits = picker.evaluate(
        """(s) => {
            const style = getComputedStyle(s);
            const ctx = document.createElement("canvas").getContext("2d");
            ctx.font = style.font;
            const text = ctx.measureText(s.selectedOptions[0].textContent).width;
            const room = s.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight) - 16;
            return {text, room};
        }"""
    )
    print(fits)
    assert fits["text"] <= fits["room"], fits
    assert picker.get_attribute("title") == f"{ROOM}（R01）· {TITLE}"
    group = picker.locator("optgroup")
    expect(group).to_have_attribute("label", TITLE)
    expect(group.locator("option")).to_have_attribute("title", f"{ROOM}（R01）· {TITLE}")


def test_the_timeline_names_each_stream_and_keeps_time_order(live: Live, console: Page) -> None:
    """开始录制 摄像头 / 开始录制 屏幕, the reviewer's words, not two bare 开始录像; and a drop of
    the network that the desk reported 30 s late stands where it happened, before them."""
    with httpx.Client(base_url=live.url, timeout=60) as http:
        cand = candidate(http, live)
        flow.enter_by_api(http, cand, live, T - timedelta(minutes=9))
        live.clock.set(T - timedelta(minutes=8))
        for kind in ("webcam", "screen"):
            r = http.post(
                "/api/v1/recordings",
                headers=cand,
                json={"kind": kind, "mime": "video/webm;codecs=vp8,opus"},
            )
            assert r.status_code == 201, r.text
        late = {"kind": "offline", "data": {"delayed_s": 30, "queued_offline": True}}
        r = http.post("/api/v1/candidate/events", headers=cand, json=late)
        assert r.status_code == 201, r.text

    sign_in(console, live)
    console.locator(".tile", has_text="奥巴马").click()
    timeline = console.get_by_role("list", name="事件时间线")
    expect(timeline).to_contain_text("开始录制 摄像头")
    expect(timeline).to_contain_text("开始录制 屏幕")
    assert "开始录像" not in timeline.inner_text()
    items = timeline.locator("li").all_inner_texts()
    dropped = next(i for i, t in enumerate(items) if "网络断开" in t)
    started = next(i for i, t in enumerate(items) if "开始录制 摄像头" in t)
    assert dropped < started, items
    assert "08:51:30" in items[dropped], items  # T − 8 min − 30 s, in the exam's zone


def tile_state(tile: Locator) -> dict[str, Any]:
    """The tile's classes, badges and border colour, with the page's line and warning colours
    resolved the same way."""
    state: dict[str, Any] = tile.evaluate(
        """(t) => {
            const probe = (v) => {
                const el = document.createElement("div");
                el.style.color = `var(${v})`;
                document.body.append(el);
                const c = getComputedStyle(el).color;
                el.remove();
                return c;
            };
            return {
                classes: [...t.classList],
                badges: [...t.querySelectorAll(".badge")].map((b) => [b.className, b.textContent]),
                stage: t.querySelector(".stage").textContent,
                border: getComputedStyle(t).borderTopColor,
                line: probe("--line"),
                warn: probe("--warn"),
            };
        }"""
    )
    return state


def test_not_entered_candidates_are_calm_until_entry_closes(live: Live, console: Page) -> None:
    """Entry is open (T−5 min) and nobody has entered: no warning border, no 未入场 badge, the
    stage says 未登录. After entry closes (T+3 min): 拜登 is 缺考; 奥巴马, allowed a late entry
    and still not in, is 未入场 with the warning border."""
    live.clock.set(T - timedelta(minutes=5))
    sign_in(console, live)
    tiles = {name: console.locator(".tile", has_text=name) for name in ("奥巴马", "拜登")}
    for tile in tiles.values():
        expect(tile.locator(".stage")).to_have_text("未登录")
    console.wait_for_timeout(2500)  # a second room status (every 2 s) changes nothing
    for name, tile in tiles.items():
        state = tile_state(tile)
        print(name, state)
        assert "late" not in state["classes"] and "absent" not in state["classes"], state
        assert state["badges"] == [], state
        assert state["border"] == state["line"] != state["warn"], state
        expect(tile).not_to_contain_text("未入场")

    with transaction(live.ctx.db) as session:
        obama = session.scalars(
            select(Attempt)
            .join(Candidate, Candidate.id == Attempt.candidate_id)
            .where(Candidate.ticket == "1001", Attempt.exam_id == live.exam_id)
        ).one()
        obama.late_entry_until = T + timedelta(minutes=10)  # as 允许补入场 sets it
    live.clock.set(T + timedelta(minutes=3, seconds=5))

    expect(tiles["拜登"].locator(".badge.bad")).to_have_text("缺考", timeout=10000)
    expect(tiles["拜登"]).to_have_class(re.compile(r"\babsent\b"))
    expect(tiles["奥巴马"].locator(".badge.warn")).to_have_text("未入场", timeout=10000)
    state = tile_state(tiles["奥巴马"])
    print(state)
    assert "late" in state["classes"], state
    assert state["border"] == state["warn"], state


def test_an_answering_candidate_without_the_questions_is_flagged(live: Live, console: Page) -> None:
    """Half a minute past T, a candidate who is answering but whose computer has not fetched
    the questions gets 试题未送达 on the tile; the fetch (试题已送达 in the log) clears it."""
    with httpx.Client(base_url=live.url, timeout=60) as http:
        cand = candidate(http, live)
        flow.enter_by_api(http, cand, live, T - timedelta(minutes=9))
    live.clock.set(T + timedelta(seconds=10))
    sign_in(console, live)
    tile = console.locator(".tile", has_text="奥巴马")
    expect(tile.locator(".stage")).to_have_text("答题中")
    console.wait_for_timeout(2500)  # a room status later: still within the grace
    expect(tile.locator(".badge")).to_have_count(0)

    live.clock.set(T + timedelta(seconds=40))
    with httpx.Client(base_url=live.url, timeout=60) as http:
        # The console reads the server's time from its room updates, sent when something
        # changes: the jump of the test's clock reaches it with the next heartbeat.
        assert http.post("/api/v1/candidate/heartbeat", headers=cand).status_code == 200
    expect(tile.locator(".badge.warn")).to_have_text("试题未送达", timeout=10000)
    with httpx.Client(base_url=live.url, timeout=60) as http:
        assert http.get("/api/v1/candidate/questions", headers=cand).status_code == 200
    expect(tile.locator(".badge")).to_have_count(0, timeout=10000)
    console.locator(".tile", has_text="奥巴马").click()
    expect(console.get_by_role("list", name="事件时间线")).to_contain_text("试题已送达")


def test_an_alert_card_keeps_the_name_and_ticket_on_one_line(live: Live, browser: Any) -> None:
    """At 1280 px wide, an alert for a candidate with a ten-digit ticket reads 欧阳娜娜（2026120101）
    on one line, the whole ticket shown (not cut off), and the card is no wider than the panel."""
    with httpx.Client(base_url=live.url, timeout=60) as http:
        cand = candidate(http, live, LONG_TICKET)
        for kind in ("focus_lost", "second_screen"):
            r = http.post("/api/v1/candidate/events", headers=cand, json={"kind": kind})
            assert r.status_code == 201, r.text

    context, page, errors, lines = watched_page(
        browser, viewport={"width": 1280, "height": 800}, locale="zh-CN"
    )
    sign_in(page, live)
    alerts = page.get_by_role("alert").filter(has_text=LONG_NAME)
    expect(alerts).to_have_count(2)
    for i in range(2):
        who = alerts.nth(i).locator(".who")
        expect(who).to_have_text(f"{LONG_NAME}（{LONG_TICKET}）")
        assert who.evaluate(TEXT_LINES) == 1
        seen = who.evaluate(
            """(el) => {
                const card = el.closest(".alert").getBoundingClientRect();
                const panel = el.closest(".alerts").getBoundingClientRect();
                return {
                    // An ellipsis anywhere in it (the line or the name inside it) hides text.
                    clipped: [el, ...el.querySelectorAll("*")].some(
                        (e) => e.scrollWidth > e.clientWidth + 1),
                    card: [card.left, card.right], panel: [panel.left, panel.right],
                };
            }"""
        )
        assert not seen["clipped"], seen
        assert seen["card"][1] <= seen["panel"][1] + 0.5, seen
    check_page(context, errors, lines)


def test_a_tile_shows_the_whole_ticket_of_a_long_name(live: Live, browser: Any) -> None:
    """At 1280 px wide, the narrowest tiles: a twelve-character name gives way (ellipsis), the
    ticket, the lot and the stage stay whole, all on the tile's first line."""
    context, page, errors, lines = watched_page(
        browser, viewport={"width": 1280, "height": 800}, locale="zh-CN"
    )
    sign_in(page, live)
    tile = page.locator(".tile", has_text=LONGEST_TICKET)
    expect(tile.locator(".who")).to_have_text(f"{LONGEST_NAME}（{LONGEST_TICKET}）")
    header = tile.locator("header")
    for part in (".who", ".lot", ".stage"):
        assert header.locator(part).evaluate(TEXT_LINES) == 1, part
    seen = header.evaluate(
        """(el) => {
            const box = el.getBoundingClientRect();
            const part = (sel) => {
                const e = el.querySelector(sel), r = e.getBoundingClientRect();
                return { clipped: e.scrollWidth > e.clientWidth + 1, left: r.left,
                         right: r.right, top: r.top, bottom: r.bottom };
            };
            return { header: [box.left, box.right], ticket: part(".ticket"),
                     stage: part(".stage"), lot: part(".lot"), name: part(".name") };
        }"""
    )
    print(seen)
    for whole in ("ticket", "lot", "stage"):
        assert not seen[whole]["clipped"], seen
        assert seen[whole]["right"] <= seen["header"][1] + 0.5, seen
    assert seen["name"]["clipped"], seen  # the name is what gives way
    parts = [seen[k] for k in ("name", "ticket", "lot", "stage")]
    # One line: every part overlaps every other vertically (baselines aligned, sizes differ).
    assert max(p["top"] for p in parts) < min(p["bottom"] for p in parts), seen
    check_page(context, errors, lines)


def test_the_phone_picture_is_as_tall_as_the_other_two(
    live: Live, console: Page, tmp_path: Path
) -> None:
    """In an exam with the phone camera a tile has three pictures; the phone's narrower box is
    as tall as the webcam's and the screen's, its picture shown whole inside it."""
    doc = exam_doc()
    doc["exam"]["rules"]["evidence_camera"] = "required"
    live.exam_id = import_exam(live.ctx, tmp_path / "phone-exam", doc)
    with httpx.Client(base_url=live.url, timeout=60) as http:
        post_desk_snapshots(http, candidate(http, live))
    with transaction(live.ctx.db) as session:
        room = session.scalars(
            select(Attempt.room_id).where(Attempt.exam_id == live.exam_id)
        ).first()
    sign_in(console, live)
    expect(console.locator("#conn")).to_have_text("实时连接")
    console.goto(f"{live.url}/proctor/?room={room}")
    tile = console.locator(".tile", has_text="奥巴马")
    webcam = tile.locator("figure.cam-webcam img")
    loaded(console, webcam)
    boxes = [
        tile.locator(f"figure.cam-{kind} img").bounding_box()
        for kind in ("webcam", "screen", "evidence")
    ]
    assert all(boxes), boxes
    heights = [b["height"] for b in boxes if b]
    assert max(heights) - min(heights) <= 2, heights
    phone = tile.locator("figure.cam-evidence")
    expect(phone.locator("figcaption")).to_have_text("手机佐证")
    assert (phone.bounding_box() or {}).get("width", 0) < boxes[0]["width"]  # type: ignore[index]


def test_the_tile_shows_what_the_desk_has_still_to_upload(
    page: Page, live: Live, console: Page
) -> None:
    """On a line too slow for its recording, the desk's chunks pile up in its own store, which
    the server cannot see (it has no gap yet, only a late tail): the desk's heartbeat says how
    much is waiting, and the proctor's tile shows it until it has drained."""
    flow.up_to_answering(page, live)
    page.route("**/chunks/**", lambda route: route.abort("internetdisconnected"))
    sign_in(console, live)
    uploads = console.locator(".tile", has_text="奥巴马").locator('dt:text-is("上传") + dd')
    expect(uploads).to_have_text(re.compile(r"^待上传 \d+ 段$"), timeout=30000)
    expect(uploads).to_have_class(re.compile(r"\bwarn\b"))
    expect(uploads).to_have_attribute("title", re.compile(r"^电脑上尚有 [\d.]+ [KM]?B 录像待上传$"))
    console.locator(".tile", has_text="奥巴马").click()
    info = console.locator('dt:text-is("电脑待上传") + dd')
    expect(info).to_have_text(re.compile(r"^\d+ 段（[\d.]+ [KM]?B）$"))
    page.unroute("**/chunks/**")
    expect(info).to_have_count(0, timeout=30000)
    console.keyboard.press("Escape")
    expect(uploads).to_have_text("正常")
