"""The Redis bus: the same interface as the in-process one, across server instances."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from conftest import T, bearer, login, staff_token
from fastapi.testclient import TestClient

from invigil.app import create_app, make_bus
from invigil.core.bus_redis import RedisBus
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database
from invigil.proctoring import ws as ws_module

from .test_console_api import next_message, subscribe

REDIS_URL = os.environ.get("INVIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:  # pragma: no cover - CI starts Redis
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


def test_publish_from_threads_subscribe_from_asyncio(redis_url: str) -> None:
    bus = RedisBus(redis_url)
    room = f"room:{uuid.uuid4().hex}"

    async def scenario() -> list[dict[str, object]]:
        sub = await bus.subscribe({room})
        other = await bus.subscribe({"room:elsewhere-" + uuid.uuid4().hex})
        threads = [
            threading.Thread(target=bus.publish, args=(room, {"type": "event", "n": i}))
            for i in range(5)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = []
        async for message in sub:
            got.append(message)
            if len(got) == 5:
                break
        await sub.close()
        await other.close()
        return got

    got = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert sorted(m["n"] for m in got) == [0, 1, 2, 3, 4]  # type: ignore[type-var]
    assert {m["channel"] for m in got} == {room}
    bus.close()


def test_make_bus_follows_the_setting(redis_url: str, tmp_path: object) -> None:
    assert isinstance(make_bus(Settings(redis_url=redis_url)), RedisBus)
    assert not isinstance(make_bus(Settings(redis_url=None)), RedisBus)


@pytest.fixture
def second_app(
    settings: Settings, clock: FrozenClock, redis_url: str
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two server instances on one database and one Redis, as behind a load balancer."""
    dbs = [Database(settings.sqlalchemy_url, bus=RedisBus(redis_url)) for _ in range(2)]
    apps = [create_app(settings, clock=clock, db=db, start_worker=False) for db in dbs]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        yield a, b
    for db in dbs:
        db.dispose()


def test_a_console_on_one_server_sees_a_candidate_on_another(
    second_app: tuple[TestClient, TestClient],
    clock: FrozenClock,
    app_ctx: AppContext,
    exam_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ws_module, "STATUS_EVERY_S", 0.2)
    desk_server, console_server = second_app
    clock.set(T - timedelta(minutes=20))
    token = login(desk_server, exam_id, "1001", "obama2.jpg").json()["token"]
    p1 = staff_token(console_server, "p1", "pw-p1")
    room = console_server.get("/api/v1/staff/rooms/R01", headers=bearer(p1)).json()["room"]
    with console_server.websocket_connect(f"/api/v1/staff/ws?token={p1}") as ws:
        ws.receive_json()
        _, replayed = subscribe(ws, [room["room_id"]])
        assert [m["event"]["kind"] for m in replayed] == ["login"]
        r = desk_server.post(
            "/api/v1/candidate/events", headers=bearer(token), json={"kind": "focus_lost"}
        )
        msg = next_message(ws, "event")
        assert msg["event"]["seq"] == r.json()["seq"] and msg["event"]["kind"] == "focus_lost"
        desk_server.post("/api/v1/candidate/help", headers=bearer(token), json={"text": "求助"})
        msg = next_message(ws, "event")
        assert msg["event"]["kind"] == "help_message"
