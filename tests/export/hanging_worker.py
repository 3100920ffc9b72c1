"""The Celery app of the test workers in test_job_retry (`celery -A
tests.export.hanging_worker`): hedgerow's own app, whose export stops after its first tree
on the first attempt, writes the pid of the process running it to the file named by
HEDGEROW_TEST_HANG_MARKER and waits to be killed. Every later attempt (the file exists)
runs through."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from hedgerow.export import run
from hedgerow.worker import celery_app

__all__ = ["celery_app"]

MARKER = Path(os.environ["HEDGEROW_TEST_HANG_MARKER"])
_run_export = run.run_export


def _hang_on_the_first_attempt(done: int, total: int) -> None:
    if done == 0:
        return
    staged = MARKER.with_name(f"{MARKER.name}.{os.getpid()}")
    staged.write_text(str(os.getpid()))
    try:
        # A hard link appears whole or not at all, and only once.
        os.link(staged, MARKER)
    except FileExistsError:
        return
    threading.Event().wait()


def _run_export_hanging_once(*args: Any, **kwargs: Any) -> run.ExportOutcome:
    return _run_export(*args, progress=_hang_on_the_first_attempt, **kwargs)


# Progress after every tree, so the hang comes while the release is half written.
run.PROGRESS_EVERY_MESSAGES = 1
run.run_export = _run_export_hanging_once  # type: ignore[assignment]
