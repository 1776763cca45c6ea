"""After the exam, in the browser: a reviewer opens the flagged candidate from triage, jumps
from a flagged event to that moment in every player at once, rules; a second reviewer
confirms; an examiner scores blind by lot number; the admin publishes; the candidate looks
up the score.

The candidate is seeded through the real API: face login, entering, three streams of real
WebM recordings (one with a reconnect, so a gap), finalize, the assembly jobs, and flagged
events at known server times. Every second of each recording has its own brightness, so the
test reads the frame a player shows and knows where it stands.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from conftest import FACES, T, exam_doc, import_exam
from playwright.sync_api import Page, expect
from sqlalchemy import select

from invigil.attempts import events, sessions
from invigil.attempts.models import Attempt, Event
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.jobs import run_due_jobs
from invigil.recordings.models import Recording, Snapshot

from . import flow
from .conftest import Live

FPS = 10
SECONDS = 6
NAME, TICKET = "奥巴马", "1001"


def level(second: int) -> int:
    """The grey level of every frame in one second of a recording (distinct for six seconds,
    then repeating, so longer recordings stay within a byte)."""
    return 30 + 35 * (second % 6)


@cache
def webm(seconds: int = SECONDS) -> bytes:
    """VP8 + Opus in live mode (no duration, no cues), as Chrome's MediaRecorder writes it; a
    flat grey per second."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rec.webm"
        with av.open(str(path), "w", format="webm", options={"live": "1"}) as out:
            v = out.add_stream("libvpx", rate=FPS)
            v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
            v.codec_context.gop_size = FPS
            v.options = {"deadline": "realtime", "cpu-used": "8"}
            a = out.add_stream("libopus", rate=48000)
            a.layout = "mono"
            for i in range(seconds * FPS):
                img = np.full((120, 160, 3), level(i // FPS), np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                for p in v.encode(frame):
                    out.mux(p)
            for t in range(0, 48000 * seconds, 960):
                af = av.AudioFrame.from_ndarray(
                    np.zeros((1, 960), np.float32), format="flt", layout="mono"
                )
                af.sample_rate, af.pts = 48000, t
                for p in a.encode(af):
                    out.mux(p)
            for p in v.encode():
                out.mux(p)
            for p in a.encode():
                out.mux(p)
        return path.read_bytes()


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["exam"]["questions"] = [
        {"text": "QUESTION-ONE 请谈谈你对本岗位的认识。", "points": 10},
        {"text": "QUESTION-TWO 第二题", "points": 20},
    ]
    doc["staff"] = [
        {"username": "rev", "password": "pw-rev", "roles": ["reviewer"]},
        {"username": "rev2", "password": "pw-rev2", "roles": ["reviewer"]},
        {"username": "exm", "password": "pw-exm", "roles": ["examiner"]},
        {"username": "exm2", "password": "pw-exm2", "roles": ["examiner"]},
        {"username": "adm", "password": "pw-adm", "roles": ["admin"]},
    ]
    return import_exam(app_ctx, tmp_path / "exam", doc)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff(http: httpx.Client, username: str) -> dict[str, str]:
    r = http.post("/api/v1/staff/login", json={"username": username, "password": f"pw-{username}"})
    r.raise_for_status()
    return bearer(r.json()["token"])


def upload(http: httpx.Client, token: str, kind: str, data: bytes) -> str:
    """One recording in three chunks cut at arbitrary bytes (only chunk 0 has the header)."""
    r = http.post(
        "/api/v1/recordings",
        json={"kind": kind, "mime": "video/webm;codecs=vp8,opus"},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text
    rec = str(r.json()["recording_id"])
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for seq in range(3):
        part = data[cuts[seq] : cuts[seq + 1]]
        r = http.put(
            f"/api/v1/recordings/{rec}/chunks/{seq}",
            content=part,
            headers={**bearer(token), "X-Chunk-SHA256": hashlib.sha256(part).hexdigest()},
        )
        assert r.status_code == 201, r.text
    r = http.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 3, "sha256": hashlib.sha256(data).hexdigest()},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    return rec


@pytest.fixture
def seeded(live: Live) -> Iterator[dict[str, Any]]:
    """A finished candidate: webcam (two recordings: a reconnect leaves a gap), screen and
    evidence, a face_mismatch flag at T+5 s and a focus_lost at T+13 s."""
    ctx, clock = live.ctx, live.clock
    at = lambda s: T + timedelta(seconds=s)  # noqa: E731
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, attempt = enter(http, live)  # the lot closes at T−10 min, entry opens then
        with transaction(ctx.db) as session:
            phone = sessions.issue(session, ctx, "phone", clock.now(), attempt_id=attempt).token

        recs: dict[str, list[str]] = {"webcam": [], "screen": [], "evidence": []}
        starts: dict[str, datetime] = {}
        for second, kind, tok in [
            (0, "webcam", token),
            (1, "screen", token),
            (2, "evidence", phone),
        ]:
            clock.set(at(second))
            recs[kind].append(upload(http, tok, kind, webm()))
        clock.set(at(2.5))
        r = http.post(
            "/api/v1/snapshots",
            data={"kind": "webcam"},
            files={"image": ("s.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")},
            headers=bearer(token),
        )
        assert r.status_code == 201, r.text
        snapshot_id = r.json()["snapshot_id"]
        with transaction(ctx.db) as session:
            flag = events.append(
                session,
                attempt,
                "face_mismatch",
                at=at(5),
                actor="analysis",
                data={"confidence": 0.91, "distance": 0.71},
            )
            flag_seq, flag_at = flag.seq, flag.at
        clock.set(at(10))  # the webcam reconnects after a gap of four seconds
        recs["webcam"].append(upload(http, token, "webcam", webm()))
        with transaction(ctx.db) as session:
            focus = events.append(
                session,
                attempt,
                "focus_lost",
                at=at(13),
                actor="candidate",
                data={"client_at": "x"},
            )
            focus_seq, focus_at = focus.seq, focus.at
        clock.set(at(17))
        assert http.post("/api/v1/candidate/finish", headers=bearer(token)).status_code == 200
        # The assembly jobs remux each recording so it has a duration and seeks.
        run_due_jobs(ctx.job_context())
        # On a loaded machine a request can take seconds, so the server's clock reading at
        # each creation drifts from the planned second: pin the start times (what the
        # players place recordings by) to the plan.
        planned = {
            recs["webcam"][0]: at(0),
            recs["screen"][0]: at(1),
            recs["evidence"][0]: at(2),
            recs["webcam"][1]: at(10),
        }
        snapshot_at = at(2.5)
        with transaction(ctx.db) as session:
            for rid, start in planned.items():
                rec = session.get(Recording, rid)
                assert rec is not None and rec.duration_s and rec.media_key, rid
                rec.created_at = start
                starts[rid] = start
            snap = session.get(Snapshot, snapshot_id)
            assert snap is not None
            snap.taken_at = snapshot_at
        yield {
            "attempt": attempt,
            "recs": recs,
            "starts": starts,
            "flag": (flag_seq, flag_at),
            "focus": (focus_seq, focus_at),
            "snapshot_at": snapshot_at,
        }


def shot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(f"pw-{username}")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("button", name="退出")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="退出").click()
    expect(page.get_by_label("用户名")).to_be_visible()


def players(page: Page) -> dict[str, dict[str, Any]]:
    return {p["kind"]: p for p in page.evaluate("window.__review.state()")}


def shown_level(page: Page, recording_id: str) -> float:
    """The mean grey of the frame a player shows (drawn to a canvas)."""
    value: float = page.evaluate(
        """id => {
            const v = document.querySelector(`video[data-recording="${id}"]`);
            const c = document.createElement('canvas');
            c.width = 16; c.height = 12;
            const g = c.getContext('2d');
            g.drawImage(v, 0, 0, 16, 12);
            const d = g.getImageData(0, 0, 16, 12).data;
            let s = 0;
            for (let i = 0; i < d.length; i += 4) s += d[i];
            return s / (d.length / 4);
        }""",
        recording_id,
    )
    return value


def wait_positioned(page: Page) -> None:
    """Every visible player has its frame at the clock's position (seeked, data ready)."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('video')].filter(v => !v.hidden)
                 .every(v => v.readyState >= 2 && !v.seeking)"""
    )


