"""Group commit: many uploads acknowledged by one transaction and one commit.

Every chunk and snapshot needs a short transaction (the token, the recording, the row). Run one
by one, each pays a BEGIN, a commit (an fsync of the database log) and, on SQLite, a turn of the
single writer lock; under load the turns queued up and the latency was all waiting (see
docs/benchmarks.md). Here one committer thread per process takes whatever uploads arrived while
the previous batch committed, runs each one's work in one transaction, fsyncs the directories
their files were renamed into, commits once, and only then answers each of them: nothing is
acknowledged before it is durable, exactly as before.

An item's work raises :class:`APIError` to refuse just that upload (an ``OSError`` from moving its
file fails just that upload too; items move their file before they write any row). Any other
error, a database error above all, fails the whole batch: nothing of it is committed, and each
of its uploads gets that error (a 500) and is retried by its client.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.orm import Session

from invigil.core import metrics
from invigil.core.db import Database
from invigil.core.errors import APIError
from invigil.recordings.tx import transaction

log = logging.getLogger(__name__)
MAX_BATCH = 256


@dataclass
class Batch:
    """What the items of one batch share: the session, and directories to fsync before commit."""

    session: Session
    dirs: set[Path] = field(default_factory=set)
    # Files to delete once the batch is over (losers of a conflict), whatever its outcome.
    discard: list[Path] = field(default_factory=list)

    def move_into_place(self, source: Path, target: Path) -> None:
        if target.parent not in _made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            if len(_made_dirs) > 10_000:
                _made_dirs.clear()
            _made_dirs.add(target.parent)
        try:
            os.replace(source, target)
        except FileNotFoundError:  # the folder went away since we made it
            if not source.exists():
                raise
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        self.dirs.add(target.parent)


Work = Callable[[Batch], Any]
# Directories known to exist (only the committer thread touches this).
_made_dirs: set[Path] = set()


@dataclass
class _Item:
    work: Work
    future: Future[Any]


class Committer:
    """One thread per process and database; it ends after a while without work."""

    IDLE_SECONDS = 10.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="invigil-group-commit", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with _guard:  # submit() puts under the same lock: nothing can slip in now
                    if self.queue.empty():
                        _committers.pop(self.db, None)
                        return
                continue
            items = [first]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(items)

    def _commit(self, items: list[_Item]) -> None:
        started = time.perf_counter()
        outcomes: list[tuple[bool, Any]] = []
        batch: Batch | None = None
        try:
            with transaction(self.db) as session:
                batch = Batch(session)
                for item in items:
                    try:
                        outcomes.append((True, item.work(batch)))
                    except (APIError, OSError) as exc:
                        # Refused, or its file could not be moved (before any of its writes):
                        # only this upload fails. A database error fails the batch (below).
                        outcomes.append((False, exc))
                for folder in batch.dirs:
                    _fsync_dir(folder)
            # Committed; observed before anyone is answered, so a scrape after an ack counts it.
            metrics.observe_batch(len(items), time.perf_counter() - started)
        except BaseException as exc:  # nothing of this batch was committed
            log.exception("group commit of %d uploads failed", len(items))
            for item in items:
                item.future.set_exception(exc)
            return
        finally:
            for path in batch.discard if batch else ():
                path.unlink(missing_ok=True)
        for item, (ok, value) in zip(items, outcomes, strict=True):
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_committers: WeakKeyDictionary[Database, Committer] = WeakKeyDictionary()
_guard = threading.Lock()


def submit(db: Database, work: Work) -> Future[Any]:
    """Queue ``work`` for the next group commit; the future resolves once it is committed."""
    future: Future[Any] = Future()
    with _guard:
        found = _committers.get(db)
        if found is None:
            found = _committers[db] = Committer(db)
            found.thread.start()
        found.queue.put(_Item(work, future))
    return future


def queue_depth() -> int:
    """Uploads waiting for a group commit in this process (core/backpressure.py reads it)."""
    return sum(c.queue.qsize() for c in list(_committers.values()))
