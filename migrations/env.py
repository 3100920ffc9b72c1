"""Alembic environment: the database URL comes from the caller or from Settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from hedgerow.config import get_settings
from hedgerow.db import make_engine
from hedgerow.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    if not url:
        raise RuntimeError("No database URL: set DATABASE_URL or run `hedgerow migrate`")
    engine = make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=get_settings().database_url, target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
