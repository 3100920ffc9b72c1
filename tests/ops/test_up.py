"""`hedgerow up` end to end: a real process tree, served pages, a clean stop on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import redis as redis_lib

from hedgerow.training import availability
from hedgerow.worker import make_celery
from tests.ops.databases import create_empty_database, drop_database

START_DEADLINE_SECONDS = 120.0
STOP_DEADLINE_SECONDS = 60.0
ADMIN_PASSWORD = "the first admin's password"
URL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "HEDGEROW_DATABASE_URL", "HEDGEROW_REDIS_URL")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start_up(env: dict[str, str], log_path: Path, cwd: Path, args: list[str]) -> Running:
    port = _free_port()
    env = {**env, "HEDGEROW_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hedgerow.cli", "up", *args],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Running(process, f"http://127.0.0.1:{port}", log_path)


def _wait_until_ready(running: Running) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        assert running.process.poll() is None, f"hedgerow up exited early:\n{running.log}"
        try:
            health = httpx.get(f"{running.base_url}/healthz", timeout=2)
            login = httpx.get(f"{running.base_url}/login", timeout=2)
            if health.status_code == 200 and login.status_code == 200:
                return
        except httpx.TransportError:
            pass
        _pause(running)
    pytest.fail(f"hedgerow up did not serve /healthz and /login in time:\n{running.log}")


def _pause(running: Running) -> None:
    # Waiting on the process doubles as the pause between polls, and notices an early exit.
    with contextlib.suppress(subprocess.TimeoutExpired):
        running.process.wait(timeout=0.25)


def _descendants(running: Running) -> list[psutil.Process]:
    return psutil.Process(running.process.pid).children(recursive=True)


def _stop_and_check(running: Running, descendants: list[psutil.Process]) -> None:
    running.process.send_signal(signal.SIGINT)
    try:
        exit_code = running.process.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        running.process.kill()
        pytest.fail(f"hedgerow up did not stop on SIGINT:\n{running.log}")
    assert exit_code == 0, running.log
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == [], f"stray processes: {[p.cmdline() for p in alive]}"


def _assert_worker_answers(redis_url: str) -> None:
    from celery import current_app

    from hedgerow.config import Settings

    # A new Celery app makes itself the process's current one, which shared tasks such as
    # ops.ping use: put the previous one back, or later tests' jobs would go to this run's
    # Redis after it is gone.
    previous = current_app._get_current_object()
    app = make_celery(Settings(_env_file=None, redis_url=redis_url))
    try:
        assert app.send_task("ops.ping").get(timeout=60) == "pong"
    finally:
        previous.set_current()


class Launcher:
    """Starts `hedgerow up` runs; whatever a failed test leaves running is killed after."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.runs: list[Running] = []

    def start(self, env: dict[str, str], log_path: Path, *args: str) -> Running:
        running = _start_up(env, log_path, self.workdir, list(args))
        self.runs.append(running)
        return running

    def kill_leftovers(self) -> None:
        leftovers: list[psutil.Process] = []
        for running in self.runs:
            if running.process.poll() is None:
                leftovers += [*_descendants(running), psutil.Process(running.process.pid)]
        leftovers += _embedded_server_processes(self.workdir)
        for process in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(leftovers, timeout=10)


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.kill_leftovers()


@pytest.fixture
def up_database_url() -> Iterator[str]:
    url = create_empty_database("up")
    yield url
    drop_database("up")


