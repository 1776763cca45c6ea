"""Creating recordings, reading their state, and finalizing them."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invigil.attempts import events
from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError
from invigil.core.storage import BlobStore, scratch_file
from invigil.recordings import keys, status
from invigil.recordings.access import WRITES, Actor, Found, check_upload_window, recording_for
from invigil.recordings.models import FINALIZED, KINDS, OPEN, Chunk, Recording, RecordingAccess
from invigil.recordings.tx import transaction

ASSEMBLE_JOB = "recording.assemble"
CLOSE_OUT_JOB = "recording.close_out"  # recordings/closeout.py
MAX_SEQ = 999_999
# What MediaRecorder (Chrome, Firefox, Safari) produces: WebM/Matroska or MP4, with codecs.
MIME = re.compile(
    r"^(video|audio)/(webm|x-matroska|mp4)"
    r'(\s*;\s*codecs\s*=\s*"?[A-Za-z0-9.,\s]{1,120}"?)?$',
    re.IGNORECASE,
)


def create(
    session: Session,
    ctx: AppContext,
    who: Actor,
    kind: str,
    mime: str,
    client_started_at: datetime | None,
) -> Recording:
    now = ctx.clock.now()
    if kind not in KINDS:
        raise APIError(422, "invalid_kind", "录像类型须为 webcam、screen 或 evidence。")
    if kind not in WRITES.get(who.kind, frozenset()):
        device = "手机佐证端" if kind == "evidence" else "考试电脑"
        raise APIError(403, "forbidden", f"{kind} 录像只能由{device}创建。")
    if not MIME.match(mime.strip()):
        raise APIError(
            422, "unsupported_mime", "不支持的录像格式（须为 WebM 或 MP4）。", mime=mime[:200]
        )
    attempt = session.get(Attempt, who.attempt_id)
    assert attempt is not None
    exam = attempt.exam
    check_upload_window(exam, now, attempt)
    # The desk records from entering on; the phone from binding on (its room sweep comes first).
    if kind != "evidence" and attempt.entered_at is None:
        raise APIError(409, "not_entered", "进入考试后才开始录像。")
    rec = Recording(
        attempt_id=attempt.id,
        kind=kind,
        mime=mime.strip()[:200],
        state=OPEN,
        created_at=now,
        client_started_at=client_started_at,
        created_by=who.kind,
    )
    session.add(rec)
    session.flush()
    schedule_close_out(session, attempt.exam_id, attempt.uploads_close_at, now)
    events.append(
        session,
        attempt.id,
        "recording_started",
        at=now,
        actor=who.kind,
        data={"recording_id": rec.id, "kind": kind, "mime": rec.mime},
    )
    return rec


def schedule_close_out(session: Session, exam_id: str, at: datetime, now: datetime) -> None:
    """Close out the exam's recordings still open at ``at`` (an attempt's upload close)."""
    jobs.enqueue(
        session,
        CLOSE_OUT_JOB,
        {"exam_id": exam_id},
        now=now,
        run_at=at,
        dedupe_key=f"close-out:{exam_id}:{iso(at)}",
    )


def log_staff_read(
    session: Session, ctx: AppContext, who: Actor, found: Found, what: str, byte_range: str | None
) -> None:
    if who.staff is None:
        return
    session.add(
        RecordingAccess(
            at=ctx.clock.now(),
            staff_id=who.staff.id,
            username=who.staff.username,
            recording_id=found.recording.id,
            attempt_id=found.attempt.id,
            what=what,
            byte_range=byte_range[:200] if byte_range else None,
        )
    )


def describe(session: Session, rec: Recording) -> dict[str, Any]:
    received = status.received_seqs(session, rec.id)
    total = session.scalar(select(func.sum(Chunk.size)).where(Chunk.recording_id == rec.id))
    return {
        "id": rec.id,
        "attempt_id": rec.attempt_id,
        "kind": rec.kind,
        "mime": rec.mime,
        "state": rec.state,
        "received": received,
        "bytes": int(total or 0),
        "missing": []
        if rec.state == FINALIZED
        else status.gaps(received, max(received, default=-1)),
        "created_at": iso(rec.created_at),
        "client_started_at": iso(rec.client_started_at) if rec.client_started_at else None,
        "chunks": rec.chunk_count,
        "sha256": rec.sha256,
        "size": rec.size,
        "finalized_at": iso(rec.finalized_at) if rec.finalized_at else None,
        "assembled": rec.media_key is not None,
        "duration_s": rec.duration_s,
    }


# --- finalize --------------------------------------------------------------------------------


def _finalized_answer(rec: Recording, chunks: int, sha256: str) -> dict[str, Any]:
    if rec.chunk_count == chunks and rec.sha256 == sha256:
        return {"state": FINALIZED, "recording_id": rec.id, "chunks": chunks, "size": rec.size}
    raise APIError(
        409,
        "already_finalized",
        "该录像已以不同的分段数或校验值完成上传。",
        chunks=rec.chunk_count,
        sha256=rec.sha256,
    )


def finalize(
    ctx: AppContext, who_of: Callable[[Session], Actor], recording_id: str, chunks: int, sha256: str
) -> dict[str, Any]:
    """Check that chunks 0..N-1 are all held and hash to ``sha256`` in order, write their exact
    join durably, then mark the recording finalized and queue its assembly in one transaction.

    The join is written and stored outside any transaction (it can be large; SQLite would hold
    its writer lock meanwhile, and an upload to S3 takes a while). Its key carries its SHA-256,
    so two finalizes racing store the same bytes under the same key, and a finalize that then
    loses (a late chunk) leaves only an unreferenced blob for the orphan sweep. Chunk rows never
    change, so what was read stays true; only new chunks above N could appear, which the final
    transaction checks under the recording's lock.
    """
    sha256 = sha256.lower()
    with transaction(ctx.db) as session:
        who: Actor = who_of(session)
        found = recording_for(session, who, recording_id, write=True)
        rec, attempt, exam = found.recording, found.attempt, found.exam
        if rec.state == FINALIZED:
            return _finalized_answer(rec, chunks, sha256)
        check_upload_window(exam, ctx.clock.now(), attempt)
        rows = {
            c.seq: (c.blob_key, c.size)
            for c in session.execute(
                select(Chunk.seq, Chunk.blob_key, Chunk.size).where(Chunk.recording_id == rec.id)
            )
        }
    missing = status.gaps(rows, chunks)
    if missing:
        raise APIError(
            409,
            "chunks_missing",
            f"还有 {chunks - len([s for s in rows if s < chunks])} 个分段未上传，请先补传。",
            missing=missing,
        )
    extra = sorted(s for s in rows if s >= chunks)
    if extra:
        raise APIError(
            409,
            "chunk_count_mismatch",
            f"已收到序号不小于 {chunks} 的分段，分段总数不符。",
            extra=extra[: status.MAX_LISTED_GAPS],
        )

    tmp, joined = join_chunks(
        ctx.blobs, ctx.settings.scratch_dir, [rows[i][0] for i in range(chunks)]
    )
    if joined != sha256:
        tmp.unlink(missing_ok=True)
        raise APIError(
            422, "hash_mismatch", "所有分段按序拼接后的 SHA-256 与提交的不一致。", actual=joined
        )
    try:
        size = tmp.stat().st_size
        key = keys.original_key(attempt.id, rec.id, sha256)
        ctx.blobs.put_file(key, tmp)  # durable (stored and acknowledged) before the row names it
        with transaction(ctx.db) as session:
            locked = lock(session, rec.id)
            if locked.state == FINALIZED:  # a concurrent finalize won
                return _finalized_answer(locked, chunks, sha256)
            late = session.scalar(
                select(func.count()).where(Chunk.recording_id == rec.id, Chunk.seq >= chunks)
            )
            if late:
                raise APIError(
                    409, "chunk_count_mismatch", f"已收到序号不小于 {chunks} 的分段，分段总数不符。"
                )
            now = ctx.clock.now()
            mark_finalized(session, locked, chunks, sha256, size, key, now)
            events.append(
                session,
                attempt.id,
                "recording_finalized",
                at=now,
                actor=who.kind,
                data={"recording_id": rec.id, "kind": rec.kind, "chunks": chunks, "bytes": size},
            )
            return {"state": FINALIZED, "recording_id": rec.id, "chunks": chunks, "size": size}
    finally:
        tmp.unlink(missing_ok=True)


def lock(session: Session, recording_id: str) -> Recording:
    """The recording's row, locked and read afresh (what another transaction committed)."""
    return session.scalars(
        select(Recording)
        .where(Recording.id == recording_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def mark_finalized(
    session: Session, rec: Recording, chunks: int, sha256: str, size: int, key: str, now: datetime
) -> None:
    """Record the stored join of chunks 0..chunks-1 as the recording's original, and queue its
    assembly. The caller holds the row's lock and stored the join under ``key`` first."""
    rec.state = FINALIZED
    rec.chunk_count = chunks
    rec.sha256 = sha256
    rec.size = size
    rec.finalized_at = now
    rec.original_key = key
    jobs.enqueue(
        session, ASSEMBLE_JOB, {"recording_id": rec.id}, now=now, dedupe_key=f"assemble:{rec.id}"
    )


# Chunks fetched at once from an object store while finalize joins them: a GET costs a round
# trip (5-10 ms on a LAN), so 600 chunks one after the other kept finalize waiting seconds.
JOIN_FETCHES = 8


def _chunk_bytes(blobs: BlobStore, chunk_keys: list[str]) -> Iterator[bytes]:
    """The chunks' bytes in order: streamed from local disk, fetched a few ahead from S3."""
    if blobs.renames_sources:
        for key in chunk_keys:
            with blobs.open(key) as f:
                while block := f.read(1 << 20):
                    yield block
        return
    with ThreadPoolExecutor(JOIN_FETCHES, thread_name_prefix="join") as pool:
        window: deque[Future[bytes]] = deque()
        keys = iter(chunk_keys)
        for key in itertools.islice(keys, JOIN_FETCHES):
            window.append(pool.submit(blobs.get, key))
        while window:
            data = window.popleft().result()
            for key in itertools.islice(keys, 1):
                window.append(pool.submit(blobs.get, key))
            yield data


def join_chunks(blobs: BlobStore, scratch: Path, chunk_keys: list[str]) -> tuple[Path, str]:
    """The exact in-order concatenation in a scratch file and its SHA-256. Chunks are read from the store, one at a time."""
    fd, tmp = scratch_file(scratch, "join-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for block in _chunk_bytes(blobs, chunk_keys):
                digest.update(block)
                out.write(block)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest()
