"""Exporting one candidate's evidence package: a signed zip that ``invigil verify`` checks
offline (see ``docs/evidence.md`` for the layout).

Everything is read for one attempt only (never another candidate's rows or blobs). Metadata is
read in one transaction, so the manifest, the event log and the file list agree even while the
attempt is still live; media are streamed into the zip in blocks, never held in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts import helpchat
from invigil.attempts.events import event_as_dict, list_events
from invigil.attempts.models import Attempt
from invigil.core.clock import ensure_utc, iso
from invigil.core.config import Settings
from invigil.core.db import Database
from invigil.core.storage import BlobStore
from invigil.evidence import signing
from invigil.evidence.models import DataPurge
from invigil.exams.models import Candidate, Exam, Room
from invigil.proctoring.service import notes
from invigil.proctoring.warnings import warnings_for
from invigil.recordings.models import FINALIZED, Chunk, Recording, RecordingAccess, Snapshot

FORMAT = "invigil-evidence/1"
MANIFEST = "manifest.json"
BLOCK = 1 << 20
# Past this a member needs ZIP64 headers, which must be chosen before its data is written.
ZIP64_LIMIT = (1 << 31) - 1
ID = re.compile(r"^[0-9a-f]{32}$")


class EvidenceError(Exception):
    """A package cannot be made (unknown attempt, …); the message is for the admin."""


def server_version() -> str:
    try:
        return version("invigil")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def resolve_attempt(session: Session, ref: str) -> Attempt:
    """An attempt by its id (as the staff API shows it) or by ``EXAMID:TICKET``."""
    ref = ref.strip()
    attempt: Attempt | None = None
    if ID.match(ref):
        attempt = session.get(Attempt, ref)
    elif ":" in ref:
        exam_id, ticket = ref.split(":", 1)
        attempt = session.scalar(
            select(Attempt)
            .join(Candidate, Candidate.id == Attempt.candidate_id)
            .where(Candidate.exam_id == exam_id.strip(), Candidate.ticket == ticket.strip())
        )
    if attempt is None:
        raise EvidenceError(f"找不到考生作答记录：{ref}（应为 attempt_id 或 考试ID:准考证号）")
    return attempt


def _ext_of(mime: str) -> str:
    base = mime.split(";", 1)[0].strip().lower()
    return {
        "video/webm": "webm",
        "audio/webm": "webm",
        "video/mp4": "mp4",
        "audio/mp4": "mp4",
        "video/x-matroska": "mkv",
    }.get(base, "bin")


def _stamp(at: datetime) -> str:
    return ensure_utc(at).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"


@dataclass
class _Source:
    """A member to stream from blobs: one blob, or several joined in order (open recordings)."""

    name: str
    keys: list[str]
    size: int


@dataclass
class _Plan:
    manifest: dict[str, Any]
    json_members: dict[str, bytes] = field(default_factory=dict)
    sources: list[_Source] = field(default_factory=list)


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def _rulings(session: Session, attempt_id: str) -> list[dict[str, Any]]:
    try:
        review = import_module("invigil.review.service")
    except ModuleNotFoundError as exc:
        # The review domain is optional at import time only while it is being built.
        if exc.name not in ("invigil.review.service", "invigil.review"):
            raise
        return []
    result: list[dict[str, Any]] = review.rulings_for_attempt(session, attempt_id)
    return result


def _plan(session: Session, blobs: BlobStore, attempt: Attempt, now: datetime) -> _Plan:
    candidate = session.get(Candidate, attempt.candidate_id)
    exam = session.get(Exam, attempt.exam_id)
    room = session.get(Room, attempt.room_id)
    assert candidate is not None and exam is not None and room is not None
    events = [event_as_dict(e) for e in list_events(session, attempt.id)]
    purges = list(
        session.scalars(
            select(DataPurge).where(DataPurge.attempt_id == attempt.id).order_by(DataPurge.at)
        )
    )
    plan = _Plan(manifest={})

    recordings: list[dict[str, Any]] = []
    per_kind: dict[str, int] = {}
    recs = session.scalars(
        select(Recording)
        .where(Recording.attempt_id == attempt.id)
        .order_by(Recording.created_at, Recording.id)
    )
    for rec in recs:
        per_kind[rec.kind] = per_kind.get(rec.kind, 0) + 1
        stem = f"recordings/{rec.kind}-{per_kind[rec.kind]}"
        chunks = list(
            session.scalars(select(Chunk).where(Chunk.recording_id == rec.id).order_by(Chunk.seq))
        )
        entry: dict[str, Any] = {
            "id": rec.id,
            "kind": rec.kind,
            "mime": rec.mime,
            "state": rec.state,
            "created_at": iso(rec.created_at),
            "finalized_at": iso(rec.finalized_at) if rec.finalized_at else None,
            "chunk_count": rec.chunk_count,
            "chunks_received": [c.seq for c in chunks],
            "sha256": rec.sha256,
            "size": rec.size,
            "duration_s": rec.duration_s,
            "original": None,
            "media": None,
            "partial": None,
            "after_gap": None,
            "closed_by": rec.closed_by,
            "purged": False,
        }
        if rec.state == FINALIZED:
            if rec.original_key and blobs.exists(rec.original_key):
                name = f"{stem}.original.{_ext_of(rec.mime)}"
                plan.sources.append(_Source(name, [rec.original_key], blobs.size(rec.original_key)))
                entry["original"] = name
            else:
                entry["purged"] = True
            if rec.media_key and blobs.exists(rec.media_key):
                name = f"{stem}.{rec.media_key.rsplit('.', 1)[-1]}"
                plan.sources.append(_Source(name, [rec.media_key], blobs.size(rec.media_key)))
                entry["media"] = name
            # Closed by the server at upload close: the chunks after the first gap were not
            # joined (recordings/closeout.py), and go into the package as they arrived.
            rest = [
                c.blob_key
                for c in chunks
                if rec.closed_by == "server"
                and c.seq >= (rec.chunk_count or 0)
                and c.blob_key
                and blobs.exists(c.blob_key)
            ]
            if rest:
                name = f"{stem}.after-gap.{_ext_of(rec.mime)}"
                plan.sources.append(_Source(name, rest, sum(blobs.size(k) for k in rest)))
                entry["after_gap"] = name
        else:
            # Never finalized (a crash, a lost phone): what arrived, joined in order, so the
            # review sees it; the chunk list above shows any gaps.
            keys = [c.blob_key for c in chunks if c.blob_key and blobs.exists(c.blob_key)]
            if keys:
                name = f"{stem}.partial.{_ext_of(rec.mime)}"
                plan.sources.append(_Source(name, keys, sum(blobs.size(k) for k in keys)))
                entry["partial"] = name
            elif chunks:
                entry["purged"] = True
        recordings.append(entry)

    snapshots: list[dict[str, Any]] = []
    used: set[str] = set()
    snaps = session.scalars(
        select(Snapshot)
        .where(Snapshot.attempt_id == attempt.id)
        .order_by(Snapshot.taken_at, Snapshot.id)
    )
    for snap in snaps:
        file: str | None = None
        if snap.blob_key and blobs.exists(snap.blob_key):
            file = f"snapshots/{snap.kind}/{_stamp(snap.taken_at)}.jpg"
            if file in used:
                file = f"snapshots/{snap.kind}/{_stamp(snap.taken_at)}-{snap.id[:8]}.jpg"
            used.add(file)
            plan.sources.append(_Source(file, [snap.blob_key], blobs.size(snap.blob_key)))
        snapshots.append(
            {
                "id": snap.id,
                "kind": snap.kind,
                "at": iso(snap.taken_at),
                "size": snap.size,
                "sha256": snap.sha256,
                "file": file,
                "purged": file is None,
            }
        )

    access = [
        {
            "at": iso(a.at),
            "staff": a.username,
            "recording_id": a.recording_id,
            "what": a.what,
            "range": a.byte_range,
        }
        for a in session.scalars(
            select(RecordingAccess)
            .where(RecordingAccess.attempt_id == attempt.id)
            .order_by(RecordingAccess.at, RecordingAccess.id)
        )
    ]
    plan.json_members = {
        "events.jsonl": b"".join(
            json.dumps(e, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
            + b"\n"
            for e in events
        ),
        "rulings.json": _json(_rulings(session, attempt.id)),
        "access_log.json": _json(access),
        "notes.json": _json(notes(session, attempt)),
        "warnings.json": _json(warnings_for(session, attempt.id)),
        "help.json": _json(helpchat.messages(session, attempt)),
    }
    plan.manifest = {
        "format": FORMAT,
        "created_at": iso(now),
        "server": {"name": "invigil", "version": server_version()},
        "exam": {
            "id": exam.id,
            "title": exam.title,
            "starts_at": iso(exam.starts_at),
            "deadline": iso(exam.deadline),
        },
        "candidate": {
            "ticket": candidate.ticket,
            "name": candidate.name,
            "room": room.code,
            "room_name": room.name,
        },
        "attempt": {
            "id": attempt.id,
            "lot": attempt.lot_number,
            "face_verified_at": iso(attempt.face_verified_at) if attempt.face_verified_at else None,
            "entered_at": iso(attempt.entered_at) if attempt.entered_at else None,
            "finished_at": iso(attempt.finished_at) if attempt.finished_at else None,
        },
        "event_chain": {
            "count": len(events),
            "head_seq": attempt.last_event_seq,
            "head_hash": attempt.last_event_hash,
        },
        "recordings": recordings,
        "snapshots": snapshots,
        "purged": (
            {
                "at": iso(purges[0].at),
                "purges": [
                    {"at": iso(p.at), "actor": p.actor, "summary": p.summary} for p in purges
                ],
            }
            if purges
            else None
        ),
    }
    return plan


def _zipinfo(name: str, when: datetime) -> zipfile.ZipInfo:
    t = ensure_utc(when)
    info = zipfile.ZipInfo(name, date_time=(t.year, t.month, t.day, t.hour, t.minute, t.second))
    # Stored, never deflated: a changed byte of a member's data is then always a changed byte
    # of its content, which the manifest's SHA-256 names (a flipped padding bit of a deflate
    # stream can leave the content and its CRC as they were). Media are compressed already.
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o100644 << 16
    return info


def _stream(blobs: BlobStore, keys: Iterable[str]) -> Iterator[bytes]:
    for key in keys:
        with blobs.open(key) as f:
            while block := f.read(BLOCK):
                yield block


@dataclass(frozen=True)
class ExportResult:
    path: Path
    attempt_id: str
    files: int
    size: int
    sha256: str
    public_key: str


def export_package(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    attempt_ref: str,
    out: Path,
    now: datetime,
) -> ExportResult:
    """Write the attempt's signed evidence package to ``out`` (atomically: temp file, rename)."""
    with db.session() as session, session.begin():
        attempt = resolve_attempt(session, attempt_ref)
        plan = _plan(session, blobs, attempt, now)
    key = signing.signing_key(settings.effective_secret())
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=".evidence-", suffix=".zip.tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as raw:
            files = _write_zip(raw, blobs, plan, now)
            file_sha256 = sign_in_place(raw, key)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(
        path=out,
        attempt_id=plan.manifest["attempt"]["id"],
        files=files,
        size=out.stat().st_size,
        sha256=file_sha256,
        public_key=signing.public_key_text(key.public_key()),
    )