def test_review_rule_confirm_score_publish_lookup(
    page: Page, live: Live, seeded: dict[str, Any], screens: Path | None
) -> None:
    attempt, recs, starts = seeded["attempt"], seeded["recs"], seeded["starts"]
    flag_seq, flag_at = seeded["flag"]
    focus_seq, focus_at = seeded["focus"]

    # --- reviewer: triage, the flagged candidate first -------------------------------------------
    sign_in(page, f"{live.url}/review/", "rev")
    page.get_by_role("link", name="测试考试").click()
    rows = page.locator("#triage tbody tr")
    expect(rows.first).to_contain_text(TICKET)
    expect(rows.first).to_contain_text("人脸不符")
    expect(rows).to_have_count(3)
    shot(page, screens, "review-1-triage")
    page.get_by_label("只看有疑似违纪的").check()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").click()
    expect(page.locator("#events li")).not_to_have_count(0)
    page.wait_for_function("window.__review && window.__review.state().length === 3")
    # Before play: the streams start a second apart, and the page opens where all three show
    # their recording (never 无录像 for a stream that has one).
    wait_positioned(page)
    expect(page.locator(".player .gap:visible")).to_have_count(0)
    assert all(not p["gap"] for p in players(page).values())

    # --- jump from the flagged event: every player to (event time − its recording's start) --------
    page.locator(f'#events li[data-seq="{flag_seq}"] button').click()
    wait_positioned(page)
    state = players(page)
    for kind in ("webcam", "screen", "evidence"):
        p = state[kind]
        assert p["recording_id"] == recs[kind][0], (kind, p)
        want = (flag_at - starts[p["recording_id"]]).total_seconds()
        assert abs(p["current_time"] - want) <= 0.3, (kind, p["current_time"], want)
        # The frame on screen is the one of that second of the recording.
        second, frac = divmod(p["current_time"], 1)
        near = {int(second)} | ({int(second) - 1} if frac < 0.1 else set())
        shown = shown_level(page, p["recording_id"])
        assert min(abs(shown - level(n)) for n in near) < 12, (kind, shown, p["current_time"])
    # The three tiles end level, each caption at the bottom of its own tile (the narrower phone
    # tile's picture fills the row's height instead of leaving a band under its caption).
    tiles = page.locator(".player").evaluate_all(
        "els => els.map(e => [e.getBoundingClientRect().bottom,"
        " e.querySelector('figcaption').getBoundingClientRect().bottom])"
    )
    assert len(tiles) == 3 and all(abs(tile - caption) < 1.5 for tile, caption in tiles), tiles
    shot(page, screens, "review-2-candidate")

    # The focus loss falls in the webcam's second recording and after screen and phone ended.
    page.locator(f'#events li[data-seq="{focus_seq}"] button').click()
    wait_positioned(page)
    state = players(page)
    webcam = state["webcam"]
    assert webcam["recording_id"] == recs["webcam"][1]
    want = (focus_at - starts[recs["webcam"][1]]).total_seconds()
    assert abs(webcam["current_time"] - want) <= 0.3
    assert state["screen"]["gap"] and state["evidence"]["gap"]
    expect(page.locator('.player[data-kind="screen"] .gap')).to_have_text("无录像")
    expect(page.locator('.player[data-kind="webcam"] .gap')).to_be_hidden()

    # The snapshot nearest the flag is its evidence; the gallery jumps to its moment.
    card = page.locator(f'.flag-card[data-seq="{flag_seq}"]')
    expect(card.locator("img")).to_have_attribute("src", re.compile("^blob:"))
    page.get_by_role("tab", name="截图").click()
    gallery = page.locator(".gallery figure")
    expect(gallery).to_have_count(1)
    expect(gallery.locator("img")).to_have_attribute("src", re.compile("^blob:"))

    def from_snapshot() -> float:
        gallery.get_by_role("button").click()
        wait_positioned(page)
        webcam = players(page)["webcam"]
        want = (seeded["snapshot_at"] - starts[recs["webcam"][0]]).total_seconds()
        assert webcam["recording_id"] == recs["webcam"][0], (webcam, want)
        assert abs(webcam["current_time"] - want) < 0.3, (webcam, want)
        return float(webcam["current_time"])

    # Playing moves all players together on one clock.
    before = from_snapshot()
    page.get_by_role("button", name="播放").click()
    page.wait_for_timeout(1000)
    # Read while playing (pausing re-seeks every player to the clock, hiding any drift).
    playing = page.evaluate(
        "[...document.querySelectorAll('video')].filter(v => !v.hidden && !v.paused).length"
    )
    state = [p for p in players(page).values() if not p["gap"]]
    page.get_by_role("button", name="暂停").click()
    assert playing == 3
    assert len(state) == 3, state
    offsets = [starts[p["recording_id"]] + timedelta(seconds=p["current_time"]) for p in state]
    assert max(offsets) - min(offsets) < timedelta(seconds=0.3), offsets
    assert state[0]["current_time"] > before + 0.5

    # Speed applies to every player: 2× plays twice the recording in the same time. The wall
    # time includes the clicks' latency, which a loaded machine stretches (a pause that took
    # 0.7 s to arrive once made 2.8 s of recording out of a 0.7 s wait): the rate is judged
    # against the whole span, and 1× could not pass (it never moves faster than the clock).
    page.get_by_label("倍速").select_option("2")
    before = from_snapshot()
    started = time.monotonic()
    page.get_by_role("button", name="播放").click()
    page.wait_for_timeout(700)
    page.get_by_role("button", name="暂停").click()
    elapsed = time.monotonic() - started
    moved = players(page)["webcam"]["current_time"] - before
    assert moved > 1.1 and 1.0 < moved / elapsed < 2.6, (moved, elapsed)
    rates = page.evaluate(
        "[...document.querySelectorAll('video')].filter(v => !v.hidden).map(v => v.playbackRate)"
    )
    assert rates == [2.0] * 3, rates
    page.get_by_label("倍速").select_option("1")
    page.get_by_role("tab", name="裁定").click()

    # --- rulings: the flag, then the candidate's verdict (needs a second reviewer) ---------------
    card = page.locator(f'.flag-card[data-seq="{flag_seq}"]')
    card.get_by_label("违纪", exact=True).check()
    card.get_by_label("违纪规则").fill("考场规则第5条")
    card.get_by_label("理由").fill("录像中答题者与报名照片不是同一人")
    card.get_by_role("button", name="提交裁定").click()
    expect(page.locator(f'.flag-card[data-seq="{flag_seq}"] .note')).to_contain_text(
        "考场规则第5条"
    )
    verdict = page.locator("#verdict")
    verdict.get_by_label("违纪", exact=True).check()
    verdict.get_by_label("违纪规则").fill("考场规则第5条")
    verdict.get_by_label("裁定理由").fill("替考")
    verdict.get_by_role("button", name="提交最终裁定").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(verdict).to_contain_text("需要另一名评审员复核确认")
    expect(page.locator("#verdict-badge")).to_contain_text("待复核")
    shot(page, screens, "review-3-ruling")
    sign_out(page)

    sign_in(page, f"{live.url}/review/#attempt/{attempt}", "rev2")
    verdict = page.locator("#verdict")
    verdict.get_by_label("复核理由").fill("复看录像，同意")
    verdict.get_by_role("button", name="确认违纪").click()
    expect(verdict).to_contain_text("复核确认：rev2")
    expect(page.locator("#verdict-badge")).to_have_text("违纪（考场规则第5条）")
    # One reviewer alone cannot overturn it: the change waits for a second reviewer.
    verdict.get_by_text("修改最终裁定").click()
    verdict.get_by_label("不违纪").check()
    verdict.get_by_label("裁定理由").fill("重新看录像后认为不构成违纪")
    verdict.get_by_role("button", name="提交最终裁定").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    pending = page.locator("#pending-verdict")
    expect(pending).to_contain_text("待复核的更改：不违纪")
    expect(pending).to_contain_text("更改已确认的裁定需要另一名评审员复核确认")
    expect(page.locator("#verdict-badge")).to_have_text("违纪（考场规则第5条）")
    # The English switch re-renders the page in place; back to Chinese for the rest.
    page.get_by_role("button", name="English").click()
    expect(page.locator("#verdict")).to_contain_text("Final ruling")
    expect(page.locator('.player[data-kind="screen"] figcaption')).to_have_text("Screen")
    page.get_by_role("button", name="中文").click()
    expect(page.locator("#verdict")).to_contain_text("最终裁定")
    sign_out(page)

    # --- examiner: blind scoring by lot number ----------------------------------------------------
    with httpx.Client(base_url=live.url, timeout=30) as http:
        other = staff(http, "exm2")
        sheets = http.get(f"/api/v1/scoring/exams/{live.exam_id}/sheets", headers=other).json()[
            "sheets"
        ]
        r = http.post(
            f"/api/v1/scoring/sheets/{sheets[0]['sheet_id']}/scores",
            json={"scores": [6, 14]},
            headers=other,
        )
        assert r.status_code == 201, r.text
    sign_in(page, f"{live.url}/review/", "exm")
    # The list of exams says how far this examiner is (the other examiner's score is theirs).
    progress = page.locator("#scoring-exams tr", has_text="测试考试").locator(".progress")
    expect(progress).to_have_text(f"已评 0 / {len(sheets)}")
    page.get_by_role("link", name="测试考试").click()
    lot = sheets[0]["lot"]
    page.get_by_role("link", name=f"{lot} 号").click()
    expect(page.locator("#lot-title")).to_have_text(f"{lot} 号考生")
    page.wait_for_function(
        "document.querySelector('video') && document.querySelector('video').readyState >= 1"
    )
    text = page.inner_text("body")
    for secret in (NAME, TICKET, "第1考场", "R01", attempt):
        assert secret not in text, secret
    assert page.locator("img").count() == 0  # no enrolment photo
    expect(page.locator(".score-card table")).to_have_count(0)  # no one else's scores yet
    # Out of range: the page says so in Chinese (not the browser's bubble) and nothing is sent.
    page.get_by_label("第 1 题得分").fill("11")
    page.get_by_label("第 2 题得分").fill("16")
    page.get_by_role("button", name="提交评分").click()
    expect(page.locator(".score-form [role=status]")).to_have_text(
        "第 1 题的分数应在 0 到 10 之间。"
    )
    expect(page.get_by_label("第 1 题得分")).to_be_focused()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_label("第 1 题得分").fill("8")
    page.get_by_label("第 2 题得分").fill("16")
    page.get_by_role("button", name="提交评分").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    table = page.locator(".score-card table")
    expect(table).to_contain_text("我的评分")
    expect(table.locator("tr.total")).to_contain_text("24")
    expect(table.locator("tr.total")).to_contain_text("20")  # the other examiner's, now shown
    page.goto(f"{live.url}/review/#scoring")
    expect(progress).to_have_text(f"已评 1 / {len(sheets)}")
    shot(page, screens, "review-4a-scoring-exams")
    sign_out(page)

    # --- admin publishes ---------------------------------------------------------------------------
    sign_in(page, f"{live.url}/admin/", "adm")
    page.get_by_role("link", name="测试考试").click()
    row = page.locator(f'#results tr[data-ticket="{TICKET}"]')
    expect(row.locator(".score")).to_have_text("22")
    expect(row.locator(".short-note")).to_have_count(0)  # two examiners: the rule's minimum
    expect(row).to_contain_text("违纪（考场规则第5条）")
    expect(page.locator("#exports a")).to_have_count(8)
    with page.expect_download() as dl:
        page.get_by_role("link", name="导出成绩（CSV）").click()
    csv = Path(dl.value.path()).read_bytes()
    assert csv.startswith(b"\xef\xbb\xbf") and TICKET.encode() in csv
    shot(page, screens, "admin-1-results")
    page.get_by_role("button", name="发布成绩").click()
    page.get_by_role("dialog").get_by_role("button", name="取消").click()
    expect(page.get_by_role("button", name="发布成绩")).to_be_visible()
    page.get_by_role("button", name="发布成绩").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator("#published")).to_contain_text("已发布")
    shot(page, screens, "admin-2-published")

    # --- the candidate looks up the score ------------------------------------------------------------
    results = page.context.new_page()
    results.goto(f"{live.url}/results/?exam={live.exam_id}")
    results.get_by_label("准考证号").fill(TICKET)
    results.get_by_label("姓名").fill("拜登")
    results.get_by_role("button", name="查询").click()
    expect(results.locator("#result")).to_contain_text("准考证号或姓名不正确")
    results.get_by_label("姓名").fill(NAME)
    results.get_by_role("button", name="查询").click()
    expect(results.locator("#score")).to_have_text("22")
    shot(results, screens, "results-1-score")
    results.close()


