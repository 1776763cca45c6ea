"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
``INVIGIL_TEST_DATABASE_URL`` is set (``.ci/run`` does both)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from fastapi import FastAPI
from fastapi.testclient import TestClient
from s3_server import s3_bucket, s3_server, s3_settings  # noqa: F401  (fixtures)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from invigil.app import create_app
from invigil.core import security
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database, transaction
from invigil.core.migrate import upgrade
from invigil.core.models import metadata
from invigil.exams.importer import create_exam, load_exam_file

FACES = Path(__file__).parent / "data" / "faces"
PG_URL = os.environ.get("INVIGIL_TEST_DATABASE_URL")
# Exam start used by most tests: 2030-06-01 09:00 in Beijing.
T = datetime(2030, 6, 1, 1, 0, 0, tzinfo=UTC)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run the app under a real uvicorn server on a free loopback port (browsers, concurrency)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def face(name: str) -> bytes:
    return (FACES / name).read_bytes()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Password hashes at argon2's lowest cost in this process. At the production cost (about
    0.2 s of CPU each, more on a loaded machine) the staff of every imported exam and every
    staff login made up minutes of the suite; the tests check who gets in, not the cost.
    Servers the tests start as processes (the CLI tests) hash at the production cost, and
    tests/test_cli.py checks those hashes' parameters."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", PasswordHasher.from_parameters(CHEAPEST))
        yield


@pytest.fixture(scope="session")
def _database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the session: a PostgreSQL database of its own, or a SQLite file
    that each test copies."""
    if PG_URL:
        name = f"invigil_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("db") / "template.sqlite3"
        upgrade(f"sqlite:///{path}")
        yield str(path)


@pytest.fixture
def database_url(_database_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        yield _database_template
        # A background thread of the finished test (a job runner, a live feed) may still be in
        # a query: it would deadlock the TRUNCATE (seen on a loaded CI run) or write into the
        # next test. The test is over, so its connections go first.
        engine = create_engine(_database_template)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        path = tmp_path / "invigil.sqlite3"
        shutil.copy(_database_template, path)
        yield f"sqlite:///{path}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2030, 6, 1, 0, 0, 0, tzinfo=UTC))  # T - 1h


@pytest.fixture
def blob_backend(request: pytest.FixtureRequest) -> str:
    """Where the test's blobs live: "local" unless a test asks for both (``both_backends``)."""
    return str(getattr(request, "param", "local"))


# The storage-relevant tests run on local disk and on a real S3 server (tests/s3_server.py).
# The S3 variants run with PostgreSQL, the database an installation that shares its blobs
# across machines runs; SQLite, one process on one box, runs them on local disk. scripts/test
# runs both databases, so every variant runs once per suite (the blob store does not depend on
# the database: tests/storage checks it on its own). INVIGIL_TEST_BACKENDS=local,s3 asks for
# both on either database.
BACKENDS = os.environ.get("INVIGIL_TEST_BACKENDS") or ("local,s3" if PG_URL else "local")
both_backends = pytest.mark.parametrize("blob_backend", BACKENDS.split(","), indirect=True)


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, blob_backend: str, request: pytest.FixtureRequest
) -> Settings:
    blobs: dict[str, Any] = {}
    if blob_backend == "s3":
        blobs = s3_settings(
            request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
        )
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        embedded_worker=False,
        # A shared test machine's load must not shed snapshots in unrelated tests; the
        # backpressure tests force the level themselves (app.state.load.forced).
        backpressure=False,
        **blobs,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.sqlalchemy_url)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, db: Database) -> FastAPI:
    return create_app(settings, clock=clock, db=db, start_worker=False)


@pytest.fixture
def app_ctx(app: FastAPI) -> AppContext:
    ctx: AppContext = app.state.ctx
    return ctx


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def exam_doc(**overrides: Any) -> dict[str, Any]:
    """A valid exam file as a dict; tests change what they need."""
    doc: dict[str, Any] = {
        "exam": {
            "title": "测试考试",
            "starts_at": "2030-06-01T09:00:00+08:00",
            "duration": "20m",
            "rules": {"evidence_camera": "off", "liveness": "off"},
            "help_phone": "400-000-0000",
            "questions": [
                {"text": "QUESTION-ONE 请谈谈你对本岗位的认识。"},
                {"text": "QUESTION-TWO 第二题"},
            ],
            "attachments": [{"title": "考生须知", "file": "notice.txt"}],
        },
        "rooms": [{"id": "R01", "name": "第1考场"}, {"id": "R02", "name": "第2考场"}],
        "candidates": [
            {"ticket": "1001", "name": "奥巴马", "room": "R01", "photo": "obama.jpg"},
            {"ticket": "1002", "name": "拜登", "room": "R01", "photo": "biden.jpg"},
            {"ticket": "2001", "name": "汉克斯", "room": "R02", "photo": "tom_hanks.jpg"},
        ],
        "staff": [
            {"username": "p1", "password": "pw-p1", "roles": ["proctor"], "rooms": ["R01"]},
            {"username": "p2", "password": "pw-p2", "roles": ["proctor"], "rooms": ["R02"]},
            {"username": "tech1", "password": "pw-tech1", "roles": ["tech"], "rooms": ["R01"]},
            {"username": "rev", "password": "pw-rev", "roles": ["reviewer"]},
            {"username": "exm", "password": "pw-exm", "roles": ["examiner"]},
        ],
    }
    for key, value in overrides.items():
        doc[key] = value
    return doc


def write_exam(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notice.txt").write_text("考生须知：请独立作答。", encoding="utf-8")
    for name in ("obama.jpg", "biden.jpg", "tom_hanks.jpg", "group_t1.jpg", "empty.jpg"):
        if (FACES / name).exists() and not (folder / name).exists():
            shutil.copy(FACES / name, folder / name)
    path = folder / "exam.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def import_exam(ctx: AppContext, folder: Path, doc: dict[str, Any] | None = None) -> str:
    path = write_exam(folder, doc or exam_doc())
    spec, embeddings = load_exam_file(path, ctx.clock.now())
    with transaction(ctx.db) as session:
        return create_exam(session, ctx.blobs, spec, embeddings, ctx.clock.now()).id


@pytest.fixture
def exam_id(app_ctx: AppContext, tmp_path: Path) -> str:
    return import_exam(app_ctx, tmp_path / "exam")


def login(client: TestClient, exam: str, ticket: str, photo: str = "obama2.jpg", **kw: Any) -> Any:
    return client.post(
        "/api/v1/candidate/login",
        data={"exam_id": exam, "ticket": ticket},
        files={"face": ("face.jpg", face(photo), "image/jpeg")},
        **kw,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff_token(client: TestClient, username: str, password: str) -> str:
    r = client.post("/api/v1/staff/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])
