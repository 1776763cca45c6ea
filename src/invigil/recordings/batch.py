"""Group commit: many uploads acknowledged by one transaction and one commit.

Every chunk and snapshot needs a short transaction (the token, the recording, the row). Run one
by one, each pays a BEGIN, a commit (an fsync of the database log) and, on SQLite, a turn of the
single writer lock; under load the turns queued up and the latency was all waiting (see
docs/benchmarks.md). Here one committer thread per process takes whatever uploads arrived while
the previous batch committed, runs each one's work in one transaction, stores the files the
items asked for in the blob store (local disk: renamed into place, one syncfs for them all; S3:
the PUTs side by side, each acknowledged by the store), commits once, and only then answers
each of them: nothing is acknowledged before its bytes and its row are durable.

What the items read, they read together: each item names the rows it needs (its token, its
recording, whether its seq is held) when it is submitted, and the batch fetches them for all its
items in one statement per kind of row before any item's work runs; the rows the items add are
inserted with one INSERT per table (all its rows at once) after all of it. A batch of fifty
uploads costs a handful of statements, not a hundred.

An item's work raises :class:`APIError` to refuse just that upload. Any other error — a
database error, a blob store that fails a write — fails the whole batch: nothing of it is
committed, and each of its uploads gets that error (a 500) and is retried by its client. Files
stored for a failed batch are unreferenced content-addressed blobs: a retry stores the same
bytes under the same key, and the orphan sweep removes what nobody retries.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from invigil.attempts import sessions
from invigil.core import metrics
from invigil.core.db import Database
from invigil.core.errors import APIError
from invigil.core.storage import BlobStore
from invigil.recordings.tx import transaction

log = logging.getLogger(__name__)
MAX_BATCH = 256
# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back
# and may simply be run again. The work runs again from the start (each item's checks too);
# no file has been stored yet when they are raised, since files are stored after the work.
TRANSIENT = {"40P01", "40001"}
RETRIES = 3


# Fetches the rows some items of a batch need, for all of them at once: given the keys the items
# named, one statement; returns the row (or whatever the lookup makes of it) per key found.
Lookup = Callable[[Connection, list[Any]], dict[Any, Any]]


@dataclass
class Later:
    """An item's answer that depends on what the batch's inserts did (``Batch.insert_new``):
    ``resolve`` runs after them, before the files are stored and the batch commits."""

    resolve: Callable[[Batch], Any]


@dataclass
class Batch:
    """What the items of one batch share: the session, what was looked up for them, the rows
    they add and the files to store before commit."""

    session: Session
    # Per lookup, the rows found for the keys the items named (lookups run before any work).
    found: dict[Lookup, dict[Any, Any]] = field(default_factory=dict)
    # (store, key, source file) for each upload whose row this batch inserts.
    files: list[tuple[BlobStore, str, Path]] = field(default_factory=list)
    # Rows the items add, per table in the order first added, inserted together after every
    # item's work: one INSERT per table for all its rows, not the ORM's unit of work per object.
    rows: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    # Rows inserted only where their primary key is free (insert_new), by key; the keys the
    # INSERT … ON CONFLICT DO NOTHING took, once inserted.
    new_rows: dict[Table, dict[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)
    inserted: dict[Table, set[tuple[Any, ...]]] = field(default_factory=dict)
    # Sessions to mark seen (sessions.touch) with the batch's rows, at the latest time asked.
    seen: set[str] = field(default_factory=set)
    seen_at: datetime | None = None

    def lookup(self, lookup: Lookup, key: Any) -> Any:
        """What ``lookup`` found for ``key`` (named at submit), or None."""
        return self.found.get(lookup, {}).get(key)

    def insert(self, table: Table, row: dict[str, Any]) -> None:
        """Insert ``row`` into ``table`` with this batch (not visible to the items' queries)."""
        self.rows.setdefault(table, []).append(row)

    def insert_new(self, table: Table, row: dict[str, Any]) -> bool:
        """Insert ``row`` with this batch unless a row with its primary key exists by then.
        False when an earlier item of this batch already asked for that key (its row is the
        one tried). After the inserts, ``was_inserted`` says whether the row went in."""
        key = tuple(row[c.name] for c in table.primary_key)
        rows = self.new_rows.setdefault(table, {})
        if key in rows:
            return False
        rows[key] = row
        return True

    def was_inserted(self, table: Table, key: tuple[Any, ...]) -> bool:
        return key in self.inserted.get(table, ())

    def touch(self, auth_id: str, now: datetime) -> None:
        """Mark the session seen with this batch's rows (once, however many items ask)."""
        self.seen.add(auth_id)
        self.seen_at = now if self.seen_at is None else max(self.seen_at, now)

    def write_rows(self) -> None:
        conn = self.session.connection()
        for table, rows in self.rows.items():
            conn.execute(insert(table), rows)
        for table, new in self.new_rows.items():
            statement = _insert_new(table, conn.dialect.name)
            self.inserted[table] = {tuple(r) for r in conn.execute(statement, list(new.values()))}
        if self.seen_at is not None:
            sessions.touch(self.session, sorted(self.seen), self.seen_at)

    def store(self, blobs: BlobStore, key: str, source: Path) -> None:
        """Store `source` under `key` before this batch commits (the file is consumed)."""
        self.files.append((blobs, key, source))

    def put_files(self) -> None:
        by_store: dict[int, tuple[BlobStore, list[tuple[str, Path]]]] = {}
        for blobs, key, source in self.files:
            by_store.setdefault(id(blobs), (blobs, []))[1].append((key, source))
        for blobs, items in by_store.values():
            blobs.put_files(items)


@cache  # built once per table and dialect: building it cost more CPU than running it
def _insert_new(table: Table, dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the primary key: run with many rows, it is
    sent as multi-row INSERTs and returns the keys of the rows that went in."""
    dialect_insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return dialect_insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)


Work = Callable[[Batch], Any]


@dataclass
class _Item:
    work: Work
    future: Future[Any]
    needs: Sequence[tuple[Lookup, Hashable]]


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
        for attempt in range(1, RETRIES + 1):
            try:
                outcomes = self._transact(items)
                break
            except _Retry as retry:
                # A deadlock, a serialization failure or a broken connection, before any file
                # was stored: nothing of it happened, and the transaction may run again.
                if attempt == RETRIES:
                    self._fail(items, retry.error)
                    return
                log.warning("group commit of %d uploads retried: %s", len(items), retry.error)
                time.sleep(0.005 * attempt)
            except BaseException as exc:  # nothing of this batch was committed
                self._fail(items, exc)
                return
        # Committed; observed before anyone is answered, so a scrape after an ack counts it.
        metrics.observe_batch(len(items), time.perf_counter() - started)
        for item, (ok, value) in zip(items, outcomes, strict=True):
            _settle(item.future, ok, value)

    def _transact(self, items: list[_Item]) -> list[tuple[bool, Any]]:
        with transaction(self.db, steady=True) as session:
            batch = Batch(session)
            try:
                self._look_up(batch, items)
                outcomes = [_run(item.work, batch) for item in items]
                batch.write_rows()
                outcomes = [
                    _run(value.resolve, batch) if ok and isinstance(value, Later) else (ok, value)
                    for ok, value in outcomes
                ]
            except DBAPIError as exc:
                if _transient(exc):
                    raise _Retry(exc) from exc
                raise
            # Bytes first, then the commit: a row never names a blob that is not stored.
            batch.put_files()
        return outcomes

    def _look_up(self, batch: Batch, items: list[_Item]) -> None:
        wanted: dict[Lookup, dict[Hashable, None]] = {}  # keys in order, once each
        for item in items:
            for lookup, key in item.needs:
                wanted.setdefault(lookup, {})[key] = None
        conn = batch.session.connection()
        for lookup, keys in wanted.items():
            batch.found[lookup] = lookup(conn, list(keys))

    def _fail(self, items: list[_Item], exc: BaseException) -> None:
        log.error("group commit of %d uploads failed", len(items), exc_info=exc)
        for item in items:
            _settle(item.future, False, exc)


def _settle(future: Future[Any], ok: bool, value: Any) -> None:
    """Answer an item, unless its request stopped waiting: ``asyncio.wrap_future`` cancels the
    future when the awaiting task is cancelled, and answering a cancelled future raises, which
    ended the committer thread and left every later upload of the process waiting."""
    if not future.set_running_or_notify_cancel():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _run(work: Work, batch: Batch) -> tuple[bool, Any]:
    try:
        return True, work(batch)
    except APIError as exc:  # refused: only this upload fails; any other error fails the batch
        return False, exc


class _Retry(Exception):
    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _transient(exc: DBAPIError) -> bool:
    """Rolled back and worth running again: a deadlock or serialization failure, or a
    connection that broke since its last batch (the steady pool does not ping: the database
    restarted, say), which the retry replaces."""
    return exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) in TRANSIENT


_committers: WeakKeyDictionary[Database, Committer] = WeakKeyDictionary()
_guard = threading.Lock()


def submit(
    db: Database, work: Work, needs: Collection[tuple[Lookup, Hashable]] = ()
) -> Future[Any]:
    """Queue ``work`` for the next group commit; the future resolves once it is committed.
    ``needs``: (lookup, key) pairs whose rows the batch fetches before the work runs
    (``Batch.lookup`` reads them)."""
    future: Future[Any] = Future()
    with _guard:
        found = _committers.get(db)
        if found is None:
            found = _committers[db] = Committer(db)
            found.thread.start()
        found.queue.put(_Item(work, future, tuple(needs)))
    return future


def queue_depth() -> int:
    """Uploads waiting for a group commit in this process (core/backpressure.py reads it)."""
    return sum(c.queue.qsize() for c in list(_committers.values()))
