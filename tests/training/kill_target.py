"""Run by test_train_run in a subprocess: a training run that stops after its first
checkpoint and waits to be killed."""

from __future__ import annotations

import sys
import threading
from typing import Any

from transformers import TrainerCallback

from hedgerow.db import get_sessionmaker
from hedgerow.training import service


class HangAfterFirstSave(TrainerCallback):
    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        threading.Event().wait()


if __name__ == "__main__":
    service.run_training(
        get_sessionmaker(), int(sys.argv[1]), extra_callbacks=[HangAfterFirstSave()]
    )
