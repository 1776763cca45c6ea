"""The proctor console's live connection: ``/api/v1/staff/ws``.

Protocol (JSON text frames):

- connect with ``?token=<staff token>``, or send ``{"token": "..."}`` as the first frame;
  the server answers ``{"type": "hello", "user", "roles", "rooms": [...]}``.
- client ``{"type": "subscribe", "rooms": [room_id...], "since": {attempt_id: seq}}``: the
  server subscribes to the rooms' live messages first, then sends the room status
  (``{"type": "room", ...}``), then every event after each attempt's cursor **from the event
  log** (``{"type": "event", ..., "replay": true}``), then ``{"type": "replay_done"}``, then
  live events as they are committed, without duplicates. A reconnecting console sends the
  last seq it holds per attempt and gets exactly what it missed.
- the room status is re-sent whenever it changes (snapshots, online, stage, uploads), checked
  every ``STATUS_EVERY_S`` seconds; the token and room access are re-checked at each check.
- after the replay, and again whenever one of them changes, ``{"type": "help_elsewhere",
  "requests": [...]}``: the unanswered help requests in the staff member's other rooms (a
  help request is an alert on whatever view is open, not only in its own room's).
- client ``{"type": "ping"}`` → ``{"type": "pong"}``.

Close codes: 4401 bad or expired token, 4403 a room this staff member may not watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from invigil.attempts import sessions
from invigil.attempts.helpchat import KIND as HELP_KIND
from invigil.core.bus import Subscription
from invigil.core.clock import ensure_utc
from invigil.core.context import AppContext, unit_of_work
from invigil.core.limits import MAX_INT
from invigil.exams.models import Exam, Room
from invigil.proctoring import service
from invigil.staff import service as staff_service
from invigil.staff.models import StaffUser

log = logging.getLogger(__name__)
STATUS_EVERY_S = 2.0
FIRST_FRAME_TIMEOUT_S = 10.0
OUTBOX_LIMIT = 5000
# A help request is an alert on whatever view the proctor has open: the console also listens to
# this many of the staff member's other rooms, for their help messages only.
MAX_HELP_ROOMS = 20
HELP_KINDS = frozenset({HELP_KIND, service.HELP_DISMISSED_KIND})


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Who:
    staff_id: str
    username: str
    roles: list[str]


def _check_token(session: Session, ctx: AppContext, token: str | None) -> StaffUser:
    auth = sessions.find(session, ctx, token)
    now = ctx.clock.now()
    if (
        auth is None
        or auth.kind != "staff"
        or auth.revoked_at is not None
        or auth.expires_at <= now
    ):
        raise Refused(4401, "unauthorized")
    user = session.get(StaffUser, auth.staff_id)
    if user is None:
        raise Refused(4401, "unauthorized")
    if now - auth.last_seen_at >= sessions.TOUCH_EVERY:
        auth.last_seen_at = now
    return user


def authenticate(ctx: AppContext, token: str | None) -> Who:
    with unit_of_work(ctx) as session:
        user = _check_token(session, ctx, token)
        return Who(user.id, user.username, list(user.roles))


def _user(session: Session, who: Who) -> StaffUser:
    user = session.get(StaffUser, who.staff_id)
    if user is None:
        raise Refused(4401, "unauthorized")
    return user


def hello(ctx: AppContext, who: Who) -> dict[str, Any]:
    with unit_of_work(ctx) as session:
        rooms = service.visible_rooms(session, _user(session, who))
    return {"type": "hello", "user": who.username, "roles": who.roles, "rooms": rooms}


def check_rooms(ctx: AppContext, who: Who, refs: list[str]) -> tuple[list[str], list[str]]:
    """The internal ids of the requested rooms, all of which this staff member may watch, and
    the other rooms they are staff of (whose help requests reach them wherever they look)."""
    ids = []
    with unit_of_work(ctx) as session:
        user = _user(session, who)
        for ref in refs:
            room = session.get(Room, ref)
            if room is None or not staff_service.can_see_room(session, user, room.id):
                raise Refused(4403, f"forbidden room {ref}")
            ids.append(room.id)
        others = session.execute(
            select(Room.id, Room.code, Exam.starts_at)
            .join(Exam, Exam.id == Room.exam_id)
            .where(Room.id.in_(list(staff_service.room_ids_of(session, user) - set(ids))))
        ).all()
    # The exams nearest in time first: today's other room, not last year's or next month's.
    now = ctx.clock.now()
    nearest = sorted(
        others, key=lambda r: (abs((ensure_utc(r.starts_at) - now).total_seconds()), r.code)
    )
    return ids, [r.id for r in nearest[:MAX_HELP_ROOMS]]


def open_help(ctx: AppContext, room_ids: list[str]) -> dict[str, Any]:
    with unit_of_work(ctx) as session:
        return {"type": "help_elsewhere", "requests": service.open_help(session, room_ids)}


def status(ctx: AppContext, who: Who, token: str, room_ids: list[str]) -> list[dict[str, Any]]:
    with unit_of_work(ctx) as session:
        user = _check_token(session, ctx, token)  # a revoked or expired token ends it
        if user.id != who.staff_id:
            raise Refused(4401, "unauthorized")
        out = []
        for room_id in room_ids:
            room = session.get(Room, room_id)
            if room is None or not staff_service.can_see_room(session, user, room_id):
                raise Refused(4403, f"forbidden room {room_id}")
            out.append({"type": "room", **service.room_status(session, ctx, room)})
        return out


def replay(ctx: AppContext, room_ids: list[str], since: dict[str, int]) -> list[dict[str, Any]]:
    with unit_of_work(ctx) as session:
        return service.replay(session, room_ids, since)


@dataclass
class Console:
    ws: WebSocket
    ctx: AppContext
    who: Who
    token: str
    outbox: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=OUTBOX_LIMIT)
    )
    room_ids: list[str] = field(default_factory=list)
    help_room_ids: list[str] = field(default_factory=list)
    seen: dict[str, set[int]] = field(default_factory=dict)
    floor: dict[str, int] = field(default_factory=dict)
    last_status: dict[str, str] = field(default_factory=dict)
    live: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any], wait: bool = True) -> None:
        """Queue a frame. Live events do not wait (``wait=False``): a full outbox means the
        console is behind, and waiting would let the bus queue grow instead."""
        if self.outbox.full() and not wait:
            # A console that cannot keep up is told to reconnect; it replays from its cursor.
            raise Refused(4408, "too slow")
        await self.outbox.put(message)

    async def writer(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))

    def fresh(self, message: dict[str, Any]) -> bool:
        """False for an event this console already has (replayed, or published twice)."""
        if message.get("type") != "event":
            return True
        attempt_id = str(message.get("attempt_id"))
        seq = int(message["event"]["seq"])
        if seq <= self.floor.get(attempt_id, 0):
            return False
        seen = self.seen.setdefault(attempt_id, set())
        if seq in seen:
            return False
        seen.add(seq)
        return True

    async def push_status(self, force: bool = False) -> None:
        rooms = await run_in_threadpool(status, self.ctx, self.who, self.token, self.room_ids)
        for room in rooms:
            key = room["room"]["room_id"]
            body = json.dumps({k: v for k, v in room.items() if k != "now"}, sort_keys=True)
            if force or self.last_status.get(key) != body:
                self.last_status[key] = body
                await self.send(room)

    async def subscribe(self, refs: list[str], since: dict[str, int]) -> None:
        room_ids, help_room_ids = await run_in_threadpool(check_rooms, self.ctx, self.who, refs)
        if self.live is not None:
            self.live.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.live
        self.room_ids = room_ids
        self.help_room_ids = help_room_ids
        self.seen.clear()
        self.floor.clear()
        self.last_status.clear()
        channels = {f"room:{r}" for r in [*room_ids, *help_room_ids]}
        channels.add(f"staff:{self.who.staff_id}")
        # Subscribe before reading history: whatever commits in between arrives twice and is
        # dropped once, rather than falling into a gap.
        sub = await self.ctx.db.bus.subscribe(channels)
        try:
            await self.push_status(force=True)
            history = await run_in_threadpool(replay, self.ctx, room_ids, since)
            for message in history:
                attempt_id = message["attempt_id"]
                self.floor[attempt_id] = max(self.floor.get(attempt_id, 0), message["event"]["seq"])
                await self.send(message)
            for attempt_id, seq in since.items():
                self.floor[attempt_id] = max(self.floor.get(attempt_id, 0), seq)
            await self.send({"type": "replay_done", "rooms": room_ids, "count": len(history)})
            await self.push_help_elsewhere()
        except BaseException:
            await sub.close()
            raise
        self.live = asyncio.create_task(self.pump(sub))

    async def pump(self, sub: Subscription) -> None:
        try:
            async for message in sub:
                room_id = message.get("room_id")
                if message.get("channel", "").startswith("room:") and room_id not in (
                    None,
                    *self.room_ids,
                ):
                    if room_id in self.help_room_ids and _is_help(message):
                        await self.push_help_elsewhere()
                    continue
                if self.fresh(message):
                    live = {k: v for k, v in message.items() if k != "channel"}
                    await self.send(live, wait=False)
        finally:
            await sub.close()

    async def push_help_elsewhere(self) -> None:
        """The open help requests of the staff member's other rooms, whole (they are few)."""
        await self.send(await run_in_threadpool(open_help, self.ctx, self.help_room_ids))

    async def status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            if self.room_ids:
                await self.push_status()

    async def reader(self) -> None:
        while True:
            frame = await self.ws.receive_text()
            try:
                message = json.loads(frame)
            except ValueError:
                await self.send({"type": "error", "code": "bad_frame"})
                continue
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "subscribe":
                rooms = [str(r) for r in message.get("rooms") or []][:20]
                raw = message.get("since") or {}
                since = {
                    str(k): int(v)
                    for k, v in (raw.items() if isinstance(raw, dict) else [])
                    if isinstance(v, int) and 0 <= v <= MAX_INT  # larger: no such event
                }
                await self.subscribe(rooms, since)
            else:
                await self.send({"type": "error", "code": "unknown_type"})


