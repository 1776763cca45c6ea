"""The evidence phone (/m/): a second Chromium with its own fake camera and a phone profile.

Bound by code and by the QR URL, a room sweep driven by orientation events the test dispatches,
a short recording with the page hidden and the network cut (both become evidence_gap events
with their durations), then 结束录制 → 上传完成 with every chunk on the server."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import av
import httpx
from conftest import bearer, face
from fastapi.testclient import TestClient
from PIL import Image, ImageStat
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

from invigil.attempts.models import Event
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.recordings.models import Snapshot

from . import flow
from .conftest import Live


def offer(live: Live, ticket: str = "1001") -> dict[str, Any]:
    """The desk's side over HTTP: log in as the candidate and ask for a binding offer."""
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post(
            "/api/v1/candidate/login",
            data={"exam_id": live.exam_id, "ticket": ticket},
            files={"face": ("face.jpg", face("obama2.jpg"), "image/jpeg")},
        )
        r.raise_for_status()
        desk = r.json()["token"]
        r = http.post("/api/v1/candidate/binding", headers=bearer(desk))
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        data["desk_token"] = desk
        return data


def shot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        page.screenshot(path=str(folder / f"phone-{name}.png"), full_page=True)


def turn(page: Page, degrees: int, step: int = 30) -> None:
    page.evaluate(
        """([deg, step]) => {
            for (let a = 0; a <= deg; a += step)
                window.dispatchEvent(new DeviceOrientationEvent('deviceorientation',
                    {alpha: a % 360, beta: 80, gamma: 0}));
        }""",
        [degrees, step],
    )


def gap_events(live: Live) -> list[dict[str, Any]]:
    with transaction(live.ctx.db) as session:
        return [
            dict(e.data)
            for e in session.scalars(
                select(Event).where(Event.kind == "evidence_gap").order_by(Event.seq)
            )
        ]


def desk_evidence(phone: Page, live: Live, desk_token: str, expected: str) -> None:
    """The desk sees the phone's state (the phone reports it without waiting: poll a little).
    The pauses are the phone page's, so Playwright's route handlers run meanwhile."""
    status = None
    with httpx.Client(base_url=live.url, timeout=30) as http:
        for _ in range(50):
            r = http.get("/api/v1/candidate/state", headers=bearer(desk_token))
            status = r.json()["evidence"]["status"]
            if status == expected:
                return
            phone.wait_for_timeout(100)
    raise AssertionError(f"desk sees {status!r}, not {expected!r}")


