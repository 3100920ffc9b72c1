"""The stages of a run: SFT, then (optionally) DPO from the SFT model, each trained in
this process or, with more than one process, by a group launched with accelerate.

A stage that must outlive its process is saved in the work directory (`stage_store`):
a multi-process stage always (the worker evaluates what rank 0 saved), and SFT before
DPO (DPO starts from it, and a run killed during DPO resumes DPO without training SFT
again). Each stage keeps its own checkpoints; a resumed stage starts from its newest
complete one. DPO's steps are reported after SFT's (step = SFT steps + DPO step), with
`stage="dpo"`, so the run page shows one count across both stages.

Nothing here touches the database.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hedgerow.training import artifacts, dpo, evaluation, launch, stage_store, trainer
from hedgerow.training.card import MetricRow
from hedgerow.training.trainer import (
    MAX_VALIDATION_EXAMPLES,
    Progress,
    ProgressCallback,
    TrainingConfig,
    TrainOutcome,
)

logger = logging.getLogger(__name__)


@dataclass
class DpoResult:
    """What the DPO stage did, or why it did not run."""

    ran: bool
    note: str
    metrics: dict[str, Any] = field(default_factory=dict)
    rows: list[MetricRow] = field(default_factory=list)


@dataclass
class StagesOutcome:
    final: TrainOutcome  # the model to evaluate and publish
    sft: stage_store.StageFacts
    dpo: stage_store.StageFacts | None
    dpo_result: DpoResult | None
    # The overall step the run resumed from (SFT steps count first), None for a fresh one.
    resumed_from_step: int | None
    # The SFT model's validation loss, when DPO changed the model after it.
    sft_validation_loss: evaluation.LossSummary | None


def run_stages(
    config: TrainingConfig,
    base: str,
    train_examples: list[dict[str, Any]],
    validation_examples: list[dict[str, Any]],
    release_dir: Path,
    paths: artifacts.RunPaths,
    report: ProgressCallback,
    extra_callbacks: list[Any] | None,
) -> StagesOutcome:
    # Known before SFT: the SFT model is saved for a DPO stage only if one will run.
    pairs, skipped = _preference_pairs(config, release_dir)
    sft, sft_reused = _sft_stage(
        config, base, train_examples, paths, report, extra_callbacks, dpo_follows=pairs is not None
    )
    sft_facts = stage_store.StageFacts.of(sft)
    resumed = sft_facts.global_step if sft_reused else sft.resumed_from_step
    if pairs is None:
        return StagesOutcome(sft, sft_facts, None, skipped, resumed, None)

    # Measured on a capped sample, like validation: scoring runs twice per run.
    train_pairs = pairs.train[:MAX_VALIDATION_EXAMPLES]
    validation_pairs = pairs.validation[:MAX_VALIDATION_EXAMPLES]
    before = _preferences(sft, train_pairs, validation_pairs, config)
    sft_loss = evaluation.validation_loss(
        sft.model, sft.tokenizer, validation_examples, config.max_length
    )
    # DPO loads its policy and its reference from the saved SFT model.
    sft.model = None
    trainer.release_memory()
    tuned = _dpo_stage(config, pairs.train, paths, sft_facts.global_step, report, extra_callbacks)
    if sft_reused:
        resumed = sft_facts.global_step + (tuned.resumed_from_step or 0)
    after = _preferences(tuned, train_pairs, validation_pairs, config)
    result = _dpo_result(config, len(pairs.train), len(pairs.validation), before, after)
    return StagesOutcome(
        final=tuned,
        sft=sft_facts,
        dpo=stage_store.StageFacts.of(tuned),
        dpo_result=result,
        resumed_from_step=resumed,
        sft_validation_loss=sft_loss,
    )


def _preference_pairs(
    config: TrainingConfig, release_dir: Path
) -> tuple[dpo.PreferencePairs | None, DpoResult | None]:
    """The pairs a DPO stage trains on, or None with why it is skipped (None if DPO is off)."""
    if not config.dpo:
        return None, None
    pairs = dpo.load_preference_pairs(release_dir, config.seed)
    if len(pairs.train) >= config.dpo_min_pairs:
        return pairs, None
    note = (
        f"DPO skipped: the release has {len(pairs.train)} training preference pairs and "
        f"the stage needs at least {config.dpo_min_pairs} "
        "(HEDGEROW_TRAINING_DPO_MIN_PAIRS); the model is the SFT model."
    )
    logger.info("%s", note)
    return None, DpoResult(ran=False, note=note, metrics={"dpo_skipped": note})


def _sft_stage(
    config: TrainingConfig,
    base: str,
    train_examples: list[dict[str, Any]],
    paths: artifacts.RunPaths,
    report: ProgressCallback,
    extra_callbacks: list[Any] | None,
    *,
    dpo_follows: bool,
) -> tuple[TrainOutcome, bool]:
    """The SFT model and whether an earlier attempt had already finished it."""
    saved_stage = dpo_follows or config.num_processes > 1
    if saved_stage and stage_store.stage_facts(paths.sft_model) is not None:
        logger.info("SFT finished in an earlier attempt; going on from its saved model")
        return stage_store.load_stage(paths.sft_model, config), True
    resume_from = trainer.last_complete_checkpoint(paths.checkpoints)
    if config.num_processes > 1:
        outcome = launch.run_stage_in_processes(
            "sft",
            config,
            base,
            train_examples,
            paths.checkpoints,
            resume_from,
            paths.sft_model,
            paths.work,
            report,
        )
    else:
        outcome = trainer.train(
            config,
            base,
            train_examples,
            paths.checkpoints,
            report,
            extra_callbacks,
            resume_from=resume_from,
        )
        if saved_stage:
            stage_store.save_stage(outcome, paths.sft_model)
    if saved_stage:
        # The saved model replaces the stage's checkpoints.
        shutil.rmtree(paths.checkpoints, ignore_errors=True)
    return outcome, False


def _dpo_stage(
    config: TrainingConfig,
    train_pairs: list[dict[str, Any]],
    paths: artifacts.RunPaths,
    sft_steps: int,
    report: ProgressCallback,
    extra_callbacks: list[Any] | None,
) -> TrainOutcome:
    """DPO from the saved SFT model, its steps reported after SFT's `sft_steps`."""

    def report_after_sft(progress: Progress) -> None:
        report(
            replace(
                progress,
                step=sft_steps + progress.step,
                total_steps=sft_steps + progress.total_steps,
            )
        )

    resume_from = trainer.last_complete_checkpoint(paths.dpo_checkpoints)
    logger.info("DPO on %s preference pairs (beta %s)", len(train_pairs), config.dpo_beta)
    if config.num_processes > 1:
        return launch.run_stage_in_processes(
            "dpo",
            config,
            str(paths.sft_model),
            train_pairs,
            paths.dpo_checkpoints,
            resume_from,
            paths.dpo_model,
            paths.work,
            report_after_sft,
        )
    return dpo.train_dpo(
        config,
        str(paths.sft_model),
        train_pairs,
        paths.dpo_checkpoints,
        report_after_sft,
        extra_callbacks,
        resume_from=resume_from,
    )


