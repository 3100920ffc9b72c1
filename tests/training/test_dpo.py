"""The DPO stage: after SFT, the model learns the volunteers' preferences; too few pairs
skip it with a note; a run killed during DPO resumes DPO without training SFT again."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from transformers import AutoModelForCausalLM, AutoTokenizer

from hedgerow.config import REPO_ROOT, get_settings
from hedgerow.models import ModelVersionStatus
from hedgerow.training import dpo, evaluation, runner, service, trainer
from hedgerow.training.trainer import MAX_VALIDATION_EXAMPLES
from tests.growth.factories import override_settings
from tests.training.conftest import (
    TINY_TRAINING,
    Corpus,
    grow_corpus,
    load_version,
    queue_version,
    wait_until_interrupted,
)

# As conftest's texts, except that only the best-ranked reply answers the question; the
# others dodge it. SFT learns both (both are in sft.jsonl); DPO must learn which the
# rankers preferred.
RANKED_TEXTS = """
UPDATE message SET text = CASE
  WHEN role = 'prompter' THEN 'What do '
       || (ARRAY['hedgehogs','wrens','dormice','badgers','robins','voles','bees'])[1 + id % 7]
       || ' do in ' || (ARRAY['spring','summer','autumn','winter'])[1 + (id / 7) % 4] || '?'
  WHEN coalesce(consensus_rank, 0) > 0 THEN 'Who knows? Ask someone else.'
  ELSE 'They ' || (ARRAY['sleep','sing','forage','nest','hide','wander','rest'])[1 + parent_id % 7]
       || ' under the '
       || (ARRAY['hawthorn','hazel','holly','blackthorn','elder'])
          [1 + (parent_id % 7 + parent_id / 7) % 5]
       || ' at ' || (ARRAY['dawn','noon','dusk','night'])[1 + (parent_id / 7) % 4] || '.'
  END
