"""The staff pages show every time of day in the exam's zone (its ``utc_offset_minutes``), as the
candidate's desk does, and say so once (时间均为考场时间（UTC+8）) — whatever zone the staff
member's computer is set to. Each browser here runs in a zone other than the exam's (Playwright's
``timezone_id``): a page that formatted times in the browser's zone would show other clock
times than the candidate saw.

Expected strings are computed here from the server's times, in the exam's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FACES, T, exam_doc, import_exam
from playwright.sync_api import Page, expect

from invigil.core.context import AppContext

from . import flow
from .conftest import Live, check_page, watched_page

ADMIN = {"username": "adm", "password": "pw-adm", "roles": ["admin"]}


def zone(offset: str) -> timezone:
    """ "+05:30" → the fixed zone UTC+5:30."""
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = offset[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def at_zone(when: str | datetime, tz: timezone, fmt: str = "%H:%M:%S") -> str:
    """A server time (ISO or datetime) on the exam's wall clock."""
    moment = datetime.fromisoformat(when.replace("Z", "+00:00")) if isinstance(when, str) else when
    return moment.astimezone(tz).strftime(fmt)


def start_of(offset: str) -> datetime:
    """Every exam here starts at 09:00 on its own clock, on 2030-06-01."""
    return datetime(2030, 6, 1, 9, 0, tzinfo=zone(offset))


@pytest.fixture
def exam_offset(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "+08:00"))


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path, exam_offset: str) -> str:
    """The default test exam (09:00, 20 minutes, rooms R01/R02, proctor p1, reviewer rev), at
    09:00 in the zone exam_offset names, plus an admin."""
    doc = exam_doc()
    doc["exam"]["starts_at"] = f"2030-06-01T09:00:00{exam_offset}"
    doc["staff"] = [*doc["staff"], ADMIN]
    return import_exam(app_ctx, tmp_path / "exam", doc)


@pytest.fixture
def open_page(
    browser: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Page]]:
    """open_page("America/New_York") → a page whose browser runs in that time zone (with the
    same checks as the page fixture: no page errors, no CSP violations)."""
    opened: list[tuple[Any, Page, list[str], list[str]]] = []

    def make(timezone_id: str) -> Page:
        context, pg, errors, console = watched_page(
            browser,
            viewport={"width": 1280, "height": 860},
            locale="zh-CN",
            timezone_id=timezone_id,
        )
        opened.append((context, pg, errors, console))
        return pg

    yield make
    for context, pg, errors, console in opened:
        try:
            print("--- page text ---\n" + pg.inner_text("body")[:3000])
        except Exception as exc:  # the page may be gone
            print(f"(no page: {exc})")
        check_page(context, errors, console)


def browser_offset(page: Page) -> int:
    """The browser's own offset (minutes east of UTC) at the exam's start."""
    return int(page.evaluate("-new Date('2030-06-01T01:00:00Z').getTimezoneOffset()"))


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(f"pw-{username}")
    page.get_by_role("button", name="登录").click()


