"""Engine and the per-request session.

One session per request: the dependency commits when the endpoint returns and rolls back
when it raises. Services only ``flush()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from hedgerow.config import get_settings
from hedgerow.metrics import watch_pool


def normalize_database_url(url: str) -> str:
    """Accept the ``postgres://`` and ``postgresql://`` spellings and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: object) -> Engine:
    options: dict[str, object] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    options.update(kwargs)
    return create_engine(normalize_database_url(url), **options)


@lru_cache
def get_engine() -> Engine:
    url = get_settings().database_url
    if not url:
        raise RuntimeError(
            "DATABASE_URL is not set; run through `hedgerow up`, which starts the embedded "
            "PostgreSQL, or point DATABASE_URL at a server"
        )
    engine = make_engine(url)
    watch_pool(engine)
    return engine


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def _finish(session: Session, failed: bool) -> None:
    with session:  # closes: the connection goes back to the pool
        if failed:
            # Detach first: a rollback expires every loaded object, and the error page
            # still reads the logged-in user (its name in the nav) after the session closes.
            session.expunge_all()
            session.rollback()
        else:
            session.commit()


def app_sessionmaker(request: Request) -> sessionmaker[Session]:
    """The sessions this app's requests use (an app may be given its own)."""
    maker: sessionmaker[Session] | None = getattr(request.app.state, "sessionmaker", None)
    return maker or get_sessionmaker()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A coroutine, not a plain generator: creating a session does no I/O, so only its end
    (commit or rollback) goes to the thread pool, one hop instead of two per request."""
    session = app_sessionmaker(request)()
    failed = False
    try:
        yield session
    except BaseException:
        failed = True
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_finish, session, failed)


# scope="function": commit before the response is sent, so a client never reads a 2xx
# for a change that later fails to commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
