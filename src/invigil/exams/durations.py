"""Durations as the exam file writes them: ``30m``, ``45s``, ``1h``, ``1h30m``, ``180d``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_PART = re.compile(r"(\d+)\s*([dhms])")
_WHOLE = re.compile(r"^\s*(\d+\s*[dhms]\s*)+$")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: object) -> int:
    """Seconds, or ValueError with a message for the admin."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"时长应写成 30m、45s、1h 这样的形式，而不是 {text!r}")
    if isinstance(text, int):
        raise ValueError(f"时长 {text} 缺少单位：请写成 {text}s、{text}m 或 {text}h")
    if not _WHOLE.match(text):
        raise ValueError(f"时长 {text!r} 无法识别：请写成 30m、45s、1h 或 1h30m 这样的形式")
    return sum(int(n) * _UNIT[u] for n, u in _PART.findall(text))


def format_duration(seconds: int) -> str:
    parts: list[str] = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def format_local(at: datetime, offset_minutes: int) -> str:
    """A moment as an admin reads it: in the exam's own offset, to the second, e.g.
    ``2026-12-01 09:00:00 (UTC+08:00)``; never raw UTC ISO with microseconds."""
    tz = timezone(timedelta(minutes=offset_minutes))
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M:%S} (UTC{sign}{hours:02d}:{minutes:02d})"
