"""The append-only, hash-chained event log of an attempt.

Each event's hash covers the previous event's hash and the event's own content, so editing,
removing or reordering any stored event breaks the chain from that point on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts.locking import locked_attempt
from invigil.attempts.models import GENESIS_HASH, Event
from invigil.core.bus import publish_after_commit
from invigil.core.clock import iso

# Kinds that are suspected violations: reviewers judge them, the console alerts on them.
VIOLATION_KINDS = frozenset(
    {
        "focus_lost",
        "fullscreen_exit",
        "screenshot_key",
        "second_screen",
        "offline",
        "no_face",
        "multiple_faces",
        "face_mismatch",
        "camera_covered",
        "face_covered",
        "candidate_out_of_view",
        "second_person",
        "evidence_gap",
        "session_active_elsewhere",
        "left_mid_exam",
        "desk_silent",
        "copy_paste",
        "track_ended",
        "voice_assistant",
    }
)


def event_hash(
    prev_hash: str,
    attempt_id: str,
    seq: int,
    at: datetime,
    kind: str,
    severity: str,
    actor: str,
    data: dict[str, Any],
) -> str:
    body = json.dumps(
        {
            "attempt": attempt_id,
            "seq": seq,
            "at": at.isoformat(),
            "kind": kind,
            "severity": severity,
            "actor": actor,
            "data": data,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(prev_hash.encode() + body.encode()).hexdigest()


# A client's report that waited in its queue (offline, or before login) says how long:
# ``delayed_s``, measured on the client's own clock from when it happened to when it was sent,
# so the client's clock being off does not matter. Longer than an exam day is not believed.
MAX_REPORT_DELAY_S = 12 * 3600


def dated_report(now: datetime, data: dict[str, Any]) -> tuple[datetime, dict[str, Any]]:
    """When a client's event happened, and its data: a queued report is dated back by its
    delay (a drop of the network at 16:08:05 reported at 16:08:35 is shown at 16:08:05), and
    the time it reached the server is kept in its data as ``received_at``."""
    delayed = data.get("delayed_s")
    if (
        isinstance(delayed, bool)
        or not isinstance(delayed, int | float)
        or not 0 < delayed <= MAX_REPORT_DELAY_S
    ):
        return now, data
    return now - timedelta(seconds=delayed), {**data, "received_at": iso(now)}


def severity_of(kind: str) -> str:
    return "violation" if kind in VIOLATION_KINDS else "info"


def append(
    session: Session,
    attempt_id: str,
    kind: str,
    *,
    at: datetime,
    actor: str = "system",
    data: dict[str, Any] | None = None,
    severity: str | None = None,
) -> Event:
    """Append an event. Locks the attempt row so that concurrent appends chain in order."""
    attempt = session.scalars(locked_attempt(attempt_id)).one()
    data = json.loads(json.dumps(data or {}, ensure_ascii=False, default=str))
    severity = severity or severity_of(kind)
    seq = attempt.last_event_seq + 1
    at = at.replace(microsecond=(at.microsecond // 1000) * 1000)  # ms: what every backend keeps
    digest = event_hash(attempt.last_event_hash, attempt_id, seq, at, kind, severity, actor, data)
    event = Event(
        attempt_id=attempt_id,
        seq=seq,
        at=at,
        kind=kind,
        severity=severity,
        actor=actor,
        data=data,
        prev_hash=attempt.last_event_hash,
        hash=digest,
    )
    session.add(event)
    attempt.last_event_seq = seq
    attempt.last_event_hash = digest
    session.flush()
    message = {
        "type": "event",
        "attempt_id": attempt_id,
        "room_id": attempt.room_id,
        "event": event_as_dict(event),
    }
    publish_after_commit(session, f"room:{attempt.room_id}", message)
    publish_after_commit(session, f"attempt:{attempt_id}", message)
    return event


def list_events(session: Session, attempt_id: str, after_seq: int = 0) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.attempt_id == attempt_id, Event.seq > after_seq)
            .order_by(Event.seq)
        )
    )


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


def verify_chain(attempt_id: str, events: Sequence[dict[str, Any]]) -> list[ChainProblem]:
    """Recompute the chain over events as the API lists them; an empty list means intact."""
    problems: list[ChainProblem] = []
    prev = GENESIS_HASH
    for expected_seq, e in enumerate(events, start=1):
        at = datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
        if e["seq"] != expected_seq:
            problems.append(ChainProblem(e["seq"], f"expected seq {expected_seq}"))
        if e["prev_hash"] != prev:
            problems.append(ChainProblem(e["seq"], "prev_hash does not match the previous event"))
        digest = event_hash(
            prev, attempt_id, e["seq"], at, e["kind"], e["severity"], e["actor"], e["data"]
        )
        if digest != e["hash"]:
            problems.append(ChainProblem(e["seq"], "content does not match its hash"))
        prev = e["hash"]
    return problems


def event_as_dict(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "severity": event.severity,
        "actor": event.actor,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
