"""The phone and the desk through a short exam that requires the evidence camera.

Two Chromium processes, each with its own camera file: the desk (a face) and the phone (a
room). The phone binds with the code the desk shows, sweeps, and while it is being placed its
picture appears on the desk, where the candidate confirms it; the phone hears the answer. It
records through the exam (with a reload of the phone mid-exam, which becomes a gap of the right
length), the desk submits, the phone stops and reports 上传完成."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from conftest import T, exam_doc, import_exam
from playwright.sync_api import Page, expect
from sqlalchemy import select

from invigil.attempts.models import Event
from invigil.core.context import AppContext
from invigil.core.db import transaction

from . import flow
from .conftest import Live
from .test_phone import gap_events, shot, turn


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    doc = exam_doc()
    doc["exam"]["rules"] = {"evidence_camera": "required", "liveness": "off"}
    return import_exam(app_ctx, tmp_path / "exam", doc)


def events_of(live: Live, kind: str) -> list[dict[str, Any]]:
    with transaction(live.ctx.db) as session:
        rows = session.scalars(select(Event).where(Event.kind == kind).order_by(Event.seq))
        return [{"actor": e.actor, **e.data} for e in rows]


def test_phone_records_through_a_short_exam_with_the_desk(
    page: Page, phone: Page, live: Live, screens: Path | None
) -> None:
    flow.device_check(page, live)
    flow.login(page)
    code = page.locator("#binding-code strong")
    expect(code).to_have_text(re.compile(r"^\d{8}$"))
    expect(page.locator("#placement")).to_be_hidden()

    phone.goto(f"{live.url}/m/")
    phone.get_by_label("绑定码").fill(code.inner_text())
    phone.get_by_role("button", name="绑定", exact=True).click()
    phone.get_by_role("button", name="开始环拍").click()
    phone.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
    turn(phone, 360)  # the sweep still films its minimum time before it completes
    start = phone.get_by_role("button", name="开始录制")
    expect(start).to_be_visible()
    expect(phone.locator("#placement-state")).to_contain_text("等待考生在电脑上确认机位")

    # The desk shows the phone's picture; the candidate first asks for another placement,
    # then confirms. The phone shows each answer.
    panel = page.locator("#placement")
    expect(panel).to_be_visible(timeout=15000)
    page.wait_for_function("document.querySelector('#phone-picture').naturalWidth > 0")
    expect(page.locator("#phone-status")).to_contain_text("正在摆放机位：请确认手机拍到的画面")
    page.get_by_role("button", name="重新摆放").click()
    expect(phone.locator("#placement-state")).to_contain_text("重新摆放", timeout=10000)
    page.get_by_role("button", name="机位合适").click()
    expect(page.locator("#placement-state")).to_contain_text("您已确认机位")
    expect(phone.locator("#placement-state")).to_have_attribute("data-state", "confirmed")
    flow.shot(page, screens, "3b-phone-placement")
    shot(phone, screens, "3b-placement-confirmed")
    placements = events_of(live, "evidence_placement")
    assert [p["ok"] for p in placements] == [False, True], placements
    assert all(p["actor"] == "candidate" and p["snapshot_id"] for p in placements)

    start.click()
    expect(phone.get_by_role("button", name="结束录制")).to_be_visible()
    # Recording: the binding step folds its QR code into a confirmation.
    expect(page.locator("#phone-connected")).to_contain_text("手机已连接并在录制", timeout=15000)
    expect(page.locator("#qr img")).to_be_hidden()
    page.get_by_role("button", name="下一步").click()
    flow.draw_lot(page)
    flow.read_attachments(page)
    # Entry opens. The jump of the server clock makes the phone look silent until its next
    # heartbeat (every 10 s), so 进入考试 waits for it.
    live.clock.set(T - timedelta(minutes=9))
    page.get_by_role("button", name="刷新", exact=True).click()
    expect(page.get_by_role("button", name="进入考试")).to_be_enabled(timeout=30000)
    flow.enter(page, live)
    flow.wait_recording(page)
    page.get_by_role("button", name="进入待考").click()
    live.clock.set(T - timedelta(seconds=2))
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)

    # The phone's page is closed mid-exam (a crash, a swipe) and opened again 6 s later: it
    # records again by itself, and the time it lost is an evidence_gap of that length.
    phone.wait_for_function(
        "window.__invigil.uploads().filter(r => r.kind === 'evidence' && !r.stopped)"
        ".some(r => r.produced >= 2)",
        timeout=20000,
    )
    phone.goto("about:blank")
    phone.wait_for_timeout(6000)
    phone.goto(f"{live.url}/m/")
    expect(phone.get_by_role("button", name="结束录制")).to_be_visible(timeout=15000)
    reload_at = time.monotonic()
    phone.wait_for_function(
        "window.__invigil.uploads().filter(r => r.kind === 'evidence' && !r.stopped)"
        ".some(r => r.produced >= 2)",
        timeout=20000,
    )
    deadline = reload_at + 15
    while not [g for g in gap_events(live) if g["reason"] == "reload"]:
        assert time.monotonic() < deadline, gap_events(live)
        time.sleep(0.3)
    (gap,) = [g for g in gap_events(live) if g["reason"] == "reload"]
    assert 6_000 <= gap["duration_ms"] <= 15_000, gap

    flow.wait_recording(page, chunks=3)
    # 结束考试 on the desk: its own uploads complete, and 交卷完成 waits for the phone's.
    page.get_by_role("button", name="结束考试").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(page.locator("[data-kind=evidence]")).to_contain_text("结束录制", timeout=30000)
    expect(page.get_by_text("交卷完成")).to_be_hidden()
    # The desk cannot know how much the phone still holds: its bar moves (indeterminate)
    # while the chunks arrive, rather than standing empty.
    phone_bar = page.locator("[data-kind=evidence] progress")
    assert phone_bar.evaluate("p => p.matches(':indeterminate')")
    phone.get_by_role("button", name="结束录制").click()
    phone.get_by_role("dialog").get_by_role("button", name="确定").click()
    expect(phone.get_by_text("上传完成", exact=True)).to_be_visible(timeout=40000)
    expect(page.get_by_text("交卷完成")).to_be_visible(timeout=30000)
    assert phone_bar.evaluate("p => !p.matches(':indeterminate') && p.value === 100")
    flow.shot(page, screens, "9b-submitted-with-phone")

    recs = flow.server_recordings(live)
    evidence = [r for r in recs if r.kind == "evidence"]
    # The sweep, the exam up to the reload, the exam after it.
    assert len(evidence) == 3 and all(r.state == "finalized" for r in evidence), [
        (r.kind, r.state, r.chunk_count, str(r.created_at)[11:19]) for r in evidence
    ]
    for r in evidence:
        media = flow.staff_get(live, f"/api/v1/recordings/{r.id}/media").content
        with av.open(io.BytesIO(media), mode="r") as container:
            assert isinstance(container, av.container.InputContainer)
            assert sum(1 for _ in container.decode(video=0)) > 5, r.id
    held = flow.server_chunks(live)
    for log in (flow.chunk_log(phone), flow.chunk_log(page)):
        missing = [c for c in log if held.get((c["recordingId"], c["seq"])) != c["sha256"]]
        assert log and not missing, missing


def test_phone_language_switch_keeps_the_screen(phone: Page, live: Live) -> None:
    phone.goto(f"{live.url}/m/")
    expect(phone.get_by_label("绑定码")).to_be_visible()
    phone.get_by_label("绑定码").fill("1234")
    phone.get_by_role("button", name="English").click()
    expect(phone.get_by_label("Binding code")).to_be_visible()
    expect(phone.locator(".brand-name")).to_have_text("Evidence phone")
    expect(phone.get_by_role("button", name="Bind", exact=True)).to_be_visible()
    assert phone.evaluate("document.documentElement.lang") == "en"
    phone.reload()  # the choice is remembered
    expect(phone.get_by_label("Binding code")).to_be_visible()
    phone.get_by_role("button", name="中文").click()
    expect(phone.get_by_label("绑定码")).to_be_visible()
    expect(phone.locator(".brand-name")).to_have_text("手机佐证摄像头")