def _is_help(message: dict[str, Any]) -> bool:
    return message.get("type") == "event" and message.get("event", {}).get("kind") in HELP_KINDS


async def _first_token(ws: WebSocket) -> str | None:
    token = ws.query_params.get("token")
    if token:
        return token
    try:
        frame = await asyncio.wait_for(ws.receive_json(), FIRST_FRAME_TIMEOUT_S)
    except (TimeoutError, ValueError, WebSocketDisconnect):
        return None
    return str(frame.get("token")) if isinstance(frame, dict) and frame.get("token") else None


async def staff_ws(ws: WebSocket) -> None:
    ctx: AppContext = ws.app.state.ctx
    await ws.accept()
    token = await _first_token(ws)
    try:
        who = await run_in_threadpool(authenticate, ctx, token)
    except Refused as exc:
        await _refuse(ws, exc)
        return
    assert token is not None
    console = Console(ws, ctx, who, token)
    await ws.send_text(json.dumps(await run_in_threadpool(hello, ctx, who), ensure_ascii=False))
    tasks = [
        asyncio.create_task(console.writer()),
        asyncio.create_task(console.reader()),
        asyncio.create_task(console.status_loop()),
    ]
    refused: Refused | None = None
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if isinstance(error, Refused):
                refused = error
            elif error is not None and not isinstance(error, WebSocketDisconnect):
                log.warning("console connection ended: %r", error)
    finally:
        for task in tasks:
            task.cancel()
        if console.live is not None:
            console.live.cancel()
        for task in [*tasks, *([console.live] if console.live else [])]:
            with contextlib.suppress(BaseException):
                await task
    if refused is not None:
        await _refuse(ws, refused)


async def _refuse(ws: WebSocket, exc: Refused) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "error", "code": exc.code, "reason": exc.reason}))
        await ws.close(code=exc.code, reason=exc.reason)