def test_phone_by_code_sweep_record_gaps_and_upload(
    phone: Page, live: Live, screens: Path | None
) -> None:
    o = offer(live)
    phone.goto(f"{live.url}/m/")
    code = phone.get_by_label("绑定码")
    expect(code).to_be_visible()
    code.fill(o["code"])
    shot(phone, screens, "1-bind")
    phone.get_by_role("button", name="绑定", exact=True).click()
    expect(phone.get_by_role("button", name="开始环拍")).to_be_visible()
    expect(phone.locator("#who")).to_contain_text("1001")
    desk_evidence(phone, live, o["desk_token"], "bound")

    # The sweep: orientation events turn the ring; at ≥ 330° it completes by itself.
    phone.get_by_role("button", name="开始环拍").click()
    phone.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
    turn(phone, 180)
    expect(phone.locator("#sweep-ring")).to_have_attribute("aria-valuenow", "55")
    desk_evidence(phone, live, o["desk_token"], "sweeping")
    phone.wait_for_timeout(2200)  # one 2 s chunk of sweep at least
    shot(phone, screens, "2-sweep")
    page_turn_rest = "([from]) => { for (let a = from; a <= 360; a += 30) window.dispatchEvent(new DeviceOrientationEvent('deviceorientation', {alpha: a % 360})); }"
    phone.evaluate(page_turn_rest, [210])
    start = phone.get_by_role("button", name="开始录制")
    expect(start).to_be_visible()
    expect(phone.locator("#place-guide")).to_contain_text("45°")
    shot(phone, screens, "3-place")
    start.click()
    expect(phone.get_by_role("button", name="结束录制")).to_be_visible()
    phone.wait_for_function(
        "window.__invigil.uploads().filter(r => r.kind === 'evidence' && !r.stopped)"
        ".some(r => r.produced >= 2)",
        timeout=20000,
    )
    desk_evidence(phone, live, o["desk_token"], "recording")
    shot(phone, screens, "4-recording")

    # The page hidden for 15 s, then the network cut for 20 s (the cases). Each gap is
    # bounded above by how long the test itself saw it last: a loaded machine delivers the
    # browser's events late, which lengthens a gap but never shortens it.
    hidden_from = time.monotonic()
    phone.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    time.sleep(15)
    phone.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    hidden_ms = (time.monotonic() - hidden_from) * 1000
    offline_from = time.monotonic()
    phone.context.set_offline(True)
    time.sleep(20)
    phone.context.set_offline(False)
    phone.wait_for_function("window.__invigil.gaps().length >= 2", timeout=20000)
    offline_ms = (time.monotonic() - offline_from) * 1000

    # The camera taken away (another app, a call): a loud warning, then recording resumes by
    # itself in a new recording.
    phone.evaluate(
        "window.__invigil.S.stream.getVideoTracks()[0].dispatchEvent(new Event('ended'))"
    )
    expect(phone.locator("#banner")).to_contain_text("录制已中断")
    phone.wait_for_function("window.__invigil.gaps().length >= 3", timeout=20000)
    expect(phone.locator("#banner")).to_be_hidden()
    phone.wait_for_function(
        "window.__invigil.uploads().filter(r => r.kind === 'evidence' && !r.stopped)"
        ".some(r => r.produced >= 1)",
        timeout=20000,
    )

    # A status report held up on its way (a slow link): the phone's heartbeat "recording".
    held: list[Route] = []

    def hold_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    phone.route("**/api/v1/phone/status", hold_first)
    for _ in range(120):  # the heartbeat repeats the state every 10 s
        if held:
            break
        phone.wait_for_timeout(100)
    assert held and held[0].request.post_data_json == {"state": "recording"}

    # 结束录制 (confirmed) → upload to 100 % → 上传完成.
    phone.get_by_role("button", name="结束录制").click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    shot(phone, screens, "5-stop-confirm")
    dialog.get_by_role("button", name="确定").click()
    expect(phone.get_by_text("上传完成", exact=True)).to_be_visible(timeout=40000)
    shot(phone, screens, "6-done")
    # "stopped" waits for the report before it, so the late "recording" cannot undo it.
    held[0].continue_()
    desk_evidence(phone, live, o["desk_token"], "stopped")
    phone.unroute("**/api/v1/phone/status")

    gaps = {g["reason"]: g for g in gap_events(live)}
    assert set(gaps) == {"hidden", "offline", "camera"}, gaps
    assert 14_500 <= gaps["hidden"]["duration_ms"] <= hidden_ms + 1000, (gaps, hidden_ms)
    assert 19_500 <= gaps["offline"]["duration_ms"] <= offline_ms + 1000, (gaps, offline_ms)
    assert 1000 <= gaps["camera"]["duration_ms"] <= 8000, gaps["camera"]
    assert all(g["started_at"] for g in gaps.values())

    log = flow.chunk_log(phone)
    held = flow.server_chunks(live)
    missing = [c for c in log if held.get((c["recordingId"], c["seq"])) != c["sha256"]]
    assert log and not missing, missing
    recs = flow.server_recordings(live)
    # The sweep, the exam up to the camera loss, the exam after it.
    assert [r.kind for r in recs] == ["evidence"] * 3
    assert all(r.state == "finalized" for r in recs)
    for r in recs:
        media = flow.staff_get(live, f"/api/v1/recordings/{r.id}/media").content
        with av.open(io.BytesIO(media), mode="r") as container:
            assert isinstance(container, av.container.InputContainer)
            frames = sum(1 for _ in container.decode(video=0))
        assert frames > 10, (r.id, frames)
    stored = evidence_images(live)
    assert stored
    for img in stored:
        assert_room_picture(img)


