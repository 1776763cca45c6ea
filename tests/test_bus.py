"""Live messages leave only after their transaction commits."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from conftest import T, bearer, login
from fastapi.testclient import TestClient

from invigil.attempts import events
from invigil.core.bus import LocalBus
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction


def test_events_reach_room_subscribers_after_commit_only(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    clock.set(T - timedelta(minutes=20))
    token = login(client, exam_id, "1001").json()["token"]
    attempt_id = client.get("/api/v1/candidate/state", headers=bearer(token)).json()["attempt_id"]
    with transaction(app_ctx.db) as session:
        from invigil.attempts.models import Attempt

        room_id = session.get(Attempt, attempt_id).room_id  # type: ignore[union-attr]

    async def scenario() -> list[dict]:  # type: ignore[type-arg]
        bus = app_ctx.db.bus
        assert isinstance(bus, LocalBus)
        sub = await bus.subscribe({f"room:{room_id}"})
        other = await bus.subscribe({"room:elsewhere"})

        def rolled_back() -> None:
            try:
                with transaction(app_ctx.db) as session:
                    events.append(session, attempt_id, "focus_lost", at=clock.now())
                    raise RuntimeError("abort")
            except RuntimeError:
                pass

        await asyncio.to_thread(rolled_back)
        await asyncio.to_thread(
            client.post, "/api/v1/candidate/events", headers=bearer(token), json={"kind": "offline"}
        )
        got = []
        async for message in sub:
            got.append(message)
            break
        await asyncio.sleep(0.05)
        assert other.queue.empty() and sub.queue.empty()  # type: ignore[attr-defined]
        await sub.close()
        await other.close()
        return got

    got = asyncio.run(scenario())
    assert len(got) == 1
    assert got[0]["event"]["kind"] == "offline" and got[0]["attempt_id"] == attempt_id
    assert got[0]["channel"] == f"room:{room_id}"
