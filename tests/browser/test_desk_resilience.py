"""Nothing recorded is lost: a 20 s network cut and a page reload in the middle of answering."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from conftest import T
from playwright.sync_api import Page, expect
from sqlalchemy import update

from invigil.attempts.models import AuthSession
from invigil.core.db import transaction

from . import flow
from .conftest import Live


def test_offline_and_reload_lose_no_chunk(page: Page, live: Live, screens: Path | None) -> None:
    flow.up_to_answering(page, live)
    flow.wait_recording(page, chunks=2)
    context = page.context

    # 1. The network goes away for 20 s: recording goes on, the backlog is shown, then uploads.
    context.set_offline(True)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("网络已断开")
    page.wait_for_timeout(20000)
    expect(banner).to_contain_text("待上传")
    flow.shot(page, screens, "8d-offline")
    backlog = page.evaluate("window.__invigil.S.engine.backlog().chunks")
    assert backlog >= 10, backlog  # two streams, 2 s chunks
    context.set_offline(False)
    page.wait_for_function("window.__invigil.S.engine.backlog().chunks <= 2", timeout=30000)

    # 2. Uploads fail (not the page) and the page is reloaded: what IndexedDB held from before
    #    the reload uploads afterwards.
    context.route("**/api/v1/recordings/*/chunks/*", lambda route: route.abort())
    page.wait_for_function("window.__invigil.S.engine.backlog().chunks >= 4", timeout=20000)
    page.reload()
    expect(page.get_by_text("之前的录像已保存在本机，正在自动补传")).to_be_visible()
    page.get_by_role("button", name="共享整个屏幕").click()
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE")
    leftovers = page.evaluate(
        "window.__invigil.uploads().filter(r => r.interrupted).reduce((n, r) => n + r.pending, 0)"
    )
    assert leftovers >= 2, leftovers
    context.unroute("**/api/v1/recordings/*/chunks/*")
    flow.wait_recording(page, chunks=2)
    # 3. The deadline comes: the page stops, uploads and finalizes by itself.
    live.clock.set(T + timedelta(minutes=20))
    expect(page.get_by_text("交卷完成")).to_be_visible(timeout=60000)

    log = flow.chunk_log(page)
    held = flow.server_chunks(live)
    missing = [c for c in log if held.get((c["recordingId"], c["seq"])) != c["sha256"]]
    assert not missing, missing
    recs = flow.server_recordings(live)
    assert [r.kind for r in recs].count("webcam") == 2  # before and after the reload
    assert [r.kind for r in recs].count("screen") == 2
    assert all(r.state == "finalized" for r in recs)
    made = {r.id: sum(1 for c in log if c["recordingId"] == r.id) for r in recs}
    assert all(made[r.id] == r.chunk_count for r in recs), (made, [r.chunk_count for r in recs])


def test_session_lost_mid_answer_login_again_and_carry_on(page: Page, live: Live) -> None:
    """The server drops the session (expired, revoked): the page asks for the face login again
    while recording goes on, then returns to the questions; nothing recorded is lost."""
    flow.up_to_answering(page, live)
    flow.wait_recording(page, chunks=2)
    with transaction(live.ctx.db) as session:
        session.execute(
            update(AuthSession)
            .where(AuthSession.kind == "candidate")
            .values(revoked_at=live.clock.now(), revoked_reason="expired")
        )
    expect(page.locator("#login-message")).to_contain_text("登录已失效", timeout=15000)
    produced = page.evaluate("window.__invigil.uploads().reduce((n, r) => n + r.produced, 0)")
    page.wait_for_function(
        "n => window.__invigil.uploads().reduce((m, r) => m + r.produced, 0) >= n + 2",
        arg=produced,
    )  # still recording while logged out
    flow.login(page)
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE")
    flow.finish(page)
    log = flow.chunk_log(page)
    held = flow.server_chunks(live)
    assert not [c for c in log if held.get((c["recordingId"], c["seq"])) != c["sha256"]]
    recs = flow.server_recordings(live)
    assert sorted(r.kind for r in recs) == ["screen", "webcam"]  # the same recordings went on
    assert all(r.state == "finalized" for r in recs)


def test_a_recording_left_on_a_lost_computer_is_named_at_hand_in(
    page: Page, live: Live, screens: Path | None
) -> None:
    """The candidate's first computer died mid-answer with recordings it never finished; they go
    on without what it held (here: its stored chunks wiped). The page does not claim to upload
    what it does not have, and its hand-in page names the recordings it cannot finish and says
    what happens to them, instead of waiting for them for ever."""
    flow.up_to_answering(page, live)
    flow.wait_recording(page, chunks=2)
    first = {r.id for r in flow.server_recordings(live)}
    page.goto(f"{live.url}/api/v1/health")  # same origin, no page holding the database
    page.evaluate(
        """async () => {
            for (const db of await indexedDB.databases()) {
                await new Promise((done) => {
                    const r = indexedDB.deleteDatabase(db.name);
                    r.onsuccess = r.onerror = r.onblocked = done;
                });
            }
        }"""
    )
    page.goto(live.desk())
    expect(page.get_by_text("考试录像需要重新开始")).to_be_visible(timeout=20000)
    expect(page.get_by_text("之前的录像已保存在本机")).to_have_count(0)
    page.get_by_role("button", name="共享整个屏幕").click()
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE")
    flow.wait_recording(page, chunks=2)

    page.get_by_role("button", name="结束考试").click()
    page.get_by_role("dialog").get_by_role("button", name="确定").click()
    rows = page.locator(".upload-row[data-elsewhere]")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("（之前登录时）")
    expect(rows.first).to_contain_text("服务器已收到")
    verdict = page.locator("#upload-verdict")
    expect(verdict).to_contain_text("本机的录像已全部上传", timeout=60000)
    expect(verdict).to_contain_text("上传截止")
    expect(page.get_by_text("交卷完成")).to_have_count(0)
    flow.shot(page, screens, "9-finish-earlier-login")
    recs = flow.server_recordings(live)
    assert all(r.state == "open" for r in recs if r.id in first)  # the server's, at upload close
    assert all(r.state == "finalized" for r in recs if r.id not in first)
