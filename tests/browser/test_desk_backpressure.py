"""A loaded server (forced here) defers the desk's snapshots and heartbeats with 503 +
Retry-After: the desk waits as asked, its periodic requests drop, chunks keep flowing and none
is lost; once the load is gone, snapshots come back."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from conftest import T
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from invigil.core.backpressure import OVERLOADED, Load

from . import flow
from .conftest import Live

SNAPSHOTS, HEARTBEAT = "/api/v1/snapshots", "/api/v1/candidate/heartbeat"


def test_desk_backs_off_when_the_server_is_loaded(page: Page, live: Live, app: FastAPI) -> None:
    load: Load = app.state.load
    flow.up_to_answering(page, live)
    flow.wait_recording(page, chunks=2)

    sent: list[tuple[float, str]] = []  # (when, path) of every periodic request
    answered: list[tuple[float, str, int, int]] = []  # (when, path, status, Retry-After)

    def on_request(request: Any) -> None:
        path = request.url.split("?")[0].removeprefix(live.url)
        if path in (SNAPSHOTS, HEARTBEAT) or "/chunks/" in path:
            sent.append((time.monotonic(), path if "/chunks/" not in path else "chunk"))

    def on_response(response: Any) -> None:
        path = response.url.split("?")[0].removeprefix(live.url)
        if path in (SNAPSHOTS, HEARTBEAT) or "/chunks/" in path:
            retry = int(response.headers.get("retry-after", "0"))
            kind = path if "/chunks/" not in path else "chunk"
            answered.append((time.monotonic(), kind, response.status, retry))

    page.on("request", on_request)
    page.on("response", on_response)

    def count(path: str, start: float, end: float) -> int:
        return sum(1 for t, p in sent if p == path and start <= t < end)

    # Normal load: a snapshot per stream and a heartbeat every 5 s.
    a0 = time.monotonic()
    page.wait_for_timeout(10000)
    a1 = b0 = time.monotonic()
    load.retry_after = 8  # Retry-After 8–16 s: longer than the desk's own 5 s period
    load.forced = OVERLOADED
    page.wait_for_timeout(16000)
    b1 = time.monotonic()
    load.forced = 0

    refused = [a for a in answered if a[2] == 503]
    assert {p for _, p, _, _ in refused} == {SNAPSHOTS, HEARTBEAT}, answered
    assert all(8 <= r <= 16 for *_, r in refused)
    # Each refusal held back the next request of its kind for the time asked (1 s of slack
    # for timers and event delivery). The webcam's and the screen's snapshots fall due on the
    # same tick: one may leave while the other's refusal is still on its way to the page's
    # code (seen 15 ms after it on a loaded CI box), so what leaves within 0.2 s was already
    # under way; a desk that ignored the wait would send again a period (5 s) later.
    for when, path, _, retry in refused:
        later = [t for t, p in sent if p == path and t > when + 0.2]
        if later:
            assert later[0] >= when + retry - 1.0, (path, later[0] - when, retry)
    normal = count(SNAPSHOTS, a0, a1) + count(HEARTBEAT, a0, a1)
    loaded = count(SNAPSHOTS, b0, b1) + count(HEARTBEAT, b0, b1)
    assert normal >= 4, sent
    assert loaded / (b1 - b0) < 0.6 * normal / (a1 - a0), (normal, loaded)
    # Chunks are never refused and keep flowing meanwhile.
    chunk_answers = [a for a in answered if a[1] == "chunk" and b0 <= a[0] < b1]
    assert len(chunk_answers) >= 6 and all(a[2] == 201 for a in chunk_answers), chunk_answers

    # The load is gone: snapshots come back once the last Retry-After has passed.
    deadline = time.monotonic() + 40
    while not any(p == SNAPSHOTS and s == 201 and t > b1 for t, p, s, _ in answered):
        assert time.monotonic() < deadline, answered[-10:]
        page.wait_for_timeout(500)

    # Nothing recorded was lost: at the deadline everything uploads and finalizes.
    live.clock.set(T + timedelta(minutes=20))
    expect(page.get_by_text("交卷完成")).to_be_visible(timeout=60000)
    log = flow.chunk_log(page)
    held = flow.server_chunks(live)
    assert log and not [c for c in log if held.get((c["recordingId"], c["seq"])) != c["sha256"]]
    assert all(r.state == "finalized" for r in flow.server_recordings(live))
