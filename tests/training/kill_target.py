"""Run by the resume tests in a subprocess: a training run that stops after its first
checkpoint (of the stage named by the second argument, SFT's by default) and waits to be
killed."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from hedgerow.db import get_sessionmaker
from hedgerow.training import runner

CHECKPOINT_DIRECTORIES = {"sft": "checkpoints", "dpo": "dpo-checkpoints"}


class HangAfterFirstSave(TrainerCallback):
    def __init__(self, stage: str) -> None:
        self.directory = CHECKPOINT_DIRECTORIES[stage]

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if Path(args.output_dir).name == self.directory:
            threading.Event().wait()


if __name__ == "__main__":
    stage = sys.argv[2] if len(sys.argv) > 2 else "sft"
    runner.run_training(
        get_sessionmaker(), int(sys.argv[1]), extra_callbacks=[HangAfterFirstSave(stage)]
    )
