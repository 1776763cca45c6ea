"""The reviewer's 系统日志 reads as words: a candidate is driven through the real API far enough
that the log holds many kinds of events (face consent, a refused and an accepted login, the
device check, lot, attachments, the phone, recordings, the desk's signals, help, proctor
warnings and notes, the exam office's extra time, snapshot flags, the desk out of contact and
back, 交卷), then the reviewer opens the candidate in Chromium: no data key shows in English,
long values wrap inside their cell, and the timeline says how long the desk was gone."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FACES, T, exam_doc, import_exam
from PIL import Image
from playwright.sync_api import Page, expect

from invigil.core.context import AppContext
from invigil.core.jobs import run_due_jobs

from .conftest import Live
from .flow import WRAPPED, post_ok
from .test_review_pages import TICKET, bearer, shot, sign_in, staff, upload, webm

# A real desktop Chrome's user agent: long and without spaces where it matters, so a cell that
# does not wrap it widens the page.
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.127 Safari/537.36 Edg/126.0.2592.87;ExtraLongToken=" + "x" * 80
)

# What the desk's device check sends (desk/stage-device.js, S.report), as Chrome fills it.
DEVICE_REPORT = {
    "browser": {"name": "Chrome", "version": 126, "problems": ["not_chrome"]},
    "browser_ok": True,
    "camera": {"label": "Integrated Camera", "virtual": False, "width": 640, "height": 480},
    "microphone": {"label": "Microphone Array"},
    "virtual_cameras": [],
    "extended": False,
    "battery": {"level": 0.87, "charging": True},
    "network": {"kind": "upload", "kbps": 5400, "ms": 580},
    "test_recording": {"bytes": 183_204, "mime": "video/webm;codecs=vp8,opus"},
}

# The desk's own signals (desk/signals.js, media.js, session.js) with the data they carry.
DESK_SIGNALS: list[tuple[str, dict[str, Any]]] = [
    ("focus_lost", {}),
    ("focus_back", {"duration_ms": 4200}),
    ("visibility_hidden", {}),
    ("visibility_visible", {"duration_ms": 3100}),
    ("fullscreen_exit", {}),
    ("fullscreen_enter", {"duration_ms": 2500}),
    ("screenshot_key", {"key": "PrintScreen", "type": "keyup"}),
    ("copy_paste", {"action": "paste", "target": "textarea"}),
    ("context_menu", {}),
    ("device_change", {"cameras": 1, "microphones": 2}),
    ("second_screen", {"extended": True, "at_start": True}),
    ("track_ended", {"kind": "screen", "track": "video", "label": "screen:0:0"}),
    ("offline", {}),
    ("online", {"duration_ms": 12_000}),
    ("client_error", {"where": "window", "message": "boom", "source": "app.js:1"}),
    (
        "client_error",
        {"where": "upload", "kind": "webcam", "recordingId": "r1", "reason": "hash_mismatch"},
    ),
    ("help_requested", {"view": "answering"}),
]


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["staff"] = [
        *doc["staff"],
        {"username": "adm", "password": "pw-adm", "roles": ["admin"]},
    ]
    return import_exam(app_ctx, tmp_path / "exam", doc)


def snapshot(http: httpx.Client, token: str, image: bytes) -> None:
    post_ok(
        http,
        "/api/v1/snapshots",
        data={"kind": "webcam"},
        files={"image": ("s.jpg", image, "image/jpeg")},
        headers=bearer(token),
    )


def black_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (3, 3, 3)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def eventful(live: Live) -> str:
    """The attempt id of 1001, driven through the API into a log of many kinds."""
    ctx, clock, exam = live.ctx, live.clock, live.exam_id
    at = lambda s: T + timedelta(seconds=s)  # noqa: E731
    face = (FACES / "obama2.jpg").read_bytes()
    with httpx.Client(base_url=live.url, timeout=60, headers={"User-Agent": CHROME_UA}) as http:
        clock.set(T - timedelta(minutes=12))
        consent = {"exam_id": exam, "ticket": TICKET, "consent": True}
        post_ok(http, "/api/v1/candidate/face-consent", json=consent)
        refused = http.post(
            "/api/v1/candidate/login",
            data={"exam_id": exam, "ticket": TICKET},
            files={"face": ("face.jpg", (FACES / "biden.jpg").read_bytes(), "image/jpeg")},
        )
        assert refused.status_code == 403, refused.text  # face_mismatch, with its distance
        got = post_ok(
            http,
            "/api/v1/candidate/login",
            data={"exam_id": exam, "ticket": TICKET},
            files={"face": ("face.jpg", face, "image/jpeg")},
        )
        token, attempt = got["token"], got["attempt_id"]
        me = bearer(token)
        event = {"kind": "device_check", "data": DEVICE_REPORT}
        post_ok(http, "/api/v1/candidate/events", json=event, headers=me)
        adm, p1 = staff(http, "adm"), staff(http, "p1")
        office = f"/api/v1/admin/exams/{exam}/attempts/{attempt}"
        late = {"minutes": 5, "reason": "交通管制"}
        post_ok(http, f"{office}/late-entry", json=late, headers=adm)
        post_ok(http, "/api/v1/candidate/lot", headers=me)
        state = http.get("/api/v1/candidate/state", headers=me).json()
        for a in state["attachments"]:
            post_ok(http, f"/api/v1/candidate/attachments/{a['id']}/read", headers=me)
        # The evidence phone binds with the typed code, sweeps, records, and loses its camera.
        offer = post_ok(http, "/api/v1/candidate/binding", headers=me)
        phone = bearer(post_ok(http, "/api/v1/phone/bind", json={"code": offer["code"]})["token"])
        for phase in ("sweeping", "recording"):
            post_ok(http, "/api/v1/phone/status", json={"state": phase}, headers=phone)
        gap = {"reason": "hidden", "duration_ms": 8000, "started_at": "2030-06-01T00:49:00Z"}
        post_ok(
            http, "/api/v1/phone/events", json={"kind": "evidence_gap", "data": gap}, headers=phone
        )

        clock.set(T - timedelta(minutes=9))
        post_ok(http, "/api/v1/candidate/enter", headers=me)
        clock.set(at(0))
        upload(http, token, "webcam", webm())
        for kind, data in DESK_SIGNALS:
            post_ok(http, "/api/v1/candidate/events", json={"kind": kind, "data": data}, headers=me)
        help_seq = post_ok(
            http, "/api/v1/candidate/help", json={"text": "摄像头画面卡住"}, headers=me
        )
        post_ok(http, f"/api/v1/staff/attempts/{attempt}/help", json={"text": "请刷新"}, headers=p1)
        dismiss = {"seq": help_seq["seq"]}
        post_ok(http, f"/api/v1/staff/attempts/{attempt}/help/dismiss", json=dismiss, headers=p1)
        post_ok(
            http,
            f"/api/v1/staff/attempts/{attempt}/warnings",
            json={"text": "请正对摄像头"},
            headers=p1,
        )
        post_ok(
            http, f"/api/v1/staff/attempts/{attempt}/notes", json={"text": "考生已调整"}, headers=p1
        )
        extra = {"minutes": 10, "reason": "网络故障补时"}
        post_ok(http, f"{office}/extra-time", json=extra, headers=adm)

        # Snapshot flags through the real analysis: the group photo raises 多人脸 at once and
        # three own frames end it; a dark frame for 15 s is 摄像头被遮挡或过暗.
        frames = [face, (FACES / "group_t1.jpg").read_bytes(), face, face, face]
        frames += [black_jpeg()] * 4
        for i, image in enumerate(frames):
            clock.set(at(5 + 5 * i))
            snapshot(http, token, image)
            post_ok(http, "/api/v1/candidate/heartbeat", headers=me)
            run_due_jobs(ctx.job_context())

        # The desk goes quiet for 70 s: the presence sweep logs desk_silent, the next
        # heartbeat desk_back with how long it was gone.
        quiet_from = at(60)
        clock.set(quiet_from)
        post_ok(http, "/api/v1/candidate/heartbeat", headers=me)
        clock.set(quiet_from + timedelta(seconds=70))
        run_due_jobs(ctx.job_context())
        clock.set(quiet_from + timedelta(seconds=75))
        post_ok(http, "/api/v1/candidate/heartbeat", headers=me)

        post_ok(http, "/api/v1/candidate/finish", headers=me)
        run_due_jobs(ctx.job_context())  # assembly and the audio analysis
    clock.set(T + timedelta(hours=1))
    return str(attempt)


# One 「键：值」 pair's key: what stands before a full-width colon, back to the previous pair's
# end (；), a bracket or a list separator.
KEY = re.compile(r"([^：；（）、]*)：")


def test_system_log_reads_in_words_and_fits_the_page(
    page: Page, live: Live, eventful: str, screens: Path | None
) -> None:
    sign_in(page, f"{live.url}/review/", "rev")
    page.goto(f"{live.url}/review/#attempt/{eventful}")
    events = page.locator("#events")
    expect(events.locator("li").first).to_be_visible()

    # The timeline: how long the exam computer was out of contact, which stream started.
    back = events.locator('li[data-kind="desk_back"]')
    expect(back).to_have_count(1)
    expect(back).to_contain_text(re.compile(r"失去联系 1 分 \d{2} 秒"))
    silent = events.locator('li[data-kind="desk_silent"]')
    expect(silent).to_contain_text(re.compile(r"1 分 \d{2} 秒未收到考试电脑的消息"))
    started = events.locator('li[data-kind="recording_started"]')
    expect(started.first).to_contain_text("摄像头")
    expect(events.locator('li[data-kind="extra_time"]')).to_contain_text("延长 10 分钟")

    page.get_by_role("tab", name="系统日志").click()
    table = page.locator("#panel table.log")
    expect(table).to_be_visible()
    kinds = set(
        table.locator("tbody:not(.day) tr:not(.data-row)").evaluate_all(
            "rs => rs.map(r => r.cells[2].innerText)"
        )
    )
    # Enough of the log to mean something: these kinds all carry data with their own keys.
    for kind in ("同意人脸识别", "登录失败", "登录", "设备检测", "抽签", "手机绑定", "多人脸"):
        assert kind in kinds, sorted(kinds)
    assert "考试电脑恢复联系" in kinds and "延长考试时间" in kinds, sorted(kinds)

    # Every event name on one line, long ones too (摄像头被遮挡或过暗, 考试电脑恢复联系), in the
    # log's 事件 column and in the timeline beside the player; the day heads the log once, each
    # row has its time of day (the whole date and time in its title).
    names = table.locator("td.kind")
    assert max(len(n) for n in names.all_inner_texts()) >= 9
    assert names.evaluate_all(WRAPPED) == []
    assert events.locator(".kind").evaluate_all(WRAPPED) == []
    expect(table.locator("tbody.day")).to_have_text(["2030-06-01"])
    first = table.locator("td.at").first
    expect(first).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2}$"))
    expect(first).to_have_attribute("title", re.compile(r"^2030-06-01 \d{2}:\d{2}:\d{2}$"))

    cells = table.locator("td.data").all_inner_texts()
    raw = {key for text in cells for key in KEY.findall(text) if re.search(r"[A-Za-z]", key)}
    assert not raw, f"data keys not in words: {sorted(raw)}"
    text = "\n".join(cells)
    assert "浏览器标识：Mozilla/5.0" in text  # the value itself stays as it was sent
    assert "电量：87%" in text
    assert re.search(r"持续时间：1 分 \d{2} 秒", text), text  # desk_back's duration_ms
    # A code reads by its key: the help message is 来自 the candidate, not 考生主动交卷.
    assert "来自：考生；" in text and "来自：考生主动交卷" not in text

    # Long values wrap inside their cells: nothing is wider than the window.
    widths = page.evaluate(
        "() => ({ page: document.documentElement.scrollWidth,"
        " view: document.documentElement.clientWidth })"
    )
    assert widths["page"] <= widths["view"], widths
    panel = page.locator("#panel")
    overflow = panel.evaluate("p => p.scrollWidth - p.clientWidth")
    assert overflow <= 1, f"the log is {overflow}px wider than its panel"
    shot(page, screens, "review-5-log")
