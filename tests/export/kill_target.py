"""Run by test_publish in a subprocess: an export that stops after its first tree and
waits to be killed. With --workers, the trees go in many one-batch parts to two worker
processes, and the export stops when the first batch is done."""

from __future__ import annotations

import sys
import threading

from hedgerow.config import get_settings
from hedgerow.db import get_sessionmaker
from hedgerow.export import run


def _hang_once_writing(done: int, total: int) -> None:
    if done > 0:
        threading.Event().wait()


if __name__ == "__main__":
    # Report progress after every tree, so the hang comes while files are half written.
    run.PROGRESS_EVERY_MESSAGES = 1
    if "--workers" in sys.argv:
        run.BATCH_MESSAGES = 1
        run.PART_BATCHES = 1
        get_settings().export_workers = 2
    run.run_export(get_sessionmaker(), progress=_hang_once_writing)
