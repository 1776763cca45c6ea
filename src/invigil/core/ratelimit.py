"""A small sliding-window limiter kept in process memory.

Good enough for throttling guessers (binding codes) per client address on one server process;
with several processes each keeps its own window, which multiplies the allowance by their
number but still bounds it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from starlette.requests import Request


class SlidingWindow:
    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


def window_for(request: Request, name: str, limit: int, seconds: float) -> SlidingWindow:
    """The application's limiter called ``name`` (one per app, so separate apps — and tests —
    do not share their counts)."""
    limiters: dict[str, SlidingWindow] = request.app.state.__dict__.setdefault("rate_limits", {})
    return limiters.setdefault(name, SlidingWindow(limit, seconds))
