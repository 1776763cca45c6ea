"""What a request or a job needs from the running application, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from invigil.core.clock import Clock
from invigil.core.config import Settings
from invigil.core.db import Database
from invigil.core.errors import APIError
from invigil.core.jobs import JobContext
from invigil.core.storage import BlobStore


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    blobs: BlobStore

    def job_context(self) -> JobContext:
        return JobContext(db=self.db, clock=self.clock, settings=self.settings)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: services write, the request commits once at the end.

    Runs with ``scope="function"`` so the commit happens before the response is sent: a client
    is never told "stored" about something that is not yet durable.
    """
    session = get_context(request).db.session()
    try:
        yield session
        session.commit()
    except APIError as exc:
        if exc.keep_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


Ctx = Annotated[AppContext, Depends(get_context)]
DbSession = Annotated[Session, Depends(get_session, scope="function")]