def staff(http: httpx.Client, username: str) -> dict[str, str]:
    r = http.post("/api/v1/staff/login", json={"username": username, "password": f"pw-{username}"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def candidate_login(http: httpx.Client, exam_id: str, ticket: str = "1001") -> tuple[str, str]:
    r = http.post(
        "/api/v1/candidate/login",
        data={"exam_id": exam_id, "ticket": ticket},
        files={"face": ("face.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    return r.json()["token"], r.json()["attempt_id"]


def test_review_pages_show_the_exams_clock_not_the_browsers(
    live: Live, open_page: Callable[[str], Page]
) -> None:
    """A reviewer in New York reads a Beijing exam: the list, the candidate's events and
    schedule in Beijing time (UTC+8), as the candidate's desk showed them."""
    tz = zone("+08:00")
    page = open_page("America/New_York")
    assert browser_offset(page) != 480  # the browser's zone is not the exam's
    with httpx.Client(base_url=live.url, timeout=60) as http:
        _, attempt = candidate_login(http, live.exam_id)
        data = http.get(f"/api/v1/review/attempts/{attempt}", headers=staff(http, "rev")).json()
    login_at = next(e["at"] for e in data["events"] if e["kind"] == "login")

    sign_in(page, f"{live.url}/review/", "rev")
    row = page.locator("tr", has=page.get_by_role("link", name="测试考试"))
    expect(row).to_contain_text(at_zone(T, tz, "%Y-%m-%d %H:%M:%S"))  # 2030-06-01 09:00:00
    expect(row).to_contain_text(at_zone(T + timedelta(minutes=20), tz, "%Y-%m-%d %H:%M:%S"))
    expect(page.locator("#zone-note")).to_have_text("时间均为考场时间（UTC+8）")

    page.get_by_role("link", name="测试考试").click()
    page.get_by_role("link", name="查看 奥巴马").click()
    expect(page.locator("#zone-note")).to_have_text("时间均为考场时间（UTC+8）")
    login = page.locator('#events li[data-kind="login"] time')
    expect(login).to_have_text(at_zone(login_at, tz))
    # Every time in the timeline is the exam's wall clock of the event's server time.
    for el in page.locator("#events li time").all():
        assert el.inner_text() == at_zone(el.get_attribute("datetime") or "", tz)
    page.get_by_role("tab", name="答题").click()
    expect(page.locator("#panel")).to_contain_text("2030-06-01 09:00:00")  # 开考时间
    expect(page.locator("#panel")).to_contain_text("2030-06-01 09:20:00")  # 截止时间
    page.get_by_role("tab", name="系统日志").click()
    # The log: the day heads its entries, each row has its time of day, both the exam's.
    log = page.locator("#panel table")
    expect(log.locator("tbody.day").first).to_have_text(at_zone(login_at, tz, "%Y-%m-%d"))
    expect(log).to_contain_text(at_zone(login_at, tz, "%H:%M:%S"))

    # The note reads in English too.
    page.get_by_role("button", name="Switch to English").click()
    expect(page.locator("#zone-note")).to_have_text("Times in the exam's zone (UTC+8)")


@pytest.mark.parametrize(
    ("exam_offset", "browser_zone", "name"),
    [("+08:00", "UTC", "UTC+8"), ("-05:00", "Asia/Shanghai", "UTC-5")],
    indirect=["exam_offset"],
)
def test_proctor_console_shows_the_exams_clock_not_the_browsers(
    live: Live, open_page: Callable[[str], Page], exam_offset: str, browser_zone: str, name: str
) -> None:
    """A proctor on the phone with a candidate reads the same clock times as the candidate: the
    alert, the timeline and the entry time in the exam's zone, named once above the grid; and
    tech support (a proctor's console too) the time of a face-login request."""
    tz = zone(exam_offset)
    start = start_of(exam_offset)
    live.clock.set(start - timedelta(minutes=12))
    page = open_page(browser_zone)
    assert browser_offset(page) != int(tz.utcoffset(None).total_seconds() // 60)
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, attempt = candidate_login(http, live.exam_id)
        cand = {"Authorization": f"Bearer {token}"}
        flow.enter_by_api(http, cand, live, start - timedelta(minutes=9))
        # Another candidate declines face recognition and asks tech support to let them in.
        r = http.post(
            "/api/v1/candidate/face-consent",
            json={"exam_id": live.exam_id, "ticket": "1002", "consent": False},
        )
        assert r.status_code in (200, 201), r.text
        r = http.post(
            "/api/v1/candidate/login-help",
            data={"exam_id": live.exam_id, "ticket": "1002", "text": "不同意人脸识别"},
        )
        assert r.status_code == 201, r.text

        sign_in(page, f"{live.url}/proctor/", "tech1")
        tile = page.locator(".tile", has_text="奥巴马")
        expect(tile).to_be_visible()
        expect(page.locator("#zone-note")).to_have_text(f"时间均为考场时间（{name}）")

        r = http.post("/api/v1/candidate/events", headers=cand, json={"kind": "focus_lost"})
        assert r.status_code == 201, r.text
        tech = staff(http, "tech1")
        events = http.get(f"/api/v1/staff/attempts/{attempt}/events", headers=tech).json()["events"]
        requests = http.get("/api/v1/staff/login-help", headers=tech).json()["requests"]
    focus_at = next(e["at"] for e in events if e["kind"] == "focus_lost")
    entered_at = next(e["at"] for e in events if e["kind"] == "entered")
    asked_at = next(r["created_at"] for r in requests if r["ticket"] == "1002")

    alert = page.get_by_role("alert").filter(has_text="奥巴马")
    expect(alert.locator("time")).to_have_text(at_zone(focus_at, tz))
    tile.click()
    timeline = page.locator("#detail .timeline")
    expect(timeline.locator("time").last).to_have_text(at_zone(focus_at, tz))
    for el in timeline.locator("time").all():
        assert el.inner_text() == at_zone(el.get_attribute("datetime") or "", tz)
    expect(page.locator("#detail .facts")).to_contain_text(at_zone(entered_at, tz))  # 入场时间
    # The entry was at 08:51 on the exam's clock, whatever the browser's zone.
    assert at_zone(entered_at, tz, "%H:%M") == "08:51"
    page.locator("#detail").get_by_role("button", name="关闭").click()

    page.locator("#tech-tab").click()
    card = page.locator(".request", has_text="拜登")
    expect(card).to_contain_text(f"{at_zone(asked_at, tz)} 申请")
    expect(page.locator("#tech-zone-note")).to_have_text(f"时间均为考场时间（{name}）")


def test_admin_lists_each_exam_in_its_own_zone(
    live: Live, app_ctx: AppContext, open_page: Callable[[str], Page], tmp_path: Path
) -> None:
    """Exams in Beijing, New York (UTC-5) and India (UTC+5:30), all starting at 09:00 local: the
    exam office's list shows 09:00 for each, with each zone named since they differ; the
    overview and 个别安排 of one exam name its zone."""
    ids = {"+08:00": live.exam_id}
    for offset, title in (("-05:00", "纽约考场"), ("+05:30", "新德里考场")):
        doc = exam_doc(staff=[])
        doc["exam"]["title"] = title
        doc["exam"]["starts_at"] = f"2030-06-01T09:00:00{offset}"
        doc["candidates"] = doc["candidates"][:1]
        ids[offset] = import_exam(app_ctx, tmp_path / title, doc)
    page = open_page("UTC")

    sign_in(page, f"{live.url}/admin/", "adm")
    expect(page.locator("#exams tbody tr")).to_have_count(3)
    expect(page.locator("#zone-note")).to_have_text("时间均为各考试的考场时间")
    for offset, name in (("+08:00", "UTC+8"), ("-05:00", "UTC-5"), ("+05:30", "UTC+5:30")):
        row = page.locator(f'#exams tr[data-exam="{ids[offset]}"]')
        expect(row.locator("td").nth(1)).to_have_text(f"2030-06-01 09:00:00 ({name})")

    # One exam's pages: its own zone, named once.
    page.goto(f"{live.url}/admin/#overview/{ids['-05:00']}")
    expect(page.locator("#overview")).to_contain_text(
        "开考 2030-06-01 09:00:00，结束 2030-06-01 09:20:00"
    )
    expect(page.locator("#overview #zone-note")).to_have_text("时间均为考场时间（UTC-5）")
    page.goto(f"{live.url}/admin/#arrangements/{ids['+05:30']}")
    expect(page.locator("#zone-note")).to_have_text("时间均为考场时间（UTC+5:30）")
    page.goto(f"{live.url}/admin/#results/{ids['-05:00']}")
    expect(page.locator(".zone-note")).to_have_text("时间均为考场时间（UTC-5）")

    # The review list (as the admin) too: each exam's start on its own clock.
    page.goto(f"{live.url}/review/#exams")
    expect(page.locator("#zone-note")).to_have_text("时间均为各考试的考场时间")
    for title, name in (("测试考试", "UTC+8"), ("纽约考场", "UTC-5"), ("新德里考场", "UTC+5:30")):
        row = page.locator("tr", has=page.get_by_role("link", name=title))
        expect(row.locator("td").nth(1)).to_have_text(f"2030-06-01 09:00:00 ({name})")


def test_exam_time_helpers_use_the_offset_given(
    live: Live, open_page: Callable[[str], Page]
) -> None:
    """The shared helpers (shared/i18n.js) format in the zone given, never the browser's,
    including offsets with half hours and west of UTC."""
    page = open_page("America/New_York")
    page.goto(f"{live.url}/review/")
    got = page.evaluate(
        """async () => {
            const m = await import('/shared/i18n.js');
            const t = '2030-06-01T01:00:05.250Z';
            const out = {};
            for (const off of [480, 330, -300, 0, -570]) {
                out[off] = [m.examTime(t, off), m.examDateTime(t, off), m.examDateTime(Date.parse(t), off, false), m.zoneName(off)];
            }
            out.none = [m.examTime(null, 480), m.examDateTime(undefined, 480)];
            out.shared = [m.sharedOffset([480, 480]), m.sharedOffset([480, -300]), m.sharedOffset([])];
            out.clock = m.clockTime(t, 480);
            // The desk's schedule times: seconds only off the whole minute.
            out.schedule = [m.scheduleTime('2030-06-01T01:00:00Z', 480), m.scheduleTime(t, 480),
                            m.scheduleTime('2030-06-01T01:00:30+00:00', -300), m.scheduleTime(null, 480)];
            return out;
        }"""
    )
    moment = datetime(2030, 6, 1, 1, 0, 5, tzinfo=UTC)
    for off, name in (
        (480, "UTC+8"),
        (330, "UTC+5:30"),
        (-300, "UTC-5"),
        (0, "UTC+0"),
        (-570, "UTC-9:30"),
    ):
        tz = timezone(timedelta(minutes=off))
        assert got[str(off)] == [
            at_zone(moment, tz),
            at_zone(moment, tz, "%Y-%m-%d %H:%M:%S"),
            at_zone(moment, tz, "%Y-%m-%d %H:%M"),
            name,
        ], off
    assert got["none"] == ["", "—"]
    assert got["shared"] == [480, None, None]
    assert got["clock"] == "2030-06-01 09:00"  # the desk's helper, unchanged
    assert got["schedule"] == ["2030-06-01 09:00", "2030-06-01 09:00:05", "2030-05-31 20:00:30", ""]
