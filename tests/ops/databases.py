"""Throw-away databases for tests that need their own (migrations, the CLI, `hedgerow up`)."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import servers


def _name(purpose: str) -> str:
    prefix = os.environ.get("HEDGEROW_TEST_DB_PREFIX", "hedgerow_test")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return f"{prefix}_{purpose}_{worker}"


def _admin_execute(statement: str) -> None:
    maintenance = make_url(servers.server_database_url()).database or "postgres"
    admin = create_engine(servers.database_url_for(maintenance), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(statement))
    admin.dispose()


def create_empty_database(purpose: str) -> str:
    """A new, empty database for this test process; returns its URL."""
    name = _name(purpose)
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{name}"')
    return servers.database_url_for(name)


def drop_database(purpose: str) -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{_name(purpose)}" WITH (FORCE)')
