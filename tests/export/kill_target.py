"""Run by test_publish in a subprocess: an export that stops after its first tree and
waits to be killed."""

from __future__ import annotations

import threading

from hedgerow.db import get_sessionmaker
from hedgerow.export import service


def _hang_once_writing(done: int, total: int) -> None:
    if done > 0:
        threading.Event().wait()


if __name__ == "__main__":
    # Report progress after every tree, so the hang comes while files are half written.
    service.PROGRESS_EVERY_MESSAGES = 1
    service.run_export(get_sessionmaker(), progress=_hang_once_writing)