def test_results_page_before_publication(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/results/?exam={live.exam_id}")
    page.get_by_label("准考证号").fill(TICKET)
    page.get_by_label("姓名").fill(NAME)
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#result")).to_contain_text("成绩尚未发布")
    page.get_by_role("button", name="English").click()
    expect(page.locator("#result")).to_contain_text("not published")


def test_examiner_during_the_exam_sees_the_exam_named_and_when_candidates_come(
    page: Page, live: Live
) -> None:
    """Nobody has handed in yet: the scoring page names the exam and says when candidates
    appear, rather than an empty table alone."""
    sign_in(page, f"{live.url}/review/", "exm")
    progress = page.locator("#scoring-exams tr", has_text="测试考试").locator(".progress")
    expect(progress).to_have_text("暂无交卷考生")
    page.get_by_role("link", name="测试考试").click()
    expect(page.get_by_role("heading", level=2)).to_have_text("评分 · 测试考试")
    expect(page.locator("#no-sheets")).to_contain_text("考生交卷或考试时间结束后")
    expect(page.locator("#sheets tbody tr")).to_have_count(0)
    page.get_by_role("button", name="English").click()
    expect(page.locator("#no-sheets")).to_contain_text("once they hand in or time is up")


def test_admin_publish_with_missing_scores_needs_force(page: Page, live: Live) -> None:
    """Nobody has scored the candidate who entered: 发布成绩 names the lot and asks again
    before publishing anyway; 取消 leaves it unpublished."""
    with httpx.Client(base_url=live.url, timeout=30) as http:
        live.clock.set(T - timedelta(minutes=12))
        r = http.post(
            "/api/v1/candidate/login",
            data={"exam_id": live.exam_id, "ticket": TICKET},
            files={"face": ("face.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        lot = http.post("/api/v1/candidate/lot", headers=bearer(token)).json()["number"]
        state = http.get("/api/v1/candidate/state", headers=bearer(token)).json()
        for a in state["attachments"]:
            http.post(f"/api/v1/candidate/attachments/{a['id']}/read", headers=bearer(token))
        live.clock.set(T - timedelta(minutes=9))
        assert http.post("/api/v1/candidate/enter", headers=bearer(token)).status_code == 200
        live.clock.set(T + timedelta(minutes=2))
        r = http.post(
            "/api/v1/candidate/events", json={"kind": "focus_lost"}, headers=bearer(token)
        )
        assert r.status_code == 201, r.text
    live.clock.set(T + timedelta(minutes=30))
    sign_in(page, f"{live.url}/admin/", "adm")
    expect(page.locator("#exams tbody tr")).to_have_count(1)
    page.get_by_role("link", name="测试考试").click()
    # Nobody scored the one who entered: the table says the score is not final yet.
    row = page.locator(f'#results tr[data-ticket="{TICKET}"]')
    expect(row.locator(".short-note")).to_have_text("（未满 2 位，成绩暂定）")
    expect(page.locator("#results tr.absent .short-note")).to_have_count(0)
    page.get_by_role("button", name="发布成绩").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    status = page.locator("#publish-status")
    expect(status).to_contain_text(f"{lot} 号")
    # The focus loss nobody ruled on: how many, and publishing needs 强制发布.
    expect(status.locator("#unruled-count")).to_contain_text("未裁定：1 名考生")
    expect(status).to_contain_text("1 名考生的疑似违纪尚未裁定")
    status.get_by_role("button", name="强制发布").click()
    page.get_by_role("dialog").get_by_role("button", name="取消").click()
    expect(page.locator("#published")).to_have_count(0)
    status.get_by_role("button", name="强制发布").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator("#published")).to_contain_text("已发布")
    # Rulings are frozen now; an audited re-open (with a reason) withdraws the publication.
    page.get_by_text("重新开放审核…").click()
    page.get_by_label("重新开放审核的理由").fill("考生申诉，复核违纪认定")
    page.get_by_role("button", name="重新开放审核").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator("#publish-status")).to_contain_text("已重新开放审核")
    expect(page.get_by_role("button", name="发布成绩")).to_be_visible()
    page.get_by_role("button", name="发布成绩").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    page.locator("#force-publish").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator("#published")).to_contain_text("已发布")
    # An examiner can no longer score once published.
    sign_out(page)
    sign_in(page, f"{live.url}/review/", "exm")
    page.get_by_role("link", name="测试考试").click()
    page.get_by_role("link", name=f"{lot} 号").click()
    page.get_by_label("第 1 题得分").fill("5")
    page.get_by_label("第 2 题得分").fill("5")
    page.get_by_role("button", name="提交评分").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator(".score-form [role=status]")).not_to_be_empty()


