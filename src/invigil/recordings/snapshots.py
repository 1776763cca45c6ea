"""Snapshots: a JPEG of one stream every few seconds, for the live console and for analysis.

Each is stored durably with the server's time; all are kept for review. The latest per
(attempt, kind) is one index lookup. Analysis is queued as a ``snapshot.analyse`` job only once
a handler for it is registered (the analysis work comes later); until then nothing is queued,
so no job sits pending for a handler that does not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.db import new_id
from invigil.core.errors import APIError, unauthorized
from invigil.core.storage import scratch_file
from invigil.recordings import batch, keys
from invigil.recordings.access import (
    WRITES,
    actor,
    bearer_digest,
    check_upload_window,
    live_writer,
    writers,
)
from invigil.recordings.batch import Batch
from invigil.recordings.models import KINDS, Snapshot

ANALYSE_JOB = "snapshot.analyse"
# Screen snapshots are for the live console only: no face or room to analyse in them.
ANALYSED_KINDS = frozenset({"webcam", "evidence"})
SNAPSHOTS = cast(Table, Snapshot.__table__)
JPEG_MAGIC = b"\xff\xd8\xff"


def analysis_registered() -> bool:
    return jobs.has_handler(ANALYSE_JOB)


def _write_temp(ctx: AppContext, data: bytes) -> Path:
    fd, path = scratch_file(ctx.settings.scratch_dir, "snap-")
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return path


def _snapshot_work(
    ctx: AppContext,
    request: Request,
    kind: str,
    tmp: Path,
    size: int,
    sha256: str,
    token: str | None,
) -> Callable[[Batch], dict[str, Any]]:
    def work(batch: Batch) -> dict[str, Any]:
        now = ctx.clock.now()
        # The common case, from the batch's lookup: a live desk or phone token sending its own
        # stream's snapshot within the upload window (its own extra time included). Anything
        # else goes through the full checks, which refuse it with the right error.
        writer = batch.lookup(writers, token)
        if live_writer(batch, writer, kind, now):
            attempt_id = writer.attempt_id
        else:
            attempt_id = _writer(batch.session, ctx, request, kind, now)
        snapshot_id = new_id()
        key = keys.snapshot_key(attempt_id, kind, snapshot_id)
        batch.store(ctx.blobs, key, tmp)  # durable before the commit
        # Inserted with the batch's other snapshots (and their jobs) in one statement each.
        row = {"id": snapshot_id, "attempt_id": attempt_id, "kind": kind, "taken_at": now}
        batch.insert(SNAPSHOTS, {**row, "blob_key": key, "size": size, "sha256": sha256})
        if kind in ANALYSED_KINDS and analysis_registered():
            batch.insert(jobs.JOBS, jobs.new_row(ANALYSE_JOB, {"snapshot_id": snapshot_id}, now))
        return {"snapshot_id": snapshot_id, "kind": kind, "at": iso(now)}

    return work


def _writer(session: Session, ctx: AppContext, request: Request, kind: str, now: datetime) -> str:
    """The attempt a snapshot of ``kind`` goes to, by the full checks: each refusal with its
    own error."""
    who = actor(session, ctx, request, ("candidate", "phone"))
    if kind not in WRITES[who.kind]:
        device = "手机佐证端" if kind == "evidence" else "考试电脑"
        raise APIError(403, "forbidden", f"{kind} 截图只能由{device}上传。")
    attempt = session.get(Attempt, who.attempt_id)
    assert attempt is not None
    check_upload_window(attempt.exam, now, attempt)
    return attempt.id


async def post_snapshot(request: Request) -> JSONResponse:
    ctx: AppContext = request.app.state.ctx
    limit = ctx.settings.max_photo_bytes
    if not request.headers.get("authorization"):
        raise unauthorized()
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + 64 * 1024:
        raise APIError(413, "too_large", f"截图过大（上限 {limit} 字节）。", limit=limit)
    async with request.form(max_files=1, max_fields=4, max_part_size=64 * 1024) as form:
        kind = form.get("kind")
        image = form.get("image")
        if not isinstance(kind, str) or kind not in KINDS:
            raise APIError(422, "invalid_kind", "截图类型须为 webcam、screen 或 evidence。")
        if not isinstance(image, UploadFile):
            raise APIError(422, "missing_image", "缺少截图文件 image。")
        data = await image.read(limit + 1)
    if len(data) > limit:
        raise APIError(413, "too_large", f"截图过大（上限 {limit} 字节）。", limit=limit)
    if not data.startswith(JPEG_MAGIC):
        raise APIError(422, "not_jpeg", "截图须为 JPEG 图片。")
    tmp = _write_temp(ctx, data)  # a page-cache write of a few dozen KB: no thread hop
    try:
        sha256 = hashlib.sha256(data).hexdigest()
        token = bearer_digest(ctx, request)
        work = _snapshot_work(ctx, request, kind, tmp, len(data), sha256, token)
        needs = [(writers, token)] if token is not None else []
        body = await asyncio.wrap_future(batch.submit(ctx.db, work, needs))
    finally:
        tmp.unlink(missing_ok=True)
    return JSONResponse(body, status_code=201)


def latest(session: Session, attempt_ids: list[str]) -> dict[str, dict[str, Snapshot]]:
    """The newest snapshot per (attempt, kind): what the live console shows."""
    if not attempt_ids:
        return {}
    newest = (
        select(Snapshot.attempt_id, Snapshot.kind, func.max(Snapshot.taken_at).label("at"))
        .where(Snapshot.attempt_id.in_(attempt_ids))
        .group_by(Snapshot.attempt_id, Snapshot.kind)
        .subquery()
    )
    rows = session.scalars(
        select(Snapshot)
        .join(
            newest,
            (Snapshot.attempt_id == newest.c.attempt_id)
            & (Snapshot.kind == newest.c.kind)
            & (Snapshot.taken_at == newest.c.at),
        )
        .order_by(Snapshot.id)
    )
    out: dict[str, dict[str, Snapshot]] = {}
    for snap in rows:
        out.setdefault(snap.attempt_id, {})[snap.kind] = snap
    return out


def describe(snap: Snapshot) -> dict[str, Any]:
    return {
        "id": snap.id,
        "kind": snap.kind,
        "at": iso(snap.taken_at),
        "size": snap.size,
        "url": f"/api/v1/snapshots/{snap.id}",
    }
