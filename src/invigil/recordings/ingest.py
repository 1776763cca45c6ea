"""The chunk upload hot path: ``PUT /api/v1/recordings/{id}/chunks/{seq}``.

1. Cheap checks of the path and headers (no token at all: 401 before any byte is read).
2. The body streams to a scratch file (Settings.scratch_dir) while it is hashed; a wrong hash
   is 422 and the file is removed. Nothing about the stored chunk is touched before this point.
3. In the next group commit (batch.py), from rows it looked up for all its uploads at once: the
   token, the recording, the upload window, whether this seq is held (same bytes 200, other
   bytes 409, the scratch file removed either way); else insert the chunk row (unique per
   recording and seq; one INSERT for the batch's chunks) under a content-addressed key, and
   only if it went in store the file under that key (local: renamed into place, then one
   syncfs for the whole batch; S3: a PUT with Content-MD5 that the store acknowledged),
   commit. Only then 201.

A crash between the store's write and the commit leaves an unreferenced blob, never a row
without its bytes; the retry stores identical bytes under the same key. Two identical uploads
racing store the same bytes under the same key; the unique key of the row picks one 201 and
one 200. The chunk's bytes are written once on this machine (the scratch file), whatever the
backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable, Hashable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Table, bindparam, select, tuple_
from sqlalchemy.orm import Session

from invigil.core.context import AppContext
from invigil.core.errors import APIError, unauthorized
from invigil.core.storage import scratch_file
from invigil.recordings import batch, keys
from invigil.recordings.access import (
    ID,
    actor,
    check_upload_window,
    live_writer,
    recording_for,
    writers,
)
from invigil.recordings.batch import Batch, Later, Lookup
from invigil.recordings.models import FINALIZED, Chunk, Recording
from invigil.recordings.service import MAX_SEQ

SEQ = re.compile(r"^[0-9]{1,7}$")
SHA = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_seq(raw: str) -> int:
    if not SEQ.match(raw) or int(raw) > MAX_SEQ:
        raise APIError(
            422, "invalid_seq", f"分段序号须为 0 到 {MAX_SEQ} 之间的整数。", seq=raw[:20]
        )
    return int(raw)


def parse_sha(raw: str | None) -> str:
    if raw is None:
        raise APIError(422, "missing_hash", "缺少 X-Chunk-SHA256 请求头。")
    if not SHA.match(raw.strip()):
        raise APIError(422, "invalid_hash", "X-Chunk-SHA256 须为 64 位十六进制 SHA-256。")
    return raw.strip().lower()


def _too_large(limit: int) -> APIError:
    return APIError(413, "too_large", f"分段过大（上限 {limit} 字节）。", limit=limit)


def _conflict(seq: int) -> APIError:
    return APIError(409, "chunk_conflict", f"分段 {seq} 已存有不同的内容，未作改动。", seq=seq)


def _chunk_work(
    ctx: AppContext,
    request: Request,
    recording_id: str,
    seq: int,
    tmp: Path,
    sha256: str,
    size: int,
    token: str | None,
) -> Callable[[Batch], int | Later]:
    """One upload's part of a group commit: 201 stored, 200 already held, else an APIError."""

    def work(batch: Batch) -> int | Later:
        session = batch.session
        now = ctx.clock.now()
        fast = _fast_check(batch, token, recording_id, seq, now)
        if fast is None:  # anything unusual: the full checks, with their precise errors
            who = actor(session, ctx, request, ("candidate", "phone", "staff"))
            found = recording_for(session, who, recording_id, write=True, lock=True)
            check_upload_window(found.exam, now, found.attempt)
            attempt_id, state = found.attempt.id, found.recording.state
            held = _held(session, recording_id, seq)
        else:
            attempt_id, state, held = fast
        if held is not None:
            if held != sha256:
                raise _conflict(seq)
            return 200
        if state == FINALIZED:
            raise APIError(409, "recording_finalized", "该录像已完成上传，不能再追加分段。")
        key = keys.chunk_key(attempt_id, recording_id, seq, sha256)
        row = {
            "recording_id": recording_id,
            "seq": seq,
            "size": size,
            "sha256": sha256,
            "blob_key": key,
            "received_at": now,
        }
        tried = batch.insert_new(CHUNKS, row)

        def stored(batch: Batch) -> int:
            if tried and batch.was_inserted(CHUNKS, (recording_id, seq)):
                batch.store(ctx.blobs, key, tmp)  # stored before the commit, or nothing commits
                return 201
            # The row exists already: an upload of this seq earlier in this batch, or another
            # process's that committed first (PostgreSQL: the insert waited). Its bytes are
            # stored (or are being stored with this batch).
            if _held(session, recording_id, seq) == sha256:
                return 200  # same bytes, same content-addressed blob
            raise _conflict(seq)

        return Later(stored)

    return work