def test_phone_by_qr_url_binds_at_once_and_resumes_after_reload(
    phone: Page, live: Live, screens: Path | None
) -> None:
    o = offer(live)
    phone.goto(o["url"].replace("http://127.0.0.1:8000", live.url))
    expect(phone.get_by_role("button", name="开始环拍")).to_be_visible()
    assert "bind=" not in phone.url  # the one-time token left the address at once
    token = phone.evaluate("JSON.parse(localStorage.getItem('invigil.phone')).token")
    assert token and token != o["url"].split("bind=")[1]
    phone.reload()
    expect(phone.get_by_role("button", name="开始环拍")).to_be_visible()
    expect(phone.locator("#who")).to_contain_text("1001")
    # The token was single-use: opening the same QR URL again is refused.
    phone.goto(o["url"].replace("http://127.0.0.1:8000", live.url))
    expect(phone.locator("#bind-message")).to_contain_text("绑定码无效")
    expect(phone.get_by_label("绑定码")).to_be_visible()


def test_phone_sweep_without_sensor_falls_back_to_timed(phone: Page, live: Live) -> None:
    """No orientation event within 3 s: a timed sweep with a confirmation; a sensor that
    answers later takes over again."""
    o = offer(live)
    phone.goto(o["url"].replace("http://127.0.0.1:8000", live.url))
    phone.get_by_role("button", name="开始环拍").click()
    confirm = phone.locator("#sweep-confirm")
    expect(confirm).to_be_visible(timeout=6000)
    expect(confirm).to_be_disabled()
    expect(phone.locator("#sweep-hint")).to_contain_text("未检测到方向传感器")
    phone.wait_for_function(
        "Number(document.querySelector('#sweep-ring').getAttribute('aria-valuenow')) > 0"
    )
    turn(phone, 360)
    expect(phone.get_by_role("button", name="开始录制")).to_be_visible()


