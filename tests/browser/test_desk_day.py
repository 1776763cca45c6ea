"""The whole exam day in the desk client, in a real browser."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from pathlib import Path

import av
from conftest import T
from playwright.sync_api import Page, expect

from . import flow
from .conftest import Live


def decoded_frames(data: bytes) -> tuple[int, int]:
    """(video frames, audio frames) PyAV decodes from a recording."""
    video = audio = 0
    with av.open(io.BytesIO(data), mode="r") as container:
        assert isinstance(container, av.container.InputContainer)
        for frame in container.decode():
            if isinstance(frame, av.VideoFrame):
                video += 1
            else:
                audio += 1
    return video, audio


def test_full_day(page: Page, live: Live, screens: Path | None) -> None:
    flow.device_check(page, live, test_recording=True, screens=screens)
    flow.login(page, screens=screens)
    flow.draw_lot(page, screens=screens)
    flow.read_attachments(page, screens=screens)
    # The start as the entry step writes it; the waiting page writes it the same way.
    starts = page.locator(".schedule dd").nth(1)
    expect(starts).to_have_text("2030-06-01 09:00")
    flow.enter(page, live, screens=screens)
    flow.wait_recording(page)
    flow.shot(page, screens, "7-device-confirm")
    # Another microphone: a new camera recording starts before the old one stops.
    mic = page.locator("#mic-select")
    mic.select_option(index=1)
    expect(page.locator("#confirm-message")).to_contain_text("已切换")
    page.wait_for_function(
        "window.__invigil.uploads().filter(r => r.kind === 'webcam').length === 2"
    )
    page.get_by_role("button", name="进入待考").click()
    expect(page.locator("#countdown")).to_be_visible()
    expect(page.locator("main .note.info").first).to_contain_text("考试将于 2030-06-01 09:00 开始")
    # The side panel while recording, as the screenshot shows it (not a backlog in passing:
    # on a loaded machine a chunk may wait for its answer while the picture is taken).
    calm = "录像中 · 已录内容均已上传"
    for _ in range(10):
        expect(page.locator("#backlog")).to_have_text(calm, timeout=20000)
        flow.shot(page, screens, "8a-waiting")
        if screens is None or page.locator("#backlog").inner_text() == calm:
            break
    live.clock.set(T - timedelta(seconds=2))
    expect(page.locator("#questions")).to_contain_text("QUESTION-ONE", timeout=20000)
    expect(page.get_by_role("button", name="获取试题")).to_be_visible()
    flow.wait_recording(page, chunks=3)
    flow.shot(page, screens, "8b-answering")
    # A JPEG of each stream every 5 s for the live console.
    deadline = time.monotonic() + 15
    while flow.snapshot_kinds(live) != {"webcam", "screen"} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert flow.snapshot_kinds(live) == {"webcam", "screen"}
    flow.finish(page, screens=screens)
    flow.shot(page, screens, "9-submitted")
    # The status page can be opened again afterwards and still says so.
    page.reload()
    expect(page.get_by_text("交卷完成")).to_be_visible(timeout=20000)
    expect(page.locator(".upload-row")).to_have_count(3)  # two camera recordings, one screen
    expect(page.locator(".upload-row").first).to_contain_text("第 1 段")

    recs = flow.server_recordings(live)
    assert sorted(r.kind for r in recs) == ["screen", "webcam", "webcam"]
    assert all(r.state == "finalized" for r in recs), [(r.kind, r.state) for r in recs]
    held = flow.server_chunks(live)
    log = flow.chunk_log(page)
    assert log and all((c["recordingId"], c["seq"]) in held for c in log)
    frames = {}
    for rec in recs:
        media = flow.staff_get(live, f"/api/v1/recordings/{rec.id}/media").content
        frames[rec.id] = decoded_frames(media)
        assert frames[rec.id][0] > 0, (rec.kind, frames[rec.id])  # every one decodes
    # The recordings that ran for the answering part hold seconds of video (and sound).
    screen = next(r for r in recs if r.kind == "screen")
    webcam = max((r for r in recs if r.kind == "webcam"), key=lambda r: r.chunk_count or 0)
    assert frames[screen.id][0] > 10 and frames[webcam.id][0] > 10, frames
    assert frames[webcam.id][1] > 10, frames
