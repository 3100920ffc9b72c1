"""The Alembic chain builds the schema from nothing, tears it down, and matches the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from hedgerow import migrate
from hedgerow.db import make_engine
from hedgerow.models import Base
from tests.ops.databases import create_empty_database, drop_database


@pytest.fixture
def empty_database() -> Iterator[tuple[str, Engine]]:
    url = create_empty_database("migrations")
    engine = make_engine(url, pool_size=1, max_overflow=0)
    yield url, engine
    engine.dispose()
    drop_database("migrations")


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_downgrade_upgrade_round_trip_matches_the_models(
    empty_database: tuple[str, Engine],
) -> None:
    url, engine = empty_database
    model_tables = set(Base.metadata.tables)
    assert _tables(engine) == set()

    migrate.upgrade(url)
    assert _tables(engine) == model_tables | {"alembic_version"}
    assert _schema_diff(engine) == []

    migrate.downgrade(url, "base")
    assert _tables(engine) == {"alembic_version"}

    migrate.upgrade(url)
    assert _tables(engine) == model_tables | {"alembic_version"}
    assert _schema_diff(engine) == []


def test_autogenerate_notices_a_model_the_migrations_lack(
    empty_database: tuple[str, Engine],
) -> None:
    # Guards the test above: an empty diff must mean "in sync", not "comparison broken".
    url, engine = empty_database
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    diff = _schema_diff(engine)
    added_tables = {change[1].name for change in diff if change[0] == "add_table"}
    assert added_tables == set(Base.metadata.tables)