def test_phone_events_endpoint(
    client: TestClient, exam_id: str, clock: Any, app_ctx: AppContext
) -> None:
    from datetime import timedelta

    from conftest import T, login

    clock.set(T - timedelta(minutes=15))
    desk = login(client, exam_id, "1001").json()["token"]
    code = client.post("/api/v1/candidate/binding", headers=bearer(desk)).json()["code"]
    token = client.post("/api/v1/phone/bind", json={"code": code}).json()["token"]
    gap = {"reason": "hidden", "duration_ms": 15000, "started_at": "2030-06-01T00:50:00Z"}
    r = client.post(
        "/api/v1/phone/events", headers=bearer(token), json={"kind": "evidence_gap", "data": gap}
    )
    assert r.status_code == 201 and r.json()["seq"] > 0
    r = client.post("/api/v1/phone/events", headers=bearer(token), json={"kind": "focus_lost"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_event_kind"
    big = {"kind": "evidence_gap", "data": {"x": "y" * 5000}}
    assert client.post("/api/v1/phone/events", headers=bearer(token), json=big).status_code == 413
    # A candidate token is not a phone token; no token at all is refused too.
    r = client.post("/api/v1/phone/events", headers=bearer(desk), json={"kind": "evidence_gap"})
    assert r.status_code == 401
    assert client.post("/api/v1/phone/events", json={"kind": "evidence_gap"}).status_code == 401
    with transaction(app_ctx.db) as session:
        logged = list(session.scalars(select(Event).where(Event.kind == "evidence_gap")))
    assert [(e.actor, e.data["duration_ms"]) for e in logged] == [("phone", 15000)]


def evidence_images(live: Live) -> list[Image.Image]:
    """Every evidence snapshot the server stored, decoded, oldest first."""
    with transaction(live.ctx.db) as session:
        keys = list(
            session.scalars(
                select(Snapshot.blob_key)
                .where(Snapshot.kind == "evidence")
                .order_by(Snapshot.taken_at, Snapshot.id)
            )
        )
    images = []
    for key in keys:
        img = Image.open(io.BytesIO(live.ctx.blobs.get(key)))
        img.load()
        images.append(img)
    return images


def assert_room_picture(img: Image.Image) -> None:
    """The fake room camera: a left-to-right grey ramp (mean luma about 127), 640×480."""
    assert img.format == "JPEG"
    assert img.size == (640, 480), img.size
    luma = ImageStat.Stat(img.convert("L"))
    assert 90 < luma.mean[0] < 170, luma.mean  # a black frame is 0–2
    assert luma.stddev[0] > 40, luma.stddev  # the ramp, not a flat grey


def test_phone_snapshots_show_the_room_whatever_the_layout(phone: Page, live: Live) -> None:
    """Placement pictures (every 3 s) and recording snapshots (every 5 s) come from the camera
    track: they show the room even when the preview is pushed off-screen, where Chrome stops
    painting a muted video."""
    o = offer(live)
    phone.goto(o["url"].replace("http://127.0.0.1:8000", live.url))
    phone.get_by_role("button", name="开始环拍").click()
    phone.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
    turn(phone, 360)
    expect(phone.get_by_role("button", name="开始录制")).to_be_visible()
    # Placing: a picture at once for the desk, then every 3 s.
    deadline = time.monotonic() + 15
    while not evidence_images(live) and time.monotonic() < deadline:
        time.sleep(0.3)
    placing = evidence_images(live)
    assert placing, "no placement picture reached the server"
    for img in placing:
        assert_room_picture(img)

    # The preview off-screen (the layout that made the desk's snapshots black).
    phone.evaluate(
        "document.querySelector('#preview').style.cssText ="
        " 'position:fixed;left:-10000px;top:0;width:320px;height:240px'"
    )
    before = len(evidence_images(live))
    phone.get_by_role("button", name="开始录制").click()
    expect(phone.get_by_role("button", name="结束录制")).to_be_visible()
    deadline = time.monotonic() + 20
    while len(evidence_images(live)) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    later = evidence_images(live)[before:]
    assert later, "no recording snapshot after the preview left the screen"
    for img in later:
        assert_room_picture(img)


def test_phone_stop_confirmation_names_its_action(phone: Page, live: Live) -> None:
    """结束录制 asks first; the dialog's buttons say what they do, and 取消 keeps recording."""
    o = offer(live)
    phone.goto(o["url"].replace("http://127.0.0.1:8000", live.url))
    phone.get_by_role("button", name="开始环拍").click()
    phone.wait_for_function("window.__invigil.uploads().some(r => r.kind === 'evidence')")
    turn(phone, 360)
    phone.get_by_role("button", name="开始录制").click()
    stop = phone.get_by_role("button", name="结束录制", exact=True)
    expect(stop).to_be_visible()
    stop.click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_contain_text("考试尚未结束")
    ok = dialog.get_by_role("button", name="确定结束录制", exact=True)
    expect(ok).to_be_visible()
    expect(ok).to_be_focused()
    dialog.get_by_role("button", name="取消，继续录制").click()
    expect(dialog).to_be_hidden()
    assert phone.evaluate("window.__invigil.S.phase") == "recording"
    assert phone.evaluate("window.__invigil.S.recorder.active") is True
    # English mode translates the buttons too.
    phone.locator("#lang").click()
    phone.get_by_role("button", name="Stop recording", exact=True).click()
    expect(
        phone.get_by_role("dialog").get_by_role("button", name="OK, stop recording")
    ).to_be_visible()
    phone.get_by_role("dialog").get_by_role("button", name="OK, stop recording").click()
    expect(phone.get_by_text("Upload complete", exact=True)).to_be_visible(timeout=40000)