"""
SFT_STEPS = 40
DPO_STEPS = 30
DPO_TRAINING = {
    "training_max_steps": SFT_STEPS,
    "training_dpo": True,
    "training_dpo_max_steps": DPO_STEPS,
    "training_dpo_learning_rate": 5e-4,
    "training_dpo_beta": 0.1,
    "training_dpo_min_pairs": 2,
    "training_save_steps": 10,
}
CHECKPOINT_WAIT_SECONDS = 300


@pytest.fixture(scope="module")
def corpus(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    # Twice conftest's prompts: a few more preference pairs to learn from.
    yield from grow_corpus(engine, tmp_path_factory, RANKED_TEXTS, prompts=12)


@pytest.fixture
def dpo_settings(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    override_settings(monkeypatch, **DPO_TRAINING)
    return models_dir


def _pairs(corpus: Corpus) -> dpo.PreferencePairs:
    release_dir = corpus.releases_dir / corpus.release_name
    return dpo.load_preference_pairs(release_dir, seed=get_settings().training_seed)


def test_dpo_after_sft_learns_to_prefer_the_chosen_replies(
    corpus: Corpus, dpo_settings: Path
) -> None:
    pairs = _pairs(corpus)
    assert len(pairs.train) >= 2
    assert all(pair["chosen"] != pair["rejected"] for pair in pairs.train)
    version_id = queue_version(corpus)

    status = runner.run_training(corpus.maker, version_id)

    version, run = load_version(corpus, version_id)
    assert status == ModelVersionStatus.ready, version.failure_reason
    metrics = version.metrics or {}
    assert metrics["dpo_train_pairs"] == len(pairs.train)
    assert metrics["dpo_steps"] == DPO_STEPS
    # It learnt the preferences: on its training pairs, more of them and by more.
    before = metrics["train_preference_accuracy_before_dpo"]
    after = metrics["train_preference_accuracy_after_dpo"]
    assert after > before and after == 1.0
    margin_before = metrics["train_preference_reward_margin_before_dpo"]
    margin_after = metrics["train_preference_reward_margin_after_dpo"]
    assert margin_after > margin_before + 1.0
    # The reference is the SFT model: DPO starts where policy and reference agree, at a
    # loss of log 2 (a reference from anywhere else would start elsewhere).
    assert metrics["dpo_first_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert metrics["dpo_last_loss"] < metrics["dpo_first_loss"]
    # The stored numbers describe the published model.
    artifact = Path(version.artifact_path or "")
    model = AutoModelForCausalLM.from_pretrained(artifact)
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    rescored = evaluation.preference_scores(
        model,
        tokenizer,
        pairs.train[:MAX_VALIDATION_EXAMPLES],
        TINY_TRAINING["training_max_length"],  # type: ignore[arg-type]
        0.1,
    )
    assert rescored is not None and rescored.accuracy == after
    assert rescored.mean_margin == pytest.approx(margin_after, rel=1e-3)

    # One step count across both stages: DPO's steps come after SFT's.
    assert run.total_steps == run.step == SFT_STEPS + DPO_STEPS
    sft_points = [point for point in run.loss_history if len(point) == 2]
    dpo_points = [point for point in run.loss_history if len(point) == 3]
    assert sft_points[-1][0] == SFT_STEPS
    assert [point[0] for point in dpo_points] == list(range(SFT_STEPS + 1, run.step + 1))

    card = (artifact / "README.md").read_text(encoding="utf-8")
    assert f"**Stages:** SFT, then DPO (beta 0.1) on {len(pairs.train)} preference pairs" in card
    assert "- dpo\n" in card
    assert f"| training preference pairs (after DPO) | accuracy | {after:.4f} |" in card
    assert "| training preference pairs (SFT model) | reward margin |" in card
    assert "| dpo_beta | 0.1 |" in card
    assert "Its preference tuning (DPO)" in card


def test_lora_dpo_takes_the_sft_model_without_its_new_adapter_as_reference(
    corpus: Corpus, dpo_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(
        monkeypatch,
        training_method="lora",
        training_lora_r=4,
        training_lora_alpha=8,
        training_max_steps=5,
        training_dpo_max_steps=4,
    )
    version_id = queue_version(corpus)

    status = runner.run_training(corpus.maker, version_id)

    version, run = load_version(corpus, version_id)
    assert status == ModelVersionStatus.ready, version.failure_reason
    assert version.config["method"] == "lora"
    metrics = version.metrics or {}
    assert metrics["dpo_steps"] == 4
    # A fresh adapter changes nothing yet: policy and reference agree at the start.
    assert metrics["dpo_first_loss"] == pytest.approx(math.log(2), abs=1e-4)
    # Both adapters were merged: the artifact is a plain model.
    artifact = Path(version.artifact_path or "")
    assert not (artifact / "adapter_config.json").exists()
    assert AutoModelForCausalLM.from_pretrained(artifact) is not None
    assert run.step == 5 + 4


def test_both_stages_run_in_two_processes(
    corpus: Corpus, dpo_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes see twice the rows per step: half the steps.
    override_settings(monkeypatch, training_max_steps=SFT_STEPS // 2, training_dpo_max_steps=15)
    with corpus.maker.begin() as db:
        version_id = service.start_run(db, corpus.release_id, requested_by=None, num_processes=2).id

    status = runner.run_training(corpus.maker, version_id)

    version, run = load_version(corpus, version_id)
    assert status == ModelVersionStatus.ready, version.failure_reason
    metrics = version.metrics or {}
    assert metrics["world_size"] == 2
    assert metrics["dpo_steps"] == 15
    assert metrics["dpo_first_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert (
        metrics["train_preference_accuracy_after_dpo"]
        > metrics["train_preference_accuracy_before_dpo"]
    )
    assert run.step == run.total_steps == SFT_STEPS // 2 + 15
    log = Path(run.log_path or "").read_text(encoding="utf-8")
    assert "launching 2 processes for sft" in log
    assert "launching 2 processes for dpo" in log


def test_too_few_preference_pairs_skip_dpo_with_a_note(
    corpus: Corpus, dpo_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, training_dpo_min_pairs=1000, training_max_steps=5)
    version_id = queue_version(corpus)

    status = runner.run_training(corpus.maker, version_id)

    version, run = load_version(corpus, version_id)
    assert status == ModelVersionStatus.ready, version.failure_reason
    note = (version.metrics or {})["dpo_skipped"]
    assert "needs at least 1000" in note and "HEDGEROW_TRAINING_DPO_MIN_PAIRS" in note
    assert "dpo_steps" not in (version.metrics or {})
    assert run.total_steps == 5
    card = (Path(version.artifact_path or "") / "README.md").read_text(encoding="utf-8")
    assert f"**Stages:** {note}" in card
    assert "It has had no preference tuning" in card


def test_run_killed_during_dpo_resumes_dpo_without_training_sft_again(
    corpus: Corpus, dpo_settings: Path
) -> None:
    version_id = queue_version(corpus)
    env = {
        **os.environ,
        "HEDGEROW_RELEASES_DIR": str(corpus.releases_dir),
        "HEDGEROW_TRAINING_MODELS_DIR": str(dpo_settings),
        **{
            f"HEDGEROW_{key.upper()}": str(value)
            for key, value in {**TINY_TRAINING, **DPO_TRAINING}.items()
        },
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.training.kill_target", str(version_id), "dpo"],
        cwd=REPO_ROOT,
        env=env,
    )
    work = dpo_settings / ".work" / str(version_id)
    try:
        deadline = time.monotonic() + CHECKPOINT_WAIT_SECONDS
        while not list((work / "dpo-checkpoints").glob(f"*/{trainer.CHECKPOINT_COMPLETE_MARKER}")):
            assert process.poll() is None, "the training process exited before DPO saved"
            assert time.monotonic() < deadline, "no DPO checkpoint appeared"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # SFT's model was saved, and its checkpoints gave way to it.
    assert (work / "sft-model" / "stage.json").is_file()
    assert not (work / "checkpoints").exists()
    # The newest complete DPO checkpoint: usually the first, a later one if it was written
    # before the kill landed.
    newest = trainer.last_complete_checkpoint(work / "dpo-checkpoints")
    assert newest is not None
    dpo_checkpoint_step = trainer.checkpoint_step(newest)
    assert dpo_checkpoint_step % DPO_TRAINING["training_save_steps"] == 0
    wait_until_interrupted(corpus.maker, version_id)

    status = runner.run_training(corpus.maker, version_id)

    version, run = load_version(corpus, version_id)
    assert status == ModelVersionStatus.ready, version.failure_reason
    assert run.attempts == 2
    assert run.resumed_from_step == SFT_STEPS + dpo_checkpoint_step
    assert run.step == SFT_STEPS + DPO_STEPS
    # SFT's loss curve was drawn once: the second attempt did not train it again.
    sft_steps = [point[0] for point in run.loss_history if len(point) == 2]
    assert sft_steps == list(range(1, SFT_STEPS + 1))
    log = Path(run.log_path or "").read_text(encoding="utf-8")
    assert "SFT finished in an earlier attempt" in log
    # The second attempt logged DPO steps only, from after the checkpoint.
    second_attempt = log.split("SFT finished in an earlier attempt", 1)[1]
    assert "resumed from checkpoint at step" in second_attempt
    metrics = version.metrics or {}
    assert metrics["steps"] == SFT_STEPS and metrics["dpo_steps"] == DPO_STEPS
    assert (
        metrics["train_preference_accuracy_after_dpo"]
        > metrics["train_preference_accuracy_before_dpo"]
    )
