"""Files a crash left behind, found and removed.

A chunk or snapshot is written, fsynced and renamed into place *before* its row is committed
(so an acknowledgement always has its bytes). A crash between the rename and the commit leaves
a file no row points to; a crash while a body streams in leaves a temp file. Neither is data
anyone was promised — the client never got its acknowledgement and sends the chunk again —
but they fill the disk. A file counts as an orphan only when no row names it *and* it is older
than a grace period, so an upload between its rename and its commit is never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.core.storage import LocalBlobStore
from invigil.recordings.models import Chunk, Snapshot

GRACE = timedelta(hours=1)


@dataclass
class Orphans:
    files: list[Path] = field(default_factory=list)
    bytes: int = 0


def _old_files(folder: Path, before: float) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime < before]


def find(session: Session, blobs: LocalBlobStore, grace: timedelta = GRACE) -> Orphans:
    """Chunk and snapshot files no row names, and stale temp files, older than `grace`."""
    before = time.time() - grace.total_seconds()
    known = set(session.scalars(select(Chunk.blob_key)))
    known.update(session.scalars(select(Snapshot.blob_key)))
    found = Orphans()
    candidates = _old_files(blobs.temp_dir(), before)
    for p in _old_files(blobs.root / "recordings", before):
        # Joined originals and remuxed media are rebuilt from the chunks; only chunks count.
        if p.parent.name == "chunks":
            candidates.append(p)
    candidates += _old_files(blobs.root / "snapshots", before)
    for p in candidates:
        key = p.relative_to(blobs.root).as_posix()
        if key not in known:
            found.files.append(p)
            found.bytes += p.stat().st_size
    return found


def remove(orphans: Orphans) -> int:
    removed = 0
    for p in orphans.files:
        try:
            p.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
