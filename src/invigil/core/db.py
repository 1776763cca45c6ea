"""Database engine, the declarative base and the per-request session.

SQLite (WAL) is the embedded default, PostgreSQL the production database. On SQLite every
transaction starts with ``BEGIN IMMEDIATE``: writers queue on the database lock up front
instead of failing when a reader later tries to write (SQLite's "deferred" upgrade deadlock).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from invigil.core.bus import BUS_KEY, Bus, LocalBus
from invigil.core.clock import ensure_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = ensure_utc(value)
        # SQLite stores text; keep it naive UTC so lexical order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            # More connections than the 40 request threads, so no thread waits for one.
            pool_size=10,
            max_overflow=50,
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed row survives power loss, not just a process crash.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    options: dict[str, Any] = {"pool_size": 20, "max_overflow": 40, "pool_pre_ping": True}
    return create_engine(url, **{**options, **kwargs})


# How PostgreSQL lists the steady pool's connections (pg_stat_activity.application_name).
STEADY_APPLICATION_NAME = "invigil-group-commit"


class Database:
    def __init__(self, url: str, bus: Bus | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Sessions carry the bus so that what they publish goes out after they commit.
        self.bus: Bus = bus or LocalBus()
        self.sessionmaker = sessionmaker(
            self.engine, expire_on_commit=False, info={BUS_KEY: self.bus}
        )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def session(self) -> Session:
        return self.sessionmaker()

    @cached_property
    def steady_engine(self) -> Engine:
        """For a thread that runs transactions back to back (the group commit, recordings/
        batch.py). PostgreSQL connections of the main pool are pinged before each use, a round
        trip; this pool's are not. A connection that broke meanwhile (the database restarted)
        fails its transaction with ``connection_invalidated`` set, and the caller runs it again
        on a new one. SQLite: the one engine (nothing to ping)."""
        if not self.is_postgres:
            return self.engine
        name = {"application_name": STEADY_APPLICATION_NAME}
        return make_engine(
            self.url, pool_size=2, max_overflow=2, pool_pre_ping=False, connect_args=name
        )

    def steady_session(self) -> Session:
        return self.sessionmaker(bind=self.steady_engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if "steady_engine" in self.__dict__ and self.steady_engine is not self.engine:
            self.steady_engine.dispose()


@contextmanager
def transaction(db: Database) -> Iterator[Session]:
    """A unit of work for code outside a request (CLI, jobs): commit on success."""
    with db.session() as session, session.begin():
        yield session
