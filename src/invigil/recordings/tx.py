"""Transactions for this package's hot paths.

On SQLite every transaction takes the database's single writer lock (``BEGIN IMMEDIATE``), and a
connection that finds it taken sleeps in SQLite's busy handler with growing pauses (up to 100 ms
each) before it looks again. Under upload load that backoff, not the work, made the latency:
threads slept while the lock stood free. Here the threads of one process queue on a Python lock
instead and take the database lock the moment it is released. PostgreSQL needs no such queue.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from weakref import WeakKeyDictionary

from sqlalchemy.orm import Session

from invigil.core.db import Database

_locks: WeakKeyDictionary[Database, threading.Lock] = WeakKeyDictionary()
_guard = threading.Lock()


def _writer_lock(db: Database) -> threading.Lock | None:
    if db.engine.dialect.name != "sqlite":
        return None
    with _guard:
        lock = _locks.get(db)
        if lock is None:
            lock = _locks[db] = threading.Lock()
        return lock


@contextmanager
def transaction(db: Database, *, steady: bool = False) -> Iterator[Session]:
    """Commit on success, roll back on any exception; one writer at a time on SQLite.
    ``steady``: on the pool whose connections are not pinged before use (Database.
    steady_engine), for a thread that commits back to back."""
    lock = _writer_lock(db)
    session = db.steady_session() if steady else db.session()
    with lock if lock is not None else nullcontext(), session, session.begin():
        yield session
