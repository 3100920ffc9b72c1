"""A release trains the tiny model into a ready version; a killed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from hedgerow.config import REPO_ROOT, get_settings
from hedgerow.models import ModelVersionStatus
from hedgerow.training import evaluation, runner, trainer
from tests.training.conftest import (
    TINY_TRAINING,
    Corpus,
    load_version,
    queue_version,
    wait_until_interrupted,
)

CHECKPOINT_WAIT_SECONDS = 300


def test_release_trains_the_tiny_model_into_a_ready_version_that_learnt(
    corpus: Corpus, models_dir: Path
) -> None:
    version_id = queue_version(corpus)

    status = runner.run_training(corpus.maker, version_id)

    version, run = load_version(corpus, version_id)
    assert status == ModelVersionStatus.ready
    assert version.status == ModelVersionStatus.ready
    assert version.failure_reason is None
    artifact = Path(version.artifact_path or "")
    assert artifact == models_dir / f"{version.name}-v{version_id}"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (artifact / name).is_file(), name
    # Checkpoints only serve a resume; the finished run keeps its log, not its work dir.
    assert not (models_dir / ".work" / str(version_id)).exists()
    assert Path(run.log_path or "").read_text(encoding="utf-8").strip()

    # The model learnt: held-out loss fell, and so did the training loss.
    metrics = version.metrics or {}
    assert metrics["validation_examples"] > 0
    assert metrics["validation_loss"] < metrics["base_validation_loss"] - 1.0
    assert metrics["last_train_loss"] < metrics["first_train_loss"] / 4
    assert run.step == run.total_steps == TINY_TRAINING["training_max_steps"]
    assert run.loss_history[0][0] == 1 and run.loss_history[-1][0] == run.step
    assert run.tokens_per_second and run.tokens_per_second > 0
    assert run.finished_at is not None and run.resumed_from_step is None

    # It reproduces a training answer for its training prompt (greedy decoding).
    conversations = trainer.load_conversations(
        corpus.releases_dir / corpus.release_name, seed=get_settings().training_seed
    )
    examples = trainer.completion_examples(conversations.train)
    model = AutoModelForCausalLM.from_pretrained(artifact)
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    # Sibling replies share their prompt: the answer must be one of that prompt's.
    answers_by_prompt: dict[str, set[str]] = {}
    for example in examples:
        key = json.dumps(example["prompt"])
        answers_by_prompt.setdefault(key, set()).add(example["completion"][0]["content"])
    reproduced = [
        key
        for key, answers in answers_by_prompt.items()
        if evaluation.answer(model, tokenizer, json.loads(key), max_new_tokens=40) in answers
    ]
    assert len(reproduced) == len(answers_by_prompt)

    # Reference prompts: a sample across categories, answered and stored.
    answers = version.reference_answers or []
    assert len(answers) == TINY_TRAINING["training_reference_sample"]
    assert len({item["category"] for item in answers}) == len(answers)
    assert all(item["answer"] for item in answers)
    stored = json.loads((artifact / "evaluation.json").read_text(encoding="utf-8"))
    assert stored["reference_answers"] == answers

    card = (artifact / "README.md").read_text(encoding="utf-8")
    for expected in (
        f"**Release:** {corpus.release_name}",
        "**Base model:** a tiny Llama-style model",
        "**License:** CC-BY-4.0",
        "## Prompt format",
        "<|im_start|>",
        "## Training configuration",
        "| learning_rate | 0.003 |",
        "**Hardware:** CPU",
        "**Training time:**",
        "| task | metric | value | stderr |",
        f"| validation | loss | {metrics['validation_loss']:.4f} |",
        "## Intended use",
        "## Limitations",
    ):
        assert expected in card, expected


def _wait_for_checkpoint(process: subprocess.Popen[bytes], checkpoints: Path) -> Path:
    deadline = time.monotonic() + CHECKPOINT_WAIT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "the training process exited before its checkpoint"
        # Looking only: the trainer's own helper removes half-written checkpoints, and
        # this one is being written by the other process.
        complete = sorted(checkpoints.glob(f"*/{trainer.CHECKPOINT_COMPLETE_MARKER}"))
        if complete:
            return complete[0].parent
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_run_killed_after_a_checkpoint_resumes_from_it(corpus: Corpus, models_dir: Path) -> None:
    version_id = queue_version(corpus)
    env = {
        **os.environ,
        "HEDGEROW_RELEASES_DIR": str(corpus.releases_dir),
        "HEDGEROW_TRAINING_MODELS_DIR": str(models_dir),
        **{f"HEDGEROW_{key.upper()}": str(value) for key, value in TINY_TRAINING.items()},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.training.kill_target", str(version_id)],
        cwd=REPO_ROOT,
        env=env,
    )
    checkpoints = models_dir / ".work" / str(version_id) / "checkpoints"
    try:
        checkpoint = _wait_for_checkpoint(process, checkpoints)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert trainer.checkpoint_step(checkpoint) == TINY_TRAINING["training_save_steps"]
    # The run resumes from the newest complete checkpoint: usually that one, a later one
    # if it was written before the kill landed.
    newest = trainer.last_complete_checkpoint(checkpoints)
    assert newest is not None
    newest_step = trainer.checkpoint_step(newest)
    killed, killed_run = load_version(corpus, version_id)
    assert killed.status == ModelVersionStatus.training
    assert killed_run.step >= 1, "progress was written while it trained"
    assert killed.artifact_path is None
    wait_until_interrupted(corpus.maker, version_id)

    status = runner.run_training(corpus.maker, version_id)

    version, run = load_version(corpus, version_id)
    assert status == ModelVersionStatus.ready
    assert run.resumed_from_step == newest_step
    assert run.attempts == 2
    assert run.step == TINY_TRAINING["training_max_steps"]
    assert (
        version.metrics
        and version.metrics["validation_loss"] < (version.metrics["base_validation_loss"])
    )
    assert Path(version.artifact_path or "").is_dir()
    assert "resumed from checkpoint at step" in Path(run.log_path or "").read_text("utf-8")
    assert runner.interrupted_versions(corpus.maker) == []
