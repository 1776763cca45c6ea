"""What a request or a job needs from the running application, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


async def get_context(request: Request) -> AppContext:
    # async: a plain attribute read needs no worker thread
    ctx: AppContext = request.app.state.ctx
    return ctx


@contextmanager
def unit_of_work(ctx: AppContext) -> Iterator[Session]:
    """One request's transaction, committed when the block ends, inside the endpoint's thread.

    Endpoints open it themselves instead of taking a yield dependency: FastAPI runs a sync
    dependency's exit in another worker thread after the endpoint, and a request that holds a
    database lock while it waits for that hop stalls every other request queued on the lock.
    The commit happens before the response is built, so a client is never told "stored" about
    something that is not yet durable. ``APIError(keep_changes=True)`` commits too (e.g. the
    audit event of a refused login).
    """
    session = ctx.db.session()
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
