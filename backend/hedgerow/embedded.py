"""Embedded PostgreSQL and Redis for the default run.

With no ``DATABASE_URL``/``REDIS_URL``, ``hedgerow up`` starts a real PostgreSQL and a real
Redis from wheels, with their data under ``Settings.data_dir`` (``./.hedgerow/``), so a
laptop with nothing installed runs the same code path as production.

One process at a time owns the servers of a data directory: it holds an exclusive lock on
``servers.lock`` there, runs them as its children (embedded_servers.py), restarts them
when they crash (``revive()``, for ``hedgerow up``) and stops them on the way out. The lock
goes with its holder, even one killed by SIGKILL; the next owner first stops whatever an
earlier run left running, so a server is never reused without an owner that will stop it.
A command started while another owns the servers (``hedgerow create-admin`` beside
``hedgerow up``) uses them as they are, through the URLs the owner wrote to
``servers.json``, and stops nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import IO

from hedgerow.embedded_servers import (
    START_TIMEOUT_SECONDS,
    EmbeddedServerError,
    PostgresProcess,
    RedisProcess,
    ServerProcess,
)
from hedgerow.errors import AppError

log = logging.getLogger(__name__)

# Every kind of embedded server, by the name its URL is asked for with. A new one (a dev
# SMTP server) is a ServerProcess subclass and a line here.
SERVER_KINDS: dict[str, type[ServerProcess]] = {
    "postgres": PostgresProcess,
    "redis": RedisProcess,
}
# How often `hedgerow up` restarts one server that crashed before it gives up and stops.
MAX_RESTARTS = 3


class EmbeddedServers:
    """Starts each server on first use; ``stop()`` shuts down what this object started."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._running: dict[str, ServerProcess] = {}
        self._restarts: dict[str, int] = {}
        self._lock: IO[bytes] | None = None

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "servers.lock"

    @property
    def urls_file(self) -> Path:
        return self.data_dir / "servers.json"

    def database_url(self) -> str:
        """Start PostgreSQL if needed, with a ``hedgerow`` database, and return its URL (a
        unix socket)."""
        return self.url("postgres")

    def redis_url(self) -> str:
        """Start Redis if needed (persisting to ``redis.db``) and return a ``unix://`` URL."""
        return self.url("redis")

    def url(self, kind: str) -> str:
        if kind in self._running:
            return self._running[kind].url()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._own():
            # Another process owns them: use its server once it is up, or take over when
            # that process has gone.
            borrowed = self._published_urls().get(kind)
            if borrowed is not None:
                return borrowed
            if time.monotonic() > deadline:
                raise AppError(
                    "embedded_server_unavailable",
                    f"Another hedgerow process owns the embedded servers in {self.data_dir} "
                    f"but runs no {SERVER_KINDS[kind].label}; stop it, or set the URL.",
                    503,
                )
            time.sleep(0.25)
        server = SERVER_KINDS[kind](self.data_dir)
        log.info("starting the embedded %s in %s", server.label, self.data_dir)
        try:
            server.start()
        except EmbeddedServerError as error:
            raise AppError("embedded_server_failed", str(error), 503) from error
        self._running[kind] = server
        self._publish_urls()
        return server.url()

    def _own(self) -> bool:
        """Whether this object owns the data directory's servers, taking ownership (and
        stopping an earlier run's leftovers) when no live process has it."""
        if self._lock is not None:
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = self.lock_file.open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        self._lock = lock
        self.urls_file.unlink(missing_ok=True)
        for kind in SERVER_KINDS.values():
            kind.stop_leftovers(self.data_dir)
        return True

    def _published_urls(self) -> dict[str, str]:
        try:
            urls = json.loads(self.urls_file.read_text())
        except (OSError, ValueError):
            return {}
        return urls if isinstance(urls, dict) else {}

    def _publish_urls(self) -> None:
        urls = {kind: server.url() for kind, server in self._running.items()}
        partial = self.urls_file.with_suffix(".tmp")
        partial.write_text(json.dumps(urls))
        os.replace(partial, self.urls_file)  # readers never see half a file

    def revive(self) -> str | None:
        """Restart any server of ours that exited (up to MAX_RESTARTS times each). Returns
        why we must stop instead, or None when all of them run."""
        for kind, server in self._running.items():
            code = server.exit_code()
            if code is None:
                continue
            done = self._restarts.get(kind, 0)
            if done >= MAX_RESTARTS:
                return f"the embedded {server.label} exited (code {code}) after {done} restarts"
            self._restarts[kind] = done + 1
            log.error(
                "the embedded %s exited (code %s); restarting it (restart %d of %d)",
                server.label,
                code,
                done + 1,
                MAX_RESTARTS,
            )
            try:
                server.start()
            except EmbeddedServerError as error:
                return str(error)
            log.warning("the embedded %s is running again", server.label)
        return None

    def stop(self) -> None:
        """Stop the servers this object started, the last started first, and give up the
        ownership. Stopping does not wait for clients to disconnect."""
        for server in reversed(list(self._running.values())):
            server.stop()
        self._running.clear()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self.urls_file.unlink(missing_ok=True)
            self._lock.close()  # releases the flock
            self._lock = None
