"""Multi-process runs: the worker launches a group of processes with accelerate (here two
CPU processes talking over gloo, as two GPUs would over NCCL), relays the main rank's
progress, and publishes what the main rank saved; a failing group fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from hedgerow.models import ModelVersion, ModelVersionStatus, TrainingRun
from hedgerow.training import evaluation, launch, runner, tiny, trainer
from hedgerow.training.trainer import Progress, TrainingConfig
from tests.growth.factories import override_settings
from tests.training.conftest import Corpus, load_version, queue_version

# Two processes each take a batch of 8 per step: half the steps of the one-process run
# see as many examples.
DISTRIBUTED_STEPS = 40


def _run(corpus: Corpus, **overrides: object) -> tuple[ModelVersion, TrainingRun]:
    version_id = queue_version(corpus, **overrides)
    runner.run_training(corpus.maker, version_id)
    return load_version(corpus, version_id)


def test_two_processes_train_a_ready_version_that_learnt(
    corpus: Corpus, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, training_max_steps=DISTRIBUTED_STEPS)

    version, run = _run(corpus, num_processes=2)

    assert version.status == ModelVersionStatus.ready, version.failure_reason
    metrics = version.metrics or {}
    # The world size the ranks reported, not just the one asked for.
    assert metrics["world_size"] == 2
    assert version.config["num_processes"] == 2
    assert (run.hardware or "").startswith("2 processes · CPU")
    # Progress came from the main rank while the group trained.
    assert run.step == run.total_steps == DISTRIBUTED_STEPS
    assert [point[0] for point in run.loss_history][:2] == [1, 2]
    assert metrics["last_train_loss"] < metrics["first_train_loss"] / 4
    assert metrics["validation_loss"] < metrics["base_validation_loss"] - 1.0

    artifact = Path(version.artifact_path or "")
    model = AutoModelForCausalLM.from_pretrained(artifact)
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    prompt = [{"role": "user", "content": "What do wrens do in spring?"}]
    assert evaluation.answer(model, tokenizer, prompt, max_new_tokens=20)
    card = (artifact / "README.md").read_text(encoding="utf-8")
    assert "**Processes:** 2 (data parallel, launched with accelerate)" in card
    assert "| num_processes | 2 |" in card
    log = Path(run.log_path or "").read_text(encoding="utf-8")
    assert "launching 2 processes for sft" in log
    assert not (models_dir / ".work" / str(version.id)).exists()


def test_a_failing_process_fails_the_run_with_its_error(
    corpus: Corpus, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows of one token leave no answer token to learn from: the ranks, which alone
    # tokenize the training data, find nothing to train on.
    override_settings(monkeypatch, training_max_length=1)

    version, _ = _run(corpus, num_processes=2)

    assert version.status == ModelVersionStatus.failed
    reason = version.failure_reason or ""
    assert reason.startswith("The SFT training processes failed (rank 0: ValueError: num_samples")
    assert "rank 1: ValueError" in reason
    # The ranks' own traceback, not the launcher's report that follows it.
    assert "\nLast lines of their stderr:\n" in reason
    assert reason.rstrip().endswith("but got num_samples=0")
    assert "ChildFailedError" not in reason
    assert version.artifact_path is None and version.metrics is None
    assert sorted(path.name for path in models_dir.iterdir()) == ["logs"]


def _tiny_config(**overrides: object) -> TrainingConfig:
    values: dict[str, object] = {
        "base_model": "tiny",
        "method": "full",
        "epochs": 1,
        "max_steps": 4,
        "learning_rate": 1e-3,
        "batch_size": 2,
        "gradient_accumulation": 1,
        "max_length": 64,
        "warmup_ratio": 0.0,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "save_steps": 2,
        "seed": 1,
        "min_conversations": 1,
        "bf16": False,
        "packing": False,
    }
    return TrainingConfig(**{**values, **overrides})  # type: ignore[arg-type]


def test_all_ranks_resume_from_the_checkpoint_the_worker_picked(tmp_path: Path) -> None:
    conversations = [
        [
            {"role": "user", "content": f"What do {animal} do in {season}?"},
            {"role": "assistant", "content": f"They rest under the {tree}."},
        ]
        for animal, season, tree in [
            ("wrens", "spring", "hazel"),
            ("voles", "winter", "holly"),
            ("bees", "summer", "elder"),
            ("robins", "autumn", "hawthorn"),
        ]
    ]
    examples = trainer.completion_examples(conversations)
    texts = [message["content"] for messages in conversations for message in messages]
    base = tiny.build_tiny_model(texts, tmp_path / "base", max_length=64, seed=1)
    checkpoints = tmp_path / "checkpoints"
    # Two steps in this process leave checkpoint-2; two ranks then train steps 3 and 4.
    trainer.train(_tiny_config(max_steps=2), str(base), examples, checkpoints, lambda _: None)
    checkpoint = trainer.last_complete_checkpoint(checkpoints)
    assert checkpoint is not None and checkpoint.name == "checkpoint-2"
    reported: list[Progress] = []

    outcome = launch.run_stage_in_processes(
        "sft",
        _tiny_config(num_processes=2),
        str(base),
        examples,
        checkpoints,
        checkpoint,
        tmp_path / "sft-model",
        tmp_path,
        reported.append,
    )

    assert outcome.world_size == 2
    assert outcome.resumed_from_step == 2
    assert outcome.global_step == 4
    # Only the main rank reported, each step once, from the step after the checkpoint.
    assert [progress.step for progress in reported] == [3, 4]
    assert (checkpoints / "checkpoint-4" / trainer.CHECKPOINT_COMPLETE_MARKER).is_file()
    assert outcome.model is not None


def test_the_launch_command_names_the_processes_and_an_accelerate_config(
    tmp_path: Path,
) -> None:
    config = _tiny_config(num_processes=4)
    job = tmp_path / "job.json"

    command = launch.launch_command(config, job, port=29123)

    # Our module ties the launcher to this process, then becomes `accelerate launch`.
    assert command[1:5] == ["-m", "hedgerow.training.distributed", "--launch", str(os.getpid())]
    assert command[command.index("--num_processes") + 1] == "4"
    assert command[command.index("--main_process_port") + 1] == "29123"
    assert "--multi_gpu" in command
    assert command[-3:] == ["-m", "hedgerow.training.distributed", str(job)]
    config.accelerate_config = str(tmp_path / "deepspeed.yaml")
    with_config = launch.launch_command(config, job, port=29123)
    assert "--multi_gpu" not in with_config
    assert with_config[with_config.index("--config_file") + 1] == config.accelerate_config
