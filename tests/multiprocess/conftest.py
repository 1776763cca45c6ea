"""One ``invigil serve --workers 2`` for the module, on PostgreSQL and Redis, and HTTP clients
pinned to each of its processes.

Each worker names itself in the ``X-Invigil-Process`` response header. A client with a single
keep-alive connection talks to one process for as long as the connection lives; since the server
closes idle connections after a few seconds, :meth:`Server.on` checks the connection with a
cheap request right before it is used and finds another when it moved.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import PG_URL, exam_doc, import_exam
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from invigil.attempts import sessions
from invigil.attempts.models import Attempt
from invigil.core.clock import SystemClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database, transaction
from invigil.core.metrics import PROCESS_HEADER
from invigil.core.migrate import upgrade
from invigil.core.storage import LocalBlobStore
from invigil.exams.models import Candidate

REDIS_URL = os.environ.get("INVIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "multiprocess-test-secret-0123456789"
HEADER = PROCESS_HEADER.decode()
WORKERS = 2
LOT_ROOM_SIZE = 8

SKIP_REASON = (
    "several server processes need PostgreSQL (SQLite serves one process): "
    "set INVIGIL_TEST_DATABASE_URL"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exam_file_doc() -> dict[str, Any]:
    """Starts in 15 minutes, with login, lot drawing and entry all open now (real time: the
    server runs the system clock)."""
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15)
    doc = exam_doc()
    doc["exam"]["starts_at"] = starts.isoformat()
    doc["exam"]["rules"].update(entry_opens_before="30m", lot_closes_before="1m")
    doc["rooms"] += [{"id": "R03", "name": "抽签考场"}, {"id": "R04", "name": "上传考场"}]
    for i in range(LOT_ROOM_SIZE):
        doc["candidates"].append(
            {"ticket": f"30{i:02d}", "name": f"抽签{i}", "room": "R03", "photo": "obama.jpg"}
        )
    doc["candidates"].append(
        {"ticket": "4001", "name": "上传", "room": "R04", "photo": "obama.jpg"}
    )
    return doc


@dataclass
class Server:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    ctx: AppContext  # the test's own view of the same database (tokens, jobs)
    exam_id: str
    pool: dict[str, httpx.Client] = field(default_factory=dict)

    def pids(self, tries: int = 60) -> set[str]:
        """The workers that answer new connections now."""
        seen: set[str] = set()
        for _ in range(tries):
            with httpx.Client(base_url=self.base, timeout=30) as c:
                seen.add(c.get("/api/v1/health").headers[HEADER])
            if len(seen) == WORKERS:
                break
        return seen

    def fresh(self, pid: str, tries: int = 80) -> httpx.Client:
        """A new client whose one connection is served by worker ``pid``."""
        for _ in range(tries):
            c = httpx.Client(
                base_url=self.base,
                timeout=120,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            if c.get("/api/v1/health").headers[HEADER] == pid:
                return c
            c.close()
        raise AssertionError(f"no connection reached worker {pid}; log: {self.tail()}")

    def on(self, pid: str) -> httpx.Client:
        """The pooled client of worker ``pid``, checked just now."""
        c = self.pool.get(pid)
        if c is not None and c.get("/api/v1/health").headers[HEADER] == pid:
            return c
        if c is not None:
            c.close()
        c = self.pool[pid] = self.fresh(pid)
        return c

    def call(self, pid: str, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.on(pid).request(method, path, **kw)
        assert r.headers[HEADER] == pid, "the request went to another process"
        return r

    def token(self, ticket: str) -> tuple[str, str]:
        """A candidate session issued straight into the database (face login is tested on its
        own); (token, attempt_id)."""
        with transaction(self.ctx.db) as session:
            attempt = (
                session.query(Attempt).join(Candidate).filter(Candidate.ticket == ticket).one()
            )
            now = self.ctx.clock.now()
            attempt.face_verified_at = attempt.face_verified_at or now
            issued = sessions.issue(session, self.ctx, "candidate", now, attempt_id=attempt.id)
            return issued.token, attempt.id

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"the multiprocess tests need Redis at {REDIS_URL}: {exc}")
    assert PG_URL
    tmp = tmp_path_factory.mktemp("multiprocess")
    name = f"invigil_mp_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    data_dir = tmp / "data"
    settings = Settings(
        data_dir=data_dir, database_url=url, secret_key=SECRET, embedded_worker=False
    )
    db = Database(url)
    ctx = AppContext(settings, db, SystemClock(), LocalBlobStore(settings.blob_dir))
    exam_id = import_exam(ctx, tmp / "exam", exam_file_doc())

    env = {k: v for k, v in os.environ.items() if not k.startswith("INVIGIL_")}
    if env.get("PYTHONPATH"):  # absolute: the code under test, whatever the workers' cwd
        paths = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in paths if p)
    env.update(
        INVIGIL_DATA_DIR=str(data_dir),
        INVIGIL_DATABASE_URL=url,
        INVIGIL_SECRET_KEY=SECRET,
        INVIGIL_REDIS_URL=REDIS_URL,
        # /metrics through a "reverse proxy" on loopback (tests/multiprocess/test_*: forwarded).
        INVIGIL_TRUSTED_PROXIES="127.0.0.1",
        INVIGIL_WORKER_POLL_SECONDS="0.2",
    )
    port = _free_port()
    log = tmp / "serve.log"
    # The interpreter running the tests, with its sys.path (PYTHONPATH): the code under test.
    proc = subprocess.Popen(
        [sys.executable, "-m", "invigil", "serve", "--workers", str(WORKERS), "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    srv = Server(f"http://127.0.0.1:{port}", port, proc, log, ctx, exam_id)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"invigil serve exited: {srv.tail()}"
            assert time.monotonic() < deadline, f"invigil serve did not start: {srv.tail()}"
            try:
                if len(srv.pids(tries=10)) == WORKERS:
                    break
            except (httpx.HTTPError, KeyError):
                pass
            time.sleep(0.3)
        yield srv
        for c in srv.pool.values():
            c.close()
        # Graceful: SIGTERM ends the workers, then the supervisor, with status 0.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, srv.tail()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
