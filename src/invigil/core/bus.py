"""Live fan-out of what happens, to the consoles watching it.

Publishers are request and job threads; subscribers are WebSocket handlers on the event loop.
Messages are published only after the transaction that produced them commits (see
:func:`publish_after_commit`), so a console never shows something that was rolled back. The
in-process bus serves one server process; a Redis-backed bus with the same interface serves
several (selected by ``INVIGIL_REDIS_URL``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

Message = dict[str, Any]
PENDING_KEY = "invigil.bus.pending"
BUS_KEY = "invigil.bus"


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Message]: ...
    async def close(self) -> None: ...


class Bus(Protocol):
    def publish(self, channel: str, message: Message) -> None: ...
    async def subscribe(self, channels: set[str]) -> Subscription: ...


class _LocalSubscription:
    def __init__(self, bus: LocalBus, channels: set[str]) -> None:
        self.bus = bus
        self.channels = channels
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=10_000)

    def deliver(self, message: Message) -> None:
        def put() -> None:
            if self.queue.full():  # a stuck console loses the oldest, not the server's memory
                self.queue.get_nowait()
            self.queue.put_nowait(message)

        self.loop.call_soon_threadsafe(put)

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self.queue.get()

    async def close(self) -> None:
        self.bus._remove(self)


class LocalBus:
    """In-process fan-out: thread-safe publish, asyncio subscribers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: set[_LocalSubscription] = set()

    def publish(self, channel: str, message: Message) -> None:
        with self._lock:
            targets = [s for s in self._subs if channel in s.channels]
        for sub in targets:
            sub.deliver({**message, "channel": channel})

    async def subscribe(self, channels: set[str]) -> Subscription:
        sub = _LocalSubscription(self, set(channels))
        with self._lock:
            self._subs.add(sub)
        return sub

    def _remove(self, sub: _LocalSubscription) -> None:
        with self._lock:
            self._subs.discard(sub)


def publish_after_commit(session: Session, channel: str, message: Message) -> None:
    """Queue a message on the session; it goes out when (and only if) the session commits."""
    session.info.setdefault(PENDING_KEY, []).append((channel, message))


@event.listens_for(Session, "after_commit")
def _flush_pending(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    bus: Bus | None = session.info.get(BUS_KEY)
    if pending and bus is not None:
        for channel, message in pending:
            bus.publish(channel, message)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
