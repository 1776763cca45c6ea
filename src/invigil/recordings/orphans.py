"""Blobs and scratch files a crash left behind, found and removed.

A chunk or snapshot is stored (local disk: renamed into place; S3: PUT) *before* its row is
committed, so an acknowledgement always has its bytes. A crash between the two, or a group
commit that failed after storing, leaves a blob no row names; a finalize or remux that lost a
race leaves a joined original or media blob nobody names; a crash while a body streams in
leaves a scratch file. None of it is data anyone was promised — the client never got its
acknowledgement and sends the chunk again — but it fills the disk or the bucket. A blob counts
as an orphan only when no row names it *and* it is older than a grace period, so an upload
between its write and its commit is never touched. Works the same on every blob backend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.core.storage import BlobStore
from invigil.recordings.models import Chunk, Recording, Snapshot

GRACE = timedelta(hours=1)
PREFIXES = ("recordings", "snapshots")


@dataclass
class Orphans:
    keys: list[str] = field(default_factory=list)  # blobs in the store
    files: list[Path] = field(default_factory=list)  # scratch files on this machine
    bytes: int = 0


def _old_files(folder: Path, before: float) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime < before)


def find(
    session: Session, blobs: BlobStore, scratch: Path | None, grace: timedelta = GRACE
) -> Orphans:
    """Blobs under recordings/ and snapshots/ that no row names, and stale scratch files,
    older than `grace`."""
    before = time.time() - grace.total_seconds()
    known = set(session.scalars(select(Chunk.blob_key)))
    known.update(session.scalars(select(Snapshot.blob_key)))
    for original, media in session.execute(select(Recording.original_key, Recording.media_key)):
        known.update(k for k in (original, media) if k)
    found = Orphans()
    for prefix in PREFIXES:
        for info in blobs.list_prefix(prefix):
            if info.modified < before and info.key not in known:
                found.keys.append(info.key)
                found.bytes += info.size
    if scratch is not None:
        for p in _old_files(scratch, before):
            found.files.append(p)
            found.bytes += p.stat().st_size
    return found


def remove(blobs: BlobStore, orphans: Orphans) -> int:
    removed = 0
    for key in orphans.keys:
        blobs.delete(key)
        removed += 1
    for p in orphans.files:
        try:
            p.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
