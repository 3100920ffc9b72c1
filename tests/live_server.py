"""A real uvicorn serving the app on a free loopback port, for browser tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
# Generous: the model server imports torch and loads its models before it answers, which
# takes minutes on a machine busy with other test processes.
START_DEADLINE_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving_process(
    command: list[str], env: dict[str, str], log_path: Path, ready_url: str, name: str
) -> Iterator[None]:
    """Run `command` (its output to `log_path`, quoted in any start-up failure) until
    `ready_url` answers 200; stop it on the way out."""
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + START_DEADLINE_SECONDS
            while True:
                if server.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {server.returncode}:\n{log_path.read_text()}"
                    )
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{log_path.read_text()}")
                time.sleep(0.1)  # polling readiness, bounded by the deadline
            yield
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


@contextmanager
def live_uvicorn(
    env: dict[str, str], log_path: Path, workers: int = 1, port: int | None = None
) -> Iterator[str]:
    """Start the server with `env` (and `workers` processes), wait until /readyz answers,
    yield its base URL; stop it on the way out. Its output goes to `log_path`, quoted in any
    start-up failure. `port`: one chosen beforehand (for a HEDGEROW_BASE_URL in `env`)."""
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "hedgerow.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    with serving_process(command, env, log_path, f"{base_url}/readyz", "the server"):
        yield base_url
