"""The bus over Redis pub/sub, for several server processes behind one load balancer.

Same interface as :class:`invigil.core.bus.LocalBus`: ``publish`` is called from request and
job threads (a synchronous client with its own connection pool), ``subscribe`` from the event
loop (``redis.asyncio``, one connection per subscription). Pub/sub is fire-and-forget: a
console that lost its connection replays what it missed from the event log, so a message lost
while Redis or the network hiccups is never the only copy.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis

from invigil.core.bus import Message, Subscription

log = logging.getLogger(__name__)
PREFIX = "invigil:"
SUBSCRIBE_TIMEOUT_S = 5.0


class _RedisSubscription:
    def __init__(self, client: aioredis.Redis, channels: set[str]) -> None:
        self.client = client
        self.channels = channels
        self.pubsub = client.pubsub()

    async def start(self) -> None:
        if not self.channels:
            return
        await self.pubsub.subscribe(*(PREFIX + c for c in self.channels))
        # Wait for Redis to confirm every channel: a caller that replays history right after
        # subscribing must not miss what is published in between.
        confirmed = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SUBSCRIBE_TIMEOUT_S
        while confirmed < len(self.channels):
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("redis did not confirm the subscription")
            msg = await self.pubsub.get_message(timeout=left)
            if msg is not None and msg.get("type") == "subscribe":
                confirmed += 1

    async def __aiter__(self) -> AsyncIterator[Message]:
        if not self.channels:
            await asyncio.Event().wait()  # nothing to receive, ever
        async for raw in self.pubsub.listen():
            if raw.get("type") != "message":
                continue
            channel = _text(raw["channel"])[len(PREFIX) :]
            try:
                message: Message = json.loads(raw["data"])
            except (TypeError, ValueError):
                log.warning("dropping a malformed bus message on %s", channel)
                continue
            yield {**message, "channel": channel}

    async def close(self) -> None:
        try:
            await self.pubsub.unsubscribe()
            # Untyped in redis < 8.2, typed from it: either way is fine here.
            await self.pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        finally:
            await self.client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBus:
    """Redis pub/sub fan-out; channel names are prefixed with ``invigil:``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sync = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def publish(self, channel: str, message: Message) -> None:
        data = json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)
        try:
            self._sync.publish(PREFIX + channel, data)
        except redis.RedisError:
            # Called after a commit: the data is safe in the event log and consoles replay it
            # on reconnect; failing the request now would tell the client a lie.
            log.exception("redis publish failed on %s", channel)

    async def subscribe(self, channels: set[str]) -> Subscription:
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
        sub = _RedisSubscription(client, set(channels))
        try:
            await sub.start()
        except BaseException:
            await sub.close()
            raise
        return sub

    def ping(self) -> bool:
        return bool(self._sync.ping())

    def close(self) -> None:
        self._sync.close()
