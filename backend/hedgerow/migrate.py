"""Running Alembic from code: `hedgerow migrate`, `hedgerow up` and the tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory

from hedgerow.config import REPO_ROOT, get_settings


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.set_main_option(
        "file_template",
        "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s",
    )
    if database_url:
        from hedgerow.db import normalize_database_url

        # ConfigParser interpolation: a literal % in a password must be doubled.
        config.set_main_option(
            "sqlalchemy.url", normalize_database_url(database_url).replace("%", "%%")
        )
    return config


def current_heads(database_url: str | None = None) -> tuple[str, ...]:
    """The revisions the database is at; () for an empty database."""
    from hedgerow.db import make_engine

    url = database_url or get_settings().database_url
    if not url:
        raise RuntimeError("No database URL: set DATABASE_URL or run `hedgerow migrate`")
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def upgrade(database_url: str | None = None, revision: str = "head") -> list[Script]:
    """Apply the migrations from where the database is up to `revision`; return the ones
    applied, oldest first (none when it was already there)."""
    config = alembic_config(database_url)
    scripts = ScriptDirectory.from_config(config)
    heads = current_heads(database_url)
    pending = list(scripts.iterate_revisions(revision, heads or "base"))
    command.upgrade(config, revision)
    return [script for script in reversed(pending) if isinstance(script, Script)]


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
