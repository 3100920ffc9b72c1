"""Where a run keeps its files: the work directory (base model, checkpoints, staged
artifact), the published artifact, and the per-run log."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hedgerow.config import Settings
from hedgerow.models import TrainingRun
from hedgerow.training.card import CardFacts, render_model_card
from hedgerow.training.trainer import TrainingConfig

LOGGERS = ("hedgerow.training", "transformers", "trl")


class EvaluatedModel(Protocol):
    model: Any
    tokenizer: Any
    metrics: dict[str, Any]
    reference_answers: list[dict[str, Any]]


@dataclass
class RunPaths:
    work: Path
    checkpoints: Path
    staged_artifact: Path
    artifact: Path
    log: Path
    baseline: Path
    # A finished stage's model (see stage_store), and DPO's own checkpoints.
    sft_model: Path
    dpo_model: Path
    dpo_checkpoints: Path

    @classmethod
    def for_version(cls, settings: Settings, version_id: int, name: str) -> RunPaths:
        root = settings.models_root
        work = root / ".work" / str(version_id)
        return cls(
            work=work,
            checkpoints=work / "checkpoints",
            staged_artifact=work / "artifact",
            artifact=root / f"{name}-v{version_id}",
            log=root / "logs" / f"{version_id}.log",
            baseline=work / "baseline.json",
            sft_model=work / "sft-model",
            dpo_model=work / "dpo-model",
            dpo_checkpoints=work / "dpo-checkpoints",
        )


def remove_work_directory(paths: RunPaths) -> None:
    shutil.rmtree(paths.work, ignore_errors=True)
    with contextlib.suppress(OSError):  # other runs' work directories are still there
        paths.work.parent.rmdir()


def write_artifact(
    paths: RunPaths, outcome: EvaluatedModel, facts: CardFacts, config: TrainingConfig
) -> None:
    """Write everything into the work directory, then move it into place in one rename."""
    staged = paths.staged_artifact
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    outcome.model.save_pretrained(staged)
    outcome.tokenizer.save_pretrained(staged)
    (staged / "README.md").write_text(render_model_card(facts), encoding="utf-8")
    (staged / "evaluation.json").write_text(
        json.dumps(
            {"metrics": outcome.metrics, "reference_answers": outcome.reference_answers},
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    (staged / "training_config.json").write_text(
        json.dumps(config.as_dict(), indent=2) + "\n", encoding="utf-8"
    )
    # Left over from an attempt that died between its rename and its commit.
    shutil.rmtree(paths.artifact, ignore_errors=True)
    paths.artifact.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, paths.artifact)


def attach_run_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("hedgerow.training").setLevel(logging.INFO)
    return handler


def detach_run_log(handler: logging.Handler) -> None:
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def read_log_tail(run: TrainingRun, max_bytes: int = 20_000) -> str:
    if not run.log_path:
        return ""
    path = Path(run.log_path)
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - max_bytes, 0))
        return handle.read().decode("utf-8", errors="replace")
