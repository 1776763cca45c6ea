"""The server clock: the only clock that decides anything on exam day.

Tests replace it with :class:`FrozenClock` to walk through each window's edges.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        self._lock = threading.Lock()
        self._now = ensure_utc(at)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, at: datetime) -> None:
        with self._lock:
            self._now = ensure_utc(at)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


def ensure_utc(value: datetime) -> datetime:
    """Naive datetimes come back from SQLite; every one we store is UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the one time format the API speaks."""
    return ensure_utc(value).isoformat().replace("+00:00", "Z")
