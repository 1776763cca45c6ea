"""Snapshot face work in a child process while the job worker runs inside a server process.

libfacedetection holds Python's GIL for a whole detection (about 11 ms a frame) and dlib for
parts of an embedding (measured: a thread detecting in a loop let the event loop run once every
11 ms, against once a millisecond without it). Inside ``invigil serve`` the embedded job worker
is a thread of the process that answers uploads, so every detection stalled the event loop and
the group commit. Here the face work (``frames.analyse_frame``: bytes and a few facts in, a few
facts out) runs in one child process per server process instead; the worker thread waits for it
without the GIL. Everything else of the job (the database, the rules, live events) stays in the
server process, so live events still reach its consoles without Redis.

``invigil worker`` processes have no event loop to protect and call the face work directly. A
native crash in the child (a hostile JPEG, say) fails that job, which is retried, and the next
job starts a fresh child; the server process itself is not touched.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from invigil.analysis.frames import FrameFacts, analyse_frame

log = logging.getLogger(__name__)

_guard = threading.Lock()
_users = 0
_pool: ProcessPoolExecutor | None = None


def _start_child(parent: int) -> None:
    """Runs first in the child: it ends with the server process, and the models load now,
    not on the first snapshot."""
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    _name_process(ANALYSIS_PROCESS_NAME)
    from invigil.identity import faces

    faces.warm_up()


# What top, ps and the benchmarks' CPU split (bench/cpu.py) see this process as: the server
# processes it serves are spawned the same way, so the command line cannot tell them apart.
ANALYSIS_PROCESS_NAME = "invigil-analysi"  # the kernel keeps 15 characters


def _name_process(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:  # Linux; elsewhere the name stays
            comm.write(name)
    except OSError:
        pass


def _exit_with(parent: int) -> None:
    # A server process killed outright (SIGKILL, the OOM killer) cannot shut its pool down:
    # its child stayed up, and busy, with nobody to answer (seen in the ingest benchmark).
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def enable() -> None:
    """Run the face work of this process's snapshots in a child process from now on. The
    child starts now, so its models are loaded before the first snapshot (a cold start under
    load is a second of CPU the event loop would feel). Paired with ``disable``."""
    global _users
    with _guard:
        _users += 1
    pool = _executor()
    if pool is not None:
        pool.submit(int)  # starts the child, which runs _start_child first


def disable() -> None:
    """The caller no longer needs the child. It stays up, idle, for the next caller in this
    process (tests start many apps one after another) and ends with the process."""
    global _users
    with _guard:
        _users = max(0, _users - 1)


def _executor() -> ProcessPoolExecutor | None:
    global _pool
    with _guard:
        if _users == 0:
            return None
        if _pool is None:
            # spawn, not fork: the server process has threads (event loop, committer, worker)
            # whose locks a forked child would inherit held.
            _pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(os.getpid(),),
            )
        return _pool


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _guard:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def analyse(image: bytes, **kwargs: Any) -> FrameFacts:
    """``frames.analyse_frame(image, **kwargs)``, in the child process when enabled."""
    pool = _executor()
    if pool is None:
        return analyse_frame(image, **kwargs)
    try:
        return pool.submit(analyse_frame, image, **kwargs).result()
    except BrokenProcessPool:
        log.error("the snapshot analysis process died; the job is retried in a new one")
        _discard(pool)
        raise
