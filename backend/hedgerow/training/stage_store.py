"""A finished stage's model on disk, in the run's work directory.

Written by the process that trained the stage (this one, or rank 0 of a process group),
read by the worker that evaluates it, by the DPO stage that starts from it, and by an
attempt that resumes after a kill: a run killed during DPO does not train SFT again.
The model is written into a staging directory and moved into place in one rename, and
`stage.json` (the facts of the stage) is written last, so a directory that has it is
complete.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hedgerow.training.trainer import TrainingConfig, TrainOutcome, load_model, load_tokenizer

STAGE_FACTS_FILE = "stage.json"


@dataclass
class StageFacts:
    global_step: int
    train_tokens: int
    seconds: float
    resumed_from_step: int | None
    world_size: int

    @classmethod
    def of(cls, outcome: TrainOutcome) -> StageFacts:
        return cls(
            global_step=outcome.global_step,
            train_tokens=outcome.train_tokens,
            seconds=outcome.seconds,
            resumed_from_step=outcome.resumed_from_step,
            world_size=outcome.world_size,
        )


def save_stage(outcome: TrainOutcome, directory: Path) -> None:
    staged = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    outcome.model.save_pretrained(staged)
    outcome.tokenizer.save_pretrained(staged)
    facts = StageFacts.of(outcome)
    (staged / STAGE_FACTS_FILE).write_text(json.dumps(facts.__dict__) + "\n", encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(staged, directory)


def stage_facts(directory: Path) -> StageFacts | None:
    """The facts of a complete stage in `directory`, or None."""
    path = directory / STAGE_FACTS_FILE
    if not path.is_file():
        return None
    stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return StageFacts(**stored)


def load_stage(directory: Path, config: TrainingConfig) -> TrainOutcome:
    """The stage's model, on a GPU when there is one, with its facts."""
    facts = stage_facts(directory)
    if facts is None:
        raise FileNotFoundError(f"No finished stage in {directory}")
    return TrainOutcome(
        model=load_model(str(directory), config, for_evaluation=True),
        tokenizer=load_tokenizer(str(directory)),
        resumed_from_step=facts.resumed_from_step,
        global_step=facts.global_step,
        train_tokens=facts.train_tokens,
        seconds=facts.seconds,
        world_size=facts.world_size,
    )