@pytest.mark.slow
def test_up_with_given_servers_serves_runs_jobs_and_stops_cleanly_on_sigint(
    up_database_url: str, tmp_path: Path, launched: Launcher
) -> None:
    redis_url = os.environ["REDIS_URL"]
    env = {
        **os.environ,
        "DATABASE_URL": up_database_url,
        "REDIS_URL": redis_url,
        "HEDGEROW_DATA_DIR": str(tmp_path / "data"),
        "HEDGEROW_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    running = launched.start(env, tmp_path / "up.log")
    _wait_until_ready(running)
    _assert_worker_answers(redis_url)
    children = {" ".join(p.cmdline()) for p in psutil.Process(running.process.pid).children()}
    assert any("uvicorn" in c for c in children)
    assert any(" worker" in c for c in children)
    assert any(" beat" in c for c in children)
    ready = httpx.get(f"{running.base_url}/readyz", timeout=5)
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    assert "First admin account created" in running.log
    assert ADMIN_PASSWORD not in running.log  # it came from the environment
    _assert_the_admin_box_comes_last(running)
    _stop_and_check(running, _descendants(running))


def _assert_the_admin_box_comes_last(running: Running) -> None:
    """The first admin's box is shown again once everything is up, after the web server's
    "running at" line and the worker's banner and "ready" line, so it is not scrolled away."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while running.log.count("First admin account created") < 2:
        assert time.monotonic() < deadline, f"the admin box was shown once:\n{running.log}"
        _pause(running)
    log = running.log
    last_box = log.rindex("First admin account created")
    assert last_box > log.index("Hedgerow is running at")
    assert last_box > log.index("[queues]")  # the Celery worker's banner
    assert last_box > log.index(" ready.")  # "celery@host ready."


@pytest.mark.slow
def test_up_stops_everything_and_fails_when_a_child_dies(
    up_database_url: str, tmp_path: Path, launched: Launcher
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": up_database_url,
        "HEDGEROW_DATA_DIR": str(tmp_path / "data"),
        "HEDGEROW_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    running = launched.start(env, tmp_path / "up.log", "--no-beat")
    _wait_until_ready(running)
    descendants = _descendants(running)
    web = next(p for p in descendants if "uvicorn" in " ".join(p.cmdline()))
    web.kill()
    try:
        exit_code = running.process.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hedgerow up kept running without its web server:\n{running.log}")
    assert exit_code == 1
    assert "web exited unexpectedly" in running.log
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == [], f"stray processes: {[p.cmdline() for p in alive]}"


def _embedded_server_processes(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL (its -D names the data dir) and Redis (runs in the data dir)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "cwd"]):
        if process.info["name"] not in ("postgres", "redis-server"):
            continue
        cmdline = " ".join(process.info["cmdline"] or [])
        cwd = process.info["cwd"] or ""
        if str(data_dir) in cmdline or cwd.startswith(str(data_dir)):
            found.append(process)
    return found


@pytest.mark.slow
def test_up_in_embedded_mode_starts_its_own_servers_and_reuses_their_data(
    tmp_path: Path, launched: Launcher
) -> None:
    data_dir = (tmp_path / "data").resolve()
    env = {k: v for k, v in os.environ.items() if k not in URL_VARIABLES}
    env.pop("HEDGEROW_ADMIN_PASSWORD", None)
    env["HEDGEROW_DATA_DIR"] = str(data_dir)

    first = launched.start(env, tmp_path / "first.log")
    _wait_until_ready(first)
    assert httpx.get(f"{first.base_url}/readyz", timeout=5).status_code == 200
    assert "First admin account created" in first.log
    servers = _embedded_server_processes(data_dir)
    assert {p.name() for p in servers} == {"postgres", "redis-server"}
    _stop_and_check(first, _descendants(first))
    _, alive = psutil.wait_procs(servers, timeout=30)
    assert alive == [], f"embedded servers still running: {[p.cmdline() for p in alive]}"

    second = launched.start(env, tmp_path / "second.log")
    _wait_until_ready(second)
    # The admin from the first run is still there, so no new one is made or printed.
    assert "First admin account created" not in second.log
    _stop_and_check(second, _descendants(second))


@pytest.mark.slow
def test_up_with_a_trainer_runs_one_that_the_training_page_counts_on(
    up_database_url: str, tmp_path: Path, launched: Launcher
) -> None:
    redis_url = os.environ["REDIS_URL"]
    env = {
        **os.environ,
        "DATABASE_URL": up_database_url,
        "REDIS_URL": redis_url,
        "HEDGEROW_DATA_DIR": str(tmp_path / "data"),
        "HEDGEROW_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    trainers = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    trainers.delete(availability.TRAINER_NAMES_KEY)

    running = launched.start(env, tmp_path / "up.log", "--no-beat", "--trainer")
    _wait_until_ready(running)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while not availability.live_trainers(trainers):
        assert time.monotonic() < deadline, f"no trainer said it was there:\n{running.log}"
        _pause(running)
    children = [" ".join(p.cmdline()) for p in psutil.Process(running.process.pid).children()]
    assert any(c.endswith("-m hedgerow.cli train") for c in children), children
    _stop_and_check(running, _descendants(running))
    assert availability.live_trainers(trainers) == []


def test_up_with_a_trainer_refuses_to_start_without_the_training_libraries(
    tmp_path: Path,
) -> None:
    # A Python that cannot import TRL, as a machine without the train extra.
    code = (
        "import sys; sys.modules['trl'] = None; from hedgerow.cli import main; "
        "sys.argv = ['hedgerow', 'up', '--trainer']; main()"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "HEDGEROW_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=START_DEADLINE_SECONDS,
    )

    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "make install-train" in " ".join(finished.stderr.split())
    assert not (tmp_path / "data").exists()  # nothing was started
