"""Running Alembic from code: `hedgerow migrate`, `hedgerow up` and the tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from hedgerow.config import REPO_ROOT


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


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