@dataclass
class _Preferences:
    train: evaluation.PreferenceSummary | None
    validation: evaluation.PreferenceSummary | None


def _preferences(
    outcome: TrainOutcome,
    train_pairs: list[dict[str, Any]],
    validation_pairs: list[dict[str, Any]],
    config: TrainingConfig,
) -> _Preferences:
    def score(pairs: list[dict[str, Any]]) -> evaluation.PreferenceSummary | None:
        return evaluation.preference_scores(
            outcome.model, outcome.tokenizer, pairs, config.max_length, config.dpo_beta
        )

    return _Preferences(train=score(train_pairs), validation=score(validation_pairs))


def _dpo_result(
    config: TrainingConfig,
    train_pairs: int,
    validation_pairs: int,
    before: _Preferences,
    after: _Preferences,
) -> DpoResult:
    metrics: dict[str, Any] = {
        "dpo_train_pairs": train_pairs,
        "dpo_validation_pairs": validation_pairs,
        "dpo_beta": config.dpo_beta,
    }
    rows: list[MetricRow] = []
    for split, label, prefix in (
        ("validation", "held-out preference pairs", "preference"),
        ("train", "training preference pairs", "train_preference"),
    ):
        for moment, summary in (
            ("before", getattr(before, split)),
            ("after", getattr(after, split)),
        ):
            if summary is None:
                continue
            metrics[f"{prefix}_accuracy_{moment}_dpo"] = summary.accuracy
            metrics[f"{prefix}_reward_margin_{moment}_dpo"] = summary.mean_margin
            metrics[f"{prefix}_reward_margin_stderr_{moment}_dpo"] = summary.margin_stderr
            model = "SFT model" if moment == "before" else "after DPO"
            rows.append(MetricRow(f"{label} ({model})", "accuracy", summary.accuracy))
            rows.append(
                MetricRow(
                    f"{label} ({model})",
                    "reward margin",
                    summary.mean_margin,
                    summary.margin_stderr,
                )
            )
    note = (
        f"SFT, then DPO (beta {config.dpo_beta}) on {train_pairs} preference pairs from the "
        "volunteers' rankings, with the SFT model as the reference"
    )
    return DpoResult(ran=True, note=note, metrics=metrics, rows=rows)
