"""What each stream holds: per recording the chunks received, the gaps, finalized or not."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invigil.core.clock import iso
from invigil.recordings.models import FINALIZED, Chunk, Recording

MAX_LISTED_GAPS = 1000


def gaps(held: Iterable[int], upto: int) -> list[int]:
    """Sequence numbers below ``upto`` that are not held."""
    have = set(held)
    return [i for i in range(upto) if i not in have][:MAX_LISTED_GAPS]


def received_seqs(session: Session, recording_id: str) -> list[int]:
    return list(
        session.scalars(
            select(Chunk.seq).where(Chunk.recording_id == recording_id).order_by(Chunk.seq)
        )
    )


def summaries(session: Session, attempt_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every recording of the given attempts, oldest first, with what it holds."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not attempt_ids:
        return out
    recs = list(
        session.scalars(
            select(Recording)
            .where(Recording.attempt_id.in_(attempt_ids))
            .order_by(Recording.attempt_id, Recording.created_at, Recording.id)
        )
    )
    if not recs:
        return out
    stats = {
        rid: (count, total or 0, top)
        for rid, count, total, top in session.execute(
            select(Chunk.recording_id, func.count(), func.sum(Chunk.size), func.max(Chunk.seq))
            .where(Chunk.recording_id.in_([r.id for r in recs]))
            .group_by(Chunk.recording_id)
        ).all()
    }
    for rec in recs:
        count, total, top = stats.get(rec.id, (0, 0, None))
        if rec.state == FINALIZED:
            missing: list[int] = []
        elif top is not None and count != top + 1:
            missing = gaps(received_seqs(session, rec.id), top)
        else:
            missing = []
        out[rec.attempt_id].append(
            {
                "id": rec.id,
                "kind": rec.kind,
                "mime": rec.mime,
                "state": rec.state,
                "created_at": iso(rec.created_at),
                "client_started_at": iso(rec.client_started_at) if rec.client_started_at else None,
                "received": count,
                "bytes": int(total),
                "last_seq": top,
                "missing": missing,
                "chunks": rec.chunk_count,
                "finalized_at": iso(rec.finalized_at) if rec.finalized_at else None,
                "closed_by": rec.closed_by,
                "assembled": rec.media_key is not None,
                "duration_s": rec.duration_s,
            }
        )
    return out


def for_attempt(session: Session, attempt_id: str) -> list[dict[str, Any]]:
    return summaries(session, [attempt_id]).get(attempt_id, [])


def expected_kinds(evidence_camera: bool) -> tuple[str, ...]:
    return ("webcam", "screen", "evidence") if evidence_camera else ("webcam", "screen")


def problems(recordings: list[dict[str, Any]], evidence_camera: bool) -> list[dict[str, Any]]:
    """What is missing for an attempt: a stream never recorded, a recording not finalized, or
    one the server closed at upload close with what it held (recordings/closeout.py)."""
    found: list[dict[str, Any]] = []
    kinds = {r["kind"] for r in recordings}
    for kind in expected_kinds(evidence_camera):
        if kind not in kinds:
            found.append({"kind": kind, "recording_id": None, "reason": "no_recording"})
    for r in recordings:
        if r["closed_by"] == "server":
            found.append(
                {
                    "kind": r["kind"],
                    "recording_id": r["id"],
                    "reason": "closed_by_server",
                    "received": r["received"],
                    "chunks": r["chunks"],  # joined into what is played (0: nothing playable)
                    "bytes": r["bytes"],
                }
            )
        elif r["state"] != FINALIZED:
            found.append(
                {
                    "kind": r["kind"],
                    "recording_id": r["id"],
                    "reason": "not_finalized",
                    "received": r["received"],
                    "bytes": r["bytes"],
                    "last_seq": r["last_seq"],
                    "missing": r["missing"],
                }
            )
    return found
