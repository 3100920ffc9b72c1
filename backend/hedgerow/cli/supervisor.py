"""The child processes of ``hedgerow up``: started in their own sessions, stopped in
order, and watched so that one exiting on its own stops the rest. The embedded servers
are watched too: one that crashes is restarted a few times before everything stops."""

from __future__ import annotations

import gc
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from hedgerow.cli.common import err_console
from hedgerow.config import Settings
from hedgerow.embedded import EmbeddedServers
from hedgerow.embedded_servers import die_with_parent

if TYPE_CHECKING:
    from celery import Celery

# How long a child gets to finish its current request or job after SIGTERM before it is
# killed. Celery's warm shutdown waits for the running job, so this is generous.
CHILD_STOP_TIMEOUT_SECONDS = 20.0
WEB_READY_TIMEOUT_SECONDS = 60.0
WORKER_READY_TIMEOUT_SECONDS = 60.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Supervisor:
    """Starts the children in their own sessions, so a Ctrl-C reaches only us and we stop
    them in order; reports the first one that exits on its own."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.embedded: EmbeddedServers | None = None

    def watch(self, embedded: EmbeddedServers) -> None:
        """Also watch these embedded servers (those this process started)."""
        self.embedded = embedded

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested.set()

    def start(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv,
            start_new_session=True,
            # If `hedgerow up` itself is killed (SIGKILL, OOM), its children follow instead
            # of lingering and holding the port.
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        self.children.append(Child(name, process))

    def exited_child(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait(self) -> str | None:
        """Block until a stop is requested (None) or something fails for good: a child
        exits, or an embedded server crashed more often than it may be restarted. Returns
        what happened."""
        while not self.stop_requested.wait(0.5):
            exited = self.exited_child()
            if exited is not None:
                return f"{exited.name} exited unexpectedly (code {exited.process.returncode})"
            if self.embedded is not None:
                # The restart happens here, in the main thread: the server's death signal
                # is tied to the thread that started it.
                lost = self.embedded.revive()
                if lost is not None:
                    return lost
        return None

    def stop_all(self, timeout: float = CHILD_STOP_TIMEOUT_SECONDS) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                err_console.print(f"{child.name} did not stop in {timeout:.0f}s; killing it")
                child.process.kill()
                child.process.wait()


def wait_until_worker_answers(settings: Settings, supervisor: Supervisor) -> bool:
    """Until a Celery worker answers a ping: by then it has printed its banner and its
    "ready" line, so what `up` prints next is not scrolled away by them."""
    from hedgerow.worker import make_celery

    app = make_celery(settings)
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if supervisor.stop_requested.is_set() or supervisor.exited_child() is not None:
                return False
            try:
                if app.control.ping(timeout=0.5):
                    return True
            except Exception:  # any broker trouble: the worker cannot answer yet either
                supervisor.stop_requested.wait(0.2)
        return False
    finally:
        _let_go_of_the_broker(app)


def _let_go_of_the_broker(app: Celery) -> None:
    """Close every connection the ping opened, not to leave idle clients on Redis for the
    life of `up`. Celery keeps them in two pools and in objects that refer to each
    other, which only the garbage collector frees (app.close() alone leaves four open)."""
    app.amqp.producer_pool.force_close_all()
    app.pool.force_close_all()
    app.close()
    gc.collect()


def wait_until_serving(url: str, supervisor: Supervisor) -> bool:
    deadline = time.monotonic() + WEB_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if supervisor.stop_requested.is_set() or supervisor.exited_child() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        supervisor.stop_requested.wait(0.2)
    return False