CHUNKS = cast(Table, Chunk.__table__)
# The recordings of a batch's chunks, locked against finalize (FOR SHARE: uploads share the row,
# finalize takes it exclusively; SQLite serializes anyway), each with whether the chunk's seq
# is held already and by what bytes.
_RECORDINGS = (
    select(
        Recording.id, Recording.attempt_id, Recording.kind, Recording.state, Chunk.seq, Chunk.sha256
    )
    .outerjoin(
        Chunk,
        (Chunk.recording_id == Recording.id)
        & tuple_(Chunk.recording_id, Chunk.seq).in_(bindparam("pairs", expanding=True)),
    )
    .where(Recording.id.in_(bindparam("ids", expanding=True)))
    .with_for_update(read=True, of=Recording)
)


def recordings(conn: Connection, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """The group commit's lookup for its chunks: per (recording, seq), the recording's attempt,
    kind and state, and the SHA-256 of the chunk held at that seq (None: not held)."""
    ids = sorted({rid for rid, _ in wanted})  # one order for every process: no lock cycles
    found: dict[str, tuple[str, str, str]] = {}
    held: dict[tuple[str, int], str] = {}
    for rid, attempt_id, kind, state, seq, sha256 in conn.execute(
        _RECORDINGS, {"pairs": wanted, "ids": ids}
    ):
        found[rid] = (attempt_id, kind, state)
        if seq is not None:
            held[rid, seq] = sha256
    return {(rid, seq): (*found[rid], held.get((rid, seq))) for rid, seq in wanted if rid in found}


def _fast_check(
    batch: Batch, token: str | None, recording_id: str, seq: int, now: datetime
) -> tuple[str, str, str | None] | None:
    """The common case, from what the batch looked up: a live desk or phone token writing its
    own recording within the upload window. Returns (attempt_id, state, held sha256) or None
    for anything else, which the full checks then refuse with the right error."""
    rec = batch.lookup(recordings, (recording_id, seq))
    if token is None or rec is None:
        return None
    writer = batch.lookup(writers, token)
    rec_attempt, rec_kind, state, held = rec
    if writer is None or writer.attempt_id != rec_attempt:
        return None
    if not live_writer(batch, writer, rec_kind, now):
        return None
    return rec_attempt, state, held


def _held(session: Session, recording_id: str, seq: int) -> str | None:
    return session.scalar(
        select(Chunk.sha256).where(Chunk.recording_id == recording_id, Chunk.seq == seq)
    )


async def put_chunk(
    request: Request, recording_id: str, seq_raw: str, token: str | None
) -> JSONResponse:
    """``token``: the keyed digest of the request's bearer token (api._token_gate made it)."""
    ctx: AppContext = request.app.state.ctx
    limit = ctx.settings.max_upload_bytes
    if not request.headers.get("authorization"):
        raise unauthorized()
    if not ID.match(recording_id):
        raise APIError(404, "not_found", "录像不存在。")
    seq = parse_seq(seq_raw)
    sha256 = parse_sha(request.headers.get("x-chunk-sha256"))
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise APIError(400, "bad_request", "Content-Length 不正确。")
        if int(length) > limit:
            raise _too_large(limit)
        if int(length) == 0:
            raise APIError(422, "empty_chunk", "分段内容为空。")

    fd, tmp = scratch_file(ctx.settings.scratch_dir, "chunk-")
    owned = True  # fd still ours to close
    try:
        digest = hashlib.sha256()
        size = 0
        async for piece in request.stream():
            if not piece:
                continue
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            digest.update(piece)
            view = memoryview(piece)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        if size == 0:
            raise APIError(422, "empty_chunk", "分段内容为空。")
        if digest.hexdigest() != sha256:
            raise APIError(422, "hash_mismatch", "分段内容与 X-Chunk-SHA256 不符，未保存，请重传。")
        owned = False
        # Not fsynced here: the store makes it durable when the group commit stores it (local
        # disk: one syncfs for the whole batch; S3: the store's acknowledgement).
        os.close(fd)
        work = _chunk_work(ctx, request, recording_id, seq, tmp, sha256, size, token)
        needs: list[tuple[Lookup, Hashable]] = [(recordings, (recording_id, seq))]
        if token is not None:
            needs.append((writers, token))
        status = await asyncio.wrap_future(batch.submit(ctx.db, work, needs))
    finally:
        if owned:
            os.close(fd)
        tmp.unlink(missing_ok=True)
    body: dict[str, Any] = {"recording_id": recording_id, "seq": seq, "size": size}
    body["stored"] = "created" if status == 201 else "already_held"
    return JSONResponse(body, status_code=status)
