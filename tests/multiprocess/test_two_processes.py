"""``invigil serve --workers 2``: the flows that must hold across processes, each driven over
HTTP with requests that provably reach both workers."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from conftest import FACES, PG_URL, bearer
from prometheus_client.parser import text_string_to_metric_families
from recordings.conftest import decode_check, sha, split, webm_bytes
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from invigil.core import jobs
from invigil.core.db import transaction
from invigil.core.limits import MAX_HEADER_BYTES
from invigil.exams.lots import LOT_AUTO_ASSIGN

from .conftest import HEADER, LOT_ROOM_SIZE, SKIP_REASON, WORKERS, Server

pytestmark = pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def two(server: Server) -> tuple[str, str]:
    pids = sorted(server.pids())
    assert len(pids) == WORKERS, pids
    return pids[0], pids[1]


def face_login(client: httpx.Client, exam_id: str, ticket: str, photo: str) -> httpx.Response:
    return client.post(
        "/api/v1/candidate/login",
        data={"exam_id": exam_id, "ticket": ticket},
        files={"face": ("face.jpg", (FACES / photo).read_bytes(), "image/jpeg")},
    )


def scrape(server: Server, pid: str, **kw: Any) -> Samples:
    r = server.call(pid, "GET", "/metrics", **kw)
    assert r.status_code == 200, r.text
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_workers_keep_the_server_configuration(server: Server) -> None:
    """Each worker runs core/serving.py's configuration: credentials in query strings never
    reach the access log, and request heads are bounded."""
    for pid in two(server):
        r = server.call(pid, "GET", f"/api/v1/health?token=SECRET-IN-QUERY-{pid}")
        assert r.status_code == 200
        big = {"X-Padding": "x" * (MAX_HEADER_BYTES + 100)}
        r = server.on(pid).get("/api/v1/health", headers=big)
        assert r.status_code == 431
        server.pool.pop(pid).close()  # the server closed that connection
    deadline = time.monotonic() + 10
    while "token=[redacted]" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log.read_text()
    assert "token=[redacted]" in log
    assert "SECRET-IN-QUERY" not in log


def test_second_login_on_the_other_process_is_refused(server: Server) -> None:
    a, b = two(server)
    r = face_login(server.on(a), server.exam_id, "1001", "obama2.jpg")
    assert r.status_code == 200, r.text
    assert r.headers[HEADER] == a
    # Another device, served by the other process, while the first session is alive.
    r = face_login(server.on(b), server.exam_id, "1001", "obama2.jpg")
    assert r.headers[HEADER] == b
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "session_active_elsewhere"


def test_simultaneous_logins_on_both_processes_give_one_session(server: Server) -> None:
    a, b = two(server)
    clients = [server.fresh(a), server.fresh(b)]
    start = threading.Barrier(2)

    def go(c: httpx.Client) -> httpx.Response:
        start.wait()
        return face_login(c, server.exam_id, "1002", "biden.jpg")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(go, clients))
    for c in clients:
        c.close()
    assert {r.headers[HEADER] for r in results} == {a, b}
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]


def test_concurrent_lot_draws_on_both_processes_are_distinct(server: Server) -> None:
    a, b = two(server)
    tokens = [server.token(f"30{i:02d}")[0] for i in range(LOT_ROOM_SIZE)]
    clients = [server.fresh(a if i % 2 else b) for i in range(LOT_ROOM_SIZE)]
    start = threading.Barrier(LOT_ROOM_SIZE)

    def draw(i: int) -> tuple[str, int]:
        start.wait()
        r = clients[i].post("/api/v1/candidate/lot", headers=bearer(tokens[i]))
        assert r.status_code == 200, r.text
        return r.headers[HEADER], int(r.json()["number"])

    with ThreadPoolExecutor(LOT_ROOM_SIZE) as pool:
        drawn = list(pool.map(draw, range(LOT_ROOM_SIZE)))
    for c in clients:
        c.close()
    assert {pid for pid, _ in drawn} == {a, b}
    assert sorted(n for _, n in drawn) == list(range(1, LOT_ROOM_SIZE + 1))


def test_rate_limits_hold_across_processes(server: Server) -> None:
    a, b = two(server)
    # Staff login: 5 wrong passwords per username, then a wait of 2 s after the newest failure
    # (doubling with each further one). Alternating the processes: with a budget per process
    # all eight would be judged (401).
    answers = []
    for i in range(8):
        r = server.call(
            (a, b)[i % 2],
            "POST",
            "/api/v1/staff/login",
            json={"username": "exm", "password": f"wrong-{i}"},
        )
        answers.append(r.status_code)
    assert answers[:5] == [401] * 5, answers
    # Normally all three are 429; a machine that stalls for the 2 s may judge one more.
    assert answers.count(429) >= 2, answers

    # An unauthenticated window (results look-up: 10 a minute per address).
    answers = []
    for i in range(14):
        r = server.call(
            (a, b)[i % 2],
            "POST",
            "/api/v1/results/lookup",
            json={"exam_id": server.exam_id, "ticket": "9999", "name": "无此人"},
        )
        answers.append(r.status_code)
    assert answers.count(429) == 4, answers
    assert 429 not in answers[:10], answers


def test_console_sees_events_from_the_other_process(server: Server) -> None:
    a, b = two(server)
    staff = server.call(
        a, "POST", "/api/v1/staff/login", json={"username": "p2", "password": "pw-p2"}
    )
    assert staff.status_code == 200, staff.text
    token, attempt_id = server.token("2001")
    ws_url = (
        server.base.replace("http", "ws", 1) + "/api/v1/staff/ws?token=" + staff.json()["token"]
    )
    for _ in range(40):  # until the console's connection is served by worker a
        with connect(ws_url, open_timeout=30) as ws:
            if ws.response.headers[HEADER] == a:
                watch_room(ws, server, b, token, attempt_id)
                return
    pytest.fail("no WebSocket reached worker a")


def watch_room(ws: ClientConnection, server: Server, b: str, token: str, attempt_id: str) -> None:
    hello = json.loads(ws.recv(30))
    room_id = next(r["room_id"] for r in hello["rooms"] if r["id"] == "R02")
    ws.send(json.dumps({"type": "subscribe", "rooms": [room_id], "since": {}}))
    while json.loads(ws.recv(30))["type"] != "replay_done":
        pass
    r = server.call(
        b,
        "POST",
        "/api/v1/candidate/events",
        json={"kind": "focus_lost", "data": {"multiprocess": True}},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv(deadline - time.monotonic()))
        if msg["type"] == "event" and msg["event"]["kind"] == "focus_lost":
            assert msg["attempt_id"] == attempt_id
            assert msg["event"]["data"] == {"multiprocess": True}
            return
    pytest.fail("the console never saw the event")


def test_chunks_over_both_processes_finalize_and_decode(server: Server) -> None:
    a, b = two(server)
    before = scrape(server, a)
    token, _ = server.token("4001")
    state = server.call(a, "GET", "/api/v1/candidate/state", headers=bearer(token)).json()
    for att in state["attachments"]:
        server.call(
            b, "POST", f"/api/v1/candidate/attachments/{att['id']}/read", headers=bearer(token)
        )
    r = server.call(a, "POST", "/api/v1/candidate/enter", headers=bearer(token))
    assert r.status_code == 200, r.text
    r = server.call(
        b,
        "POST",
        "/api/v1/recordings",
        json={"kind": "webcam", "mime": "video/webm;codecs=vp8,opus"},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text
    rec = r.json()["recording_id"]
    media, _ = webm_bytes()
    chunks = split(media, 8, random.Random(14))
    clients = [server.fresh(a), server.fresh(b)]

    def put(seq: int) -> str:
        r = clients[seq % 2].put(
            f"/api/v1/recordings/{rec}/chunks/{seq}",
            content=chunks[seq],
            headers={**bearer(token), "X-Chunk-SHA256": sha(chunks[seq])},
        )
        assert r.status_code == 201, r.text
        return r.headers[HEADER]

    with ThreadPoolExecutor(4) as pool:  # in parallel, over both processes
        served = list(pool.map(put, range(len(chunks))))
    for c in clients:
        c.close()
    assert set(served) == {a, b}

    during = scrape(server, b)
    assert value(during, "invigil_upload_backlog_chunks") >= len(chunks)
    assert value(during, "invigil_recordings_open") >= 1
    # Summed over both workers: each committed some of the chunks.
    committed = value(during, "invigil_group_commit_batch_size_sum") - value(
        before, "invigil_group_commit_batch_size_sum"
    )
    assert committed >= len(chunks)
    route = "/api/v1/recordings/{recording_id}/chunks/{seq}"
    puts = value(
        during,
        "invigil_http_request_duration_seconds_count",
        route=route,
        method="PUT",
        status="2xx",
    ) - value(
        before,
        "invigil_http_request_duration_seconds_count",
        route=route,
        method="PUT",
        status="2xx",
    )
    assert puts == len(chunks)

    r = server.call(
        a,
        "POST",
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": len(chunks), "sha256": sha(media)},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    status = server.call(b, "GET", f"/api/v1/recordings/{rec}", headers=bearer(token)).json()
    assert status["state"] == "finalized" and status["received"] == list(range(len(chunks)))
    after = scrape(server, b)
    assert value(after, "invigil_upload_backlog_chunks") == value(
        during, "invigil_upload_backlog_chunks"
    ) - len(chunks)

    rev = server.call(
        b, "POST", "/api/v1/staff/login", json={"username": "rev", "password": "pw-rev"}
    )
    r = server.call(
        b, "GET", f"/api/v1/recordings/{rec}/media", headers=bearer(rev.json()["token"])
    )
    assert r.status_code == 200, r.text
    check = decode_check(r.content)
    assert check["frames"] > 0 and check["duration"]


def test_metrics_from_a_forwarded_stranger_are_refused(server: Server) -> None:
    a, b = two(server)
    for pid in (a, b):
        r = server.call(pid, "GET", "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 404
        assert "invigil_" not in r.text
    # The database's numbers are the same whichever process answers.
    first, second = scrape(server, a), scrape(server, b)
    for name in ("invigil_recordings_open", "invigil_candidates_online"):
        assert value(first, name) == value(second, name)


def test_each_job_runs_once(server: Server) -> None:
    """Both workers' embedded job loops claim from one table: every job is done exactly once."""
    ctx = server.ctx
    now = ctx.clock.now()
    with transaction(ctx.db) as session:
        queued = [
            jobs.enqueue(session, LOT_AUTO_ASSIGN, {"exam_id": f"no-such-exam-{i}"}, now=now)
            for i in range(30)
        ]
        session.flush()
        ids = [job.id for job in queued if job is not None]
    assert len(ids) == 30
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with ctx.db.session() as session:
            rows = session.execute(
                select(jobs.Job.state, jobs.Job.attempts).where(jobs.Job.id.in_(ids))
            ).all()
        if all(state == jobs.DONE for state, _ in rows):
            break
        time.sleep(0.2)
    assert [state for state, _ in rows] == [jobs.DONE] * len(ids)
    assert [n for _, n in rows] == [1] * len(ids)


def test_a_dead_worker_is_replaced(server: Server) -> None:
    a, b = two(server)
    os.kill(int(a), signal.SIGKILL)
    server.pool.pop(a, None)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            pids = server.pids(tries=10)
        except httpx.HTTPError:
            pids = set()
        if len(pids) == WORKERS and a not in pids:
            break
        time.sleep(0.5)
    assert b in pids and a not in pids and len(pids) == WORKERS, server.tail()
