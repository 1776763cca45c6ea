"""Assembly: remux the exact join into a seekable file with a duration (stream copy, PyAV).

MediaRecorder's WebM has no duration and no seek index; the same packets written again by
libavformat's Matroska muxer to a seekable file get both. WebM stays WebM (VP8/VP9/AV1 with
Opus/Vorbis), other codecs in Matroska go to MKV, MP4 (Safari) to MP4 with the index up front.

The remux runs on local files on every blob backend: the joined original is copied from the
store to a scratch file (Settings.scratch_dir, never the store), PyAV writes the result to
another, which goes back to the store (S3: a multipart upload when large) under a key that
carries its SHA-256.

Idempotent and safe to run twice at once (the job and an on-demand request): each run writes its
own scratch files and stores its result; the first to take the recording's lock records it, a
later one finds it done and removes its own blob unless it is the same key. Output is
bit-exact, so reruns produce equal bytes (and usually the same key).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av

from invigil.core import jobs
from invigil.core.clock import Clock
from invigil.core.db import Database
from invigil.core.storage import BlobStore, blob_store, scratch_file, seekable_source
from invigil.recordings import keys
from invigil.recordings.models import FINALIZED, Recording
from invigil.recordings.service import ASSEMBLE_JOB, lock
from invigil.recordings.tx import transaction

log = logging.getLogger(__name__)

WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})
# Analysis of a desk recording's audio (analysis/audio_jobs.py), queued with the assembled file.
AUDIO_JOB = "recording.audio"


class AssemblyError(Exception):
    pass


@dataclass(frozen=True)
class Output:
    format: str
    ext: str
    mime: str
    options: dict[str, str]


def choose_output(input_format: str, codecs: set[str]) -> Output:
    if "mp4" in input_format.split(",") or "mov" in input_format.split(","):
        return Output("mp4", "mp4", "video/mp4", {"movflags": "+faststart"})
    if codecs <= WEBM_CODECS:
        return Output("webm", "webm", "video/webm", {})
    return Output("matroska", "mkv", "video/x-matroska", {})


def remux(source: Path | BinaryIO, target: Path) -> tuple[Output, float | None]:
    """Copy every audio/video packet of ``source`` into a new container at ``target``."""
    try:
        with av.open(str(source) if isinstance(source, Path) else source, "r") as inp:
            streams = [s for s in inp.streams if s.type in ("video", "audio")]
            if not streams:
                raise AssemblyError("no audio or video stream")
            out_fmt = choose_output(inp.format.name, {s.codec_context.name for s in streams})
            options = {"fflags": "+bitexact", **out_fmt.options}
            with av.open(str(target), "w", format=out_fmt.format, options=options) as out:
                mapping = {s.index: out.add_stream_from_template(s) for s in streams}
                for packet in inp.demux(streams):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
        with av.open(str(target)) as check:
            duration = check.duration / 1_000_000 if check.duration else None
    except av.FFmpegError as exc:
        raise AssemblyError(str(exc)) from exc
    return out_fmt, duration


def ensure_media(
    db: Database, blobs: BlobStore, clock: Clock, recording_id: str, scratch: Path
) -> Recording:
    """The recording with its remuxed file in place, remuxing now if nobody has yet."""
    with transaction(db) as session:
        rec = session.get(Recording, recording_id)
        if rec is None or rec.state != FINALIZED or rec.original_key is None:
            raise AssemblyError(f"recording {recording_id} is not finalized")
        if rec.media_key is not None and blobs.exists(rec.media_key):
            return rec
        original_key = rec.original_key
        attempt_id = rec.attempt_id
    fd, tmp = scratch_file(scratch, "remux-")
    os.close(fd)
    try:
        with seekable_source(blobs, original_key, scratch, "remux-in-") as source:
            out_fmt, duration = remux(source, tmp)
        digest = hashlib.sha256()
        with tmp.open("rb+") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        key = keys.media_key(attempt_id, recording_id, digest.hexdigest(), out_fmt.ext)
        size = tmp.stat().st_size
        blobs.put_file(key, tmp)  # stored before any row names it
        with transaction(db) as session:
            rec = lock(session, recording_id)
            if rec.media_key is not None and blobs.exists(rec.media_key):
                # Someone else finished first; never replace a file being served.
                if rec.media_key != key:
                    blobs.delete(key)
                return rec
            rec.media_key = key
            rec.media_mime = out_fmt.mime
            rec.media_size = size
            rec.duration_s = duration
            rec.assembled_at = clock.now()
            # Only where the analysis is loaded: a bare recordings setup has no one to run it.
            if rec.kind == "webcam" and jobs.has_handler(AUDIO_JOB):
                jobs.enqueue(
                    session,
                    AUDIO_JOB,
                    {"recording_id": rec.id},
                    now=rec.assembled_at,
                    dedupe_key=f"audio:{rec.id}",
                )
            return rec
    finally:
        tmp.unlink(missing_ok=True)


@jobs.handler(ASSEMBLE_JOB)
def assemble_job(_: Any, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    # The job's own session stays unused until the end: on SQLite touching it would hold the
    # writer lock for the whole remux.
    blobs = blob_store(ctx.settings)
    rec = ensure_media(
        ctx.db, blobs, ctx.clock, str(payload["recording_id"]), ctx.settings.scratch_dir
    )
    log.info("assembled recording %s (%s s)", rec.id, rec.duration_s)
