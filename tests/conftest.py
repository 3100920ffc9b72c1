"""Test harness: a real PostgreSQL migrated once per test process, each test rolled back;
a real Redis database flushed before each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis as redis_lib
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests import servers


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


def _database_name() -> str:
    # Separate prefixes let two test runs share one PostgreSQL server without clashing.
    prefix = os.environ.get("HEDGEROW_TEST_DB_PREFIX", "hedgerow_test")
    return f"{prefix}_{_worker_index()}"


def _redis_db_index() -> int:
    base = int(os.environ.get("HEDGEROW_TEST_REDIS_DB", "1"))
    return (base + _worker_index()) % 16


def _recreate_database(name: str) -> str:
    admin = create_engine(servers.database_url_for(_maintenance_db()), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return servers.database_url_for(name)


def _maintenance_db() -> str:
    from sqlalchemy.engine import make_url

    return make_url(servers.server_database_url()).database or "postgres"


def pytest_configure(config: pytest.Config) -> None:
    # Point the application at this worker's own database and Redis db before anything
    # reads the settings.
    os.environ["HEDGEROW_ENVIRONMENT"] = "test"
    os.environ["DATABASE_URL"] = servers.database_url_for(_database_name())
    os.environ["REDIS_URL"] = servers.redis_url_for(_redis_db_index())
    os.environ.setdefault("HEDGEROW_SECRET_KEY", "test-secret-key-that-is-long-enough-123")


@pytest.fixture(scope="session")
def database_url() -> str:
    from hedgerow import migrate

    url = _recreate_database(_database_name())
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from hedgerow.db import make_engine

    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test.

    Commits made by the code under test release a savepoint, so the test sees them and the
    database is clean afterwards.
    """
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


ALL_TABLES = (
    "battle, chat_message, chat, "
    "training_run, model_version, release, audit_event, report, reaction, ranking, label, task, "
    "message_revision, "
    'user_note, api_key, user_session, message, tree, "user"'
)


@pytest.fixture
def committing_sessionmaker(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Real commits, for tests of concurrency between transactions; tables emptied after."""
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    yield maker
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def redis_db() -> Iterator[redis_lib.Redis]:
    from hedgerow.accounts.auth_cache import CACHE
    from hedgerow.config import get_settings

    client = redis_lib.Redis.from_url(get_settings().redis_url or "", decode_responses=True)
    client.flushdb()
    # A test's rolled-back users must not be remembered by the next test.
    CACHE.forget(None)
    yield client
    client.close()


@pytest.fixture
def app(db: Session) -> FastAPI:
    from hedgerow.app import create_app
    from hedgerow.db import get_session

    application = create_app()

    def _test_session() -> Iterator[Session]:
        yield db
        db.flush()

    application.dependency_overrides[get_session] = _test_session
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