def enter(http: httpx.Client, live: Live) -> tuple[str, str]:
    """TICKET logs in at T−12 min, draws a lot, reads the attachments and enters at T−9 min;
    (token, attempt id)."""
    live.clock.set(T - timedelta(minutes=12))
    r = http.post(
        "/api/v1/candidate/login",
        data={"exam_id": live.exam_id, "ticket": TICKET},
        files={"face": ("face.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    token, attempt = r.json()["token"], r.json()["attempt_id"]
    flow.enter_by_api(http, bearer(token), live, T - timedelta(minutes=9))
    return token, attempt


@pytest.fixture
def answered(live: Live) -> dict[str, Any]:
    """A finished candidate whose webcam recording runs from T−5 s to T+20 s, with keyword
    answer markers at T+6 s and T+12 s and a pause-fallback marker at T+9 s (ignored, since
    the keyword ones exist)."""
    ctx, clock = live.ctx, live.clock
    at = lambda s: T + timedelta(seconds=s)  # noqa: E731
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, attempt = enter(http, live)
        clock.set(at(-5))
        rec = upload(http, token, "webcam", webm(25))
        clock.set(at(20))
        assert http.post("/api/v1/candidate/finish", headers=bearer(token)).status_code == 200
        run_due_jobs(ctx.job_context())
        with transaction(ctx.db) as session:
            recording = session.get(Recording, rec)
            assert recording is not None and recording.media_key, rec
            recording.created_at = at(-5)  # the plan, whatever a slow request took
            for second, method, question in (
                (6, "keyword", 1),
                (9, "pause", 1),
                (12, "keyword", 2),
            ):
                events.append(
                    session,
                    attempt,
                    "answer_end",
                    at=at(second),
                    actor="analysis",
                    data={"source": "audio", "method": method, "question": question},
                )
    clock.set(T + timedelta(hours=1))
    return {"attempt": attempt, "recording": rec}


def webcam_time(page: Page) -> float:
    wait_positioned(page)
    return float(players(page)["webcam"]["current_time"])


def test_examiner_player_seeks_and_jumps(
    page: Page, live: Live, answered: dict[str, Any], screens: Path | None
) -> None:
    sign_in(page, f"{live.url}/review/", "exm")
    page.get_by_role("link", name="测试考试").click()
    page.get_by_role("link", name=re.compile(r"^\d+ 号$")).click()
    page.wait_for_function(
        "document.querySelector('video') && document.querySelector('video').readyState >= 1"
    )
    # 开始答题: the question release, T − the recording's start (T−5 s) = 5 s in.
    page.get_by_role("button", name="开始答题").click()
    assert abs(webcam_time(page) - 5) <= 0.5
    # 第1题 starts at T, 第2题 where the first keyword marker ended answer 1 (T+6 s).
    jumps = page.locator("#jumps button")
    expect(jumps).to_have_text(["开始答题", "第1题", "第2题"])
    page.get_by_role("button", name="第2题").click()
    assert abs(webcam_time(page) - 11) <= 0.5
    page.get_by_role("button", name="第1题").click()
    assert abs(webcam_time(page) - 5) <= 0.5
    # Each answer's end is marked on the seek bar where it falls (T+6 s, T+12 s of 25 s).
    ends = page.locator(".seek-marks .mark.answer-end")
    expect(ends).to_have_count(2)
    assert [ends.nth(i).get_attribute("title") for i in range(2)] == ["第1题结束", "第2题结束"]
    bar = page.locator(".seek-bar")
    box = bar.bounding_box()
    assert box is not None
    for i, want in enumerate((11 / 25, 17 / 25)):
        mark = ends.nth(i).bounding_box()
        assert mark is not None
        where = (mark["x"] - box["x"] - 8) / (box["width"] - 16)
        assert abs(where - want) < 0.03, (i, where, want)

    # The seek bar spans the whole recording: drag it (as the input event does) and by keys.
    seek = page.get_by_role("slider", name="进度条")
    assert 24_900 <= int(seek.get_attribute("max") or 0) <= 25_200  # the remuxed duration
    seek.evaluate("el => { el.value = '15000'; el.dispatchEvent(new Event('input')); }")
    assert abs(webcam_time(page) - 15) <= 0.5
    seek.focus()
    page.keyboard.press("ArrowLeft")
    assert abs(webcam_time(page) - 14) <= 0.5
    page.get_by_role("button", name="+10 s").click()
    assert abs(webcam_time(page) - 24) <= 0.5
    page.get_by_role("button", name="−10 s").click()
    assert abs(webcam_time(page) - 14) <= 0.5
    expect(page.locator("#clock")).to_have_text("0:14 / 0:25")

    # Speed 0.5–2×, applied to the recording.
    speed = page.get_by_label("倍速")
    assert speed.locator("option").all_inner_texts() == [
        "0.5×",
        "0.75×",
        "1×",
        "1.25×",
        "1.5×",
        "2×",
    ]
    # Wall time includes the clicks' latency, which a loaded machine stretches: each speed is
    # checked loosely against the clock and strictly against the other speed.
    measured = {}
    for rate, low, high in (("0.5", 0.2, 0.8), ("2", 1.0, 2.6)):
        speed.select_option(rate)
        page.get_by_role("button", name="第1题").click()
        before = webcam_time(page)
        started = time.monotonic()
        page.get_by_role("button", name="播放").click()
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="暂停").click()
        elapsed = time.monotonic() - started
        moved = webcam_time(page) - before
        measured[rate] = moved / elapsed
        assert low < measured[rate] < high, (rate, moved, elapsed)
        assert page.evaluate("[...document.querySelectorAll('video')].map(v => v.playbackRate)")[
            0
        ] == float(rate)
    assert measured["2"] > 2.5 * measured["0.5"], measured  # 4× apart when nothing lags
    speed.select_option("1")

    # Still blind: no name, ticket, room, attempt or photo anywhere on the page.
    text = page.inner_text("body")
    for secret in (NAME, TICKET, "第1考场", "R01", answered["attempt"]):
        assert secret not in text, secret
    assert page.locator("img").count() == 0
    page.get_by_role("button", name="第2题").click()
    webcam_time(page)
    page.get_by_label("第 1 题得分").fill("8")
    page.get_by_label("第 2 题得分").fill("16")
    shot(page, screens, "review-4-scoring")


def test_answer_marks_prefer_keyword_then_pause_then_release_alone(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/review/")
    result = page.evaluate(
        """async () => {
            const { answerMarks } = await import('/review/player.js');
            const T = Date.parse('2030-06-01T01:00:00Z');
            const at = (s) => new Date(T + s * 1000).toISOString();
            const simple = (marks) => marks.map((a) => [a.number, (a.start - T) / 1000,
                a.end == null ? null : (a.end - T) / 1000]);
            const kw = { at: at(6), method: 'keyword' };
            const pause = { at: at(9), method: 'pause' };
            return {
                keyword: simple(answerMarks([pause, kw], T, 2)),
                pause: simple(answerMarks([pause, { at: at(15), method: 'pause' }], T, 3)),
                none: simple(answerMarks([], T, 2)),
                capped: simple(answerMarks([kw, { at: at(8), method: 'keyword' },
                    { at: at(10), method: 'keyword', extra: true }], T, 2)),
                before: simple(answerMarks([{ at: at(-3), method: 'keyword' }], T, 2)),
            };
        }"""
    )
    # Keyword markers win over pause markers; the last answer may have no end yet.
    assert result["keyword"] == [[1, 0, 6], [2, 6, None]]
    assert result["pause"] == [[1, 0, 9], [2, 9, 15], [3, 15, None]]
    assert result["none"] == []  # then 开始答题 alone
    assert result["capped"] == [[1, 0, 6], [2, 6, 8]]  # no more answers than questions
    assert result["before"] == []  # a marker before T ends no answer


def test_review_page_reads_in_chinese_in_time_order(
    page: Page, live: Live, answered: dict[str, Any]
) -> None:
    """The system log in time order (analysis appends answer markers after 交卷), no raw codes
    or JSON in zh-CN, every flag kind present in the type filter, and a candidate who never
    logged in is not 上传 完整."""
    with transaction(live.ctx.db) as session:
        for second, kind in ((3, "camera_covered"), (8, "second_person")):
            events.append(
                session,
                answered["attempt"],
                kind,
                at=T + timedelta(seconds=second),
                actor="analysis",
                data={
                    "confidence": 0.8,
                    "kind": "evidence" if kind == "second_person" else "webcam",
                },
                severity="violation",
            )
        # The marker said once more after the last of the exam's two questions.
        events.append(
            session,
            answered["attempt"],
            "answer_end",
            at=T + timedelta(seconds=18),
            actor="analysis",
            data={"source": "audio", "method": "keyword", "question": 3, "extra": True},
        )
    sign_in(page, f"{live.url}/review/", "rev")
    page.get_by_role("link", name="测试考试").click()
    expect(page.locator("#f-kind option")).to_have_count(3)
    options = page.locator("#f-kind option").all_inner_texts()
    assert options[0] == "全部类型"
    assert sorted(options[1:]) == sorted(["佐证画面出现他人", "摄像头被遮挡或过暗"]), options
    never = page.locator('#triage tbody tr:has-text("1002")')
    expect(never).to_have_count(1)
    expect(never).not_to_contain_text("完整")
    # Who entered has a real status: only the webcam was recorded, so 缺失.
    expect(page.locator(f'#triage tbody tr:has-text("{TICKET}")')).to_contain_text("缺失")
    page.get_by_label("违纪类型").select_option(label="佐证画面出现他人")
    expect(page.locator("#triage tbody tr")).to_have_count(1)
    page.locator("#triage tbody tr a").first.click()
    # The exam has no evidence camera and no phone recorded: no phone player, no 无录像 tile.
    page.wait_for_function("window.__review && window.__review.state().length === 2")
    expect(page.locator('.player[data-kind="evidence"]')).to_have_count(0)
    # Before play, the webcam (which has a recording) shows it, not 无录像.
    page.wait_for_function(
        "[...document.querySelectorAll('video')].some(v => !v.hidden && v.readyState >= 1)"
    )
    expect(page.locator('.player[data-kind="webcam"] .gap')).to_be_hidden()
    # The reviewer has the examiner's jumps too.
    expect(page.locator("#jumps button")).to_have_text(["开始答题", "第1题", "第2题"])

    times = page.locator("#events li time").evaluate_all("els => els.map(e => e.dateTime)")
    assert times == sorted(times) and len(times) > 8, times
    finished = page.locator('#events li[data-kind="finished"]')
    expect(finished).to_contain_text("考生主动交卷")
    expect(finished).not_to_contain_text("candidate")
    page.get_by_role("tab", name="答题").click()
    answers = page.locator("#panel")
    expect(answers).to_contain_text("关键词「该题回答完毕」")
    expect(answers).to_contain_text("语音停顿推断")
    assert "audio" not in answers.inner_text() and "keyword" not in answers.inner_text()
    assert "null" not in answers.inner_text()  # the questions are out: no placeholder text
    # Markers name their questions; one after the last question is not a third answer.
    marks = answers.locator(".boundaries li")
    expect(marks).to_have_count(4)
    expect(marks.nth(3)).to_contain_text("多余的结束标记（试题已答完）")
    expect(answers).not_to_contain_text("第 3 题")
    expect(marks.nth(2)).to_contain_text("第 2 题结束")
    page.get_by_role("tab", name="系统日志").click()
    log = page.locator("#panel table")
    expect(log).to_contain_text("疑似违纪")
    assert "{" not in log.inner_text() and "violation" not in log.inner_text()
    page.get_by_role("tab", name="访问记录").click()
    audit = page.locator("#panel table")
    expect(audit.locator('tr[data-action="view"]').first).to_contain_text("查看考生材料")
    expect(audit.locator('tr[data-action="recording_media"]').first).to_contain_text("观看录像")
    text = audit.inner_text()
    assert "{" not in text and "recording_media" not in text, text
    assert re.search(r"\bview\b", text) is None, text


def test_a_reviewer_during_the_exam_sees_uploads_in_progress_not_missing(
    page: Page, live: Live
) -> None:
    """While the candidate is still answering, the triage says 上传中 (not 缺失) and the
    player says the stream is being recorded (not 无录像), without asking for the media."""
    clock = live.clock
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, _ = enter(http, live)
        r = http.post(
            "/api/v1/recordings",
            json={"kind": "webcam", "mime": "video/webm;codecs=vp8,opus"},
            headers=bearer(token),
        )
        assert r.status_code == 201, r.text
        part = webm(5)
        r = http.put(
            f"/api/v1/recordings/{r.json()['recording_id']}/chunks/0",
            content=part,
            headers={**bearer(token), "X-Chunk-SHA256": hashlib.sha256(part).hexdigest()},
        )
        assert r.status_code == 201, r.text
    clock.set(T + timedelta(minutes=2))
    media: list[int] = []
    page.on("response", lambda resp: "/media" in resp.url and media.append(resp.status))
    sign_in(page, f"{live.url}/review/", "rev")
    page.get_by_role("link", name="测试考试").click()
    expect(page.locator("#triage-summary")).to_contain_text("上传不完整 0 人，上传中 1 人")
    row = page.locator(f'#triage tbody tr:has-text("{TICKET}")')
    expect(row).to_contain_text("上传中")
    expect(row).not_to_contain_text("缺失")
    row.locator("a").first.click()
    gap = page.locator('.player[data-kind="webcam"] .gap')
    expect(gap).to_have_text("录制中，结束并上传完成后可回放")
    assert media == []  # nothing asked of a recording still being made


def test_a_recording_of_a_lost_browser_plays_after_upload_close(page: Page, live: Live) -> None:
    """The candidate's browser died after two of its three webcam chunks: at upload close the
    server keeps those, and the reviewer plays them and reads in the log what happened."""
    ctx, clock = live.ctx, live.clock
    data = webm()
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, attempt = enter(http, live)
        clock.set(T)
        r = http.post(
            "/api/v1/recordings",
            json={"kind": "webcam", "mime": "video/webm;codecs=vp8,opus"},
            headers=bearer(token),
        )
        rec = str(r.json()["recording_id"])
        cut = 2 * len(data) // 3
        for seq, part in enumerate([data[: cut // 2], data[cut // 2 : cut]]):
            r = http.put(
                f"/api/v1/recordings/{rec}/chunks/{seq}",
                content=part,
                headers={**bearer(token), "X-Chunk-SHA256": hashlib.sha256(part).hexdigest()},
            )
            assert r.status_code == 201, r.text
    clock.set(T + timedelta(minutes=50))  # deadline + upload grace: the browser never came back
    run_due_jobs(ctx.job_context())  # the close-out, then its assembly
    run_due_jobs(ctx.job_context())
    with transaction(ctx.db) as session:
        closed = session.get(Recording, rec)
        assert closed is not None and closed.closed_by == "server" and closed.media_key

    sign_in(page, f"{live.url}/review/#attempt/{attempt}", "rev")
    page.wait_for_function(
        "[...document.querySelectorAll('video')].some(v => !v.hidden && v.readyState >= 2)"
    )
    expect(page.locator('.player[data-kind="webcam"] .gap')).to_be_hidden()
    assert abs(shown_level(page, rec) - level(0)) < 12  # its first second, not a black frame
    entry = page.locator('#events li[data-kind="recording_closed"]')
    expect(entry.locator(".kind")).to_have_text("录像上传截止")
    expect(entry).to_contain_text("系统保存了已收到的录像")
    expect(entry).to_contain_text("摄像头：收到 2 段，可回放的前 2 段")
    assert "null" not in entry.inner_text() and "webcam" not in entry.inner_text()
    assert page.js_errors == []


def test_examiner_without_answer_markers_is_told_why(page: Page, live: Live) -> None:
    """Beside 开始答题 the scoring page says why there are no 第N题 jumps: the audio is not
    analysed yet, then (analysed, nothing heard) that no marker was found."""
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, attempt = enter(http, live)
        live.clock.set(T - timedelta(seconds=5))
        rec = upload(http, token, "webcam", webm(10))
        live.clock.set(T + timedelta(seconds=10))
        assert http.post("/api/v1/candidate/finish", headers=bearer(token)).status_code == 200
    live.clock.set(T + timedelta(hours=1))  # no job has run: the audio waits
    sign_in(page, f"{live.url}/review/", "exm")
    page.get_by_role("link", name="测试考试").click()
    page.get_by_role("link", name=re.compile(r"^\d+ 号$")).click()
    jumps = page.locator("#jumps")
    expect(jumps).to_contain_text("音频尚未分析，请从开始答题处观看。")
    expect(jumps).not_to_contain_text("未检测到回答结束标记")
    with transaction(live.ctx.db) as session:
        events.append(
            session,
            attempt,
            "audio_summary",
            at=live.clock.now(),
            actor="analysis",
            data={"recording_id": rec, "boundaries": 0},
        )
    page.reload()
    expect(jumps).to_contain_text("未检测到回答结束标记，请从开始答题处观看。")


def test_the_timeline_marks_when_the_questions_reached_the_computer(
    page: Page, live: Live, screens: Path | None
) -> None:
    """An appeal that the questions showed late is read on the timeline: the events lane marks
    试题已送达 where the server logged it (here 8 s after T), with its name and time in the
    title as a flag's mark has them, and the mark jumps the players there."""
    ctx, clock = live.ctx, live.clock
    at = lambda s: T + timedelta(seconds=s)  # noqa: E731
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token, attempt = enter(http, live)
        clock.set(at(-5))
        rec = upload(http, token, "webcam", webm(25))
        clock.set(at(8))  # the candidate's computer fetches the questions 8 s late
        r = http.get("/api/v1/candidate/questions", headers=bearer(token))
        assert r.status_code == 200, r.text
        clock.set(at(18))
        assert http.post("/api/v1/candidate/finish", headers=bearer(token)).status_code == 200
    run_due_jobs(ctx.job_context())
    with transaction(ctx.db) as session:
        recording = session.get(Recording, rec)
        assert recording is not None and recording.duration_s and recording.media_key, rec
        recording.created_at = at(-5)  # the plan, whatever a slow request took
        # When the server logged the delivery (a slow request may have moved it off the plan),
        # and where the timeline ends: the recording's end or the finish, whichever is later.
        delivered = session.scalars(
            select(Event.at).where(Event.attempt_id == attempt, Event.kind == "questions_delivered")
        ).all()
        assert len(delivered) == 1, delivered
        attempt_row = session.get(Attempt, attempt)
        assert attempt_row is not None and attempt_row.finished_at is not None
        end = max(at(-5) + timedelta(seconds=recording.duration_s), attempt_row.finished_at)
        offset = timedelta(minutes=attempt_row.exam.utc_offset_minutes)
    delivered_at = delivered[0]
    clock.set(T + timedelta(hours=1))

    sign_in(page, f"{live.url}/review/#attempt/{attempt}", "rev")
    expect(page.locator('#events li[data-kind="questions_delivered"]')).to_contain_text(
        "试题已送达"
    )
    lane = page.locator(".timeline-bar .lane.marks")
    expect(lane.locator(".lane-label")).to_have_text("事件")
    mark = lane.locator(".mark.delivered")
    expect(mark).to_have_count(1)
    # Named and timed as the desk showed the time: in the exam's zone (09:00:08 in Beijing).
    expect(mark).to_have_attribute("title", f"试题已送达 {delivered_at + offset:%H:%M:%S}")
    expect(mark).to_be_visible()
    shot(page, screens, "review-2b-questions-delivered")

    # Where it falls along the lane: 13 s into a timeline from T−5 s to about T+20 s.
    track = lane.locator(".lane-track").bounding_box()
    box = mark.bounding_box()
    assert track is not None and box is not None
    where = (box["x"] + box["width"] / 2 - track["x"]) / track["width"]
    want = (delivered_at - at(-5)) / (end - at(-5))
    assert abs(where - want) < 0.02, (where, want)

    # A click jumps the webcam to that moment of its recording.
    mark.click()
    assert abs(webcam_time(page) - (delivered_at - at(-5)).total_seconds()) <= 0.5
    assert page.js_errors == []