def _write_zip(raw: Any, blobs: BlobStore, plan: _Plan, now: datetime) -> int:
    listed: list[dict[str, Any]] = []
    with zipfile.ZipFile(raw, "w", allowZip64=True) as zf:
        for name, data in plan.json_members.items():
            zf.writestr(_zipinfo(name, now), data)
            listed.append(
                {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
        for source in plan.sources:
            info = _zipinfo(source.name, now)
            digest, size = hashlib.sha256(), 0
            with zf.open(info, "w", force_zip64=source.size > ZIP64_LIMIT) as dst:
                for block in _stream(blobs, source.keys):
                    digest.update(block)
                    size += len(block)
                    dst.write(block)
            listed.append({"path": source.name, "size": size, "sha256": digest.hexdigest()})
        manifest = {**plan.manifest, "files": sorted(listed, key=lambda f: f["path"])}
        zf.writestr(_zipinfo(MANIFEST, now), _json(manifest))
        zf.comment = signing.PLACEHOLDER
    return len(listed) + 1


def sign_in_place(raw: Any, key: Any) -> str:
    """Hash every byte before the comment, then write the signature block over the placeholder
    (same length, so the end record's comment length already fits). Returns the whole file's
    SHA-256 (the signed bytes' hash carried on over the block, saving another read)."""
    raw.seek(0, os.SEEK_END)
    end = raw.tell()
    signed_len = end - signing.BLOCK_LEN
    raw.seek(signed_len)
    if raw.read() != signing.PLACEHOLDER:
        raise EvidenceError("zip comment is not where it was written")
    raw.seek(0)
    digest = hashlib.sha256()
    left = signed_len
    while left:
        block = raw.read(min(BLOCK, left))
        digest.update(block)
        left -= len(block)
    block = signing.sign_block(key, digest.digest())
    raw.seek(signed_len)
    raw.write(block)
    digest.update(block)
    return digest.hexdigest()
