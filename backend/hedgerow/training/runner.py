"""The training run: the job that trains, evaluates and registers one model version.

`run_training` is a long job, not a request: it owns its transactions, holds a
per-version PostgreSQL advisory lock for its whole run (released by the server if the
process dies, so a restarted worker may take over), and registers the artifact only once
it is complete. A failure leaves a `failed` version with its reason and no artifact; a
kill leaves the version `training` with its checkpoints, and the next attempt resumes
from the last one.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hedgerow.config import Settings, get_settings
from hedgerow.models import ModelVersion, ModelVersionStatus, Release, ReleaseState
from hedgerow.training import artifacts, availability, evaluation, queries, stages, trainer
from hedgerow.training.card import CardFacts, MetricRow
from hedgerow.training.chart import DPO_POINT_MARK, stage_of
from hedgerow.training.service import utcnow
from hedgerow.training.trainer import (
    MAX_VALIDATION_EXAMPLES,
    Conversations,
    Progress,
    ProgressCallback,
    TrainingConfig,
    TrainingFailure,
)

logger = logging.getLogger(__name__)

# Progress is committed at most this often; the page polls every few seconds.
PROGRESS_EVERY_SECONDS = 2.0
# The loss curve keeps at most this many points; beyond, every other one is dropped.
LOSS_CURVE_POINTS = 400
FINISHED_STATUSES = (
    ModelVersionStatus.ready,
    ModelVersionStatus.serving,
    ModelVersionStatus.failed,
)
# Attempts a run gets: a killed run is delivered again (and resumed), but one that kills
# its worker every time (out of memory, say) would loop forever. Generous, as restarts
# of the trainer for a deployment count too.
MAX_ATTEMPTS = 5


def run_training(
    maker: sessionmaker[Session],
    version_id: int,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    extra_callbacks: list[Any] | None = None,
) -> str | None:
    """Train, evaluate and register `version_id`; returns its final status, or None when
    another process is already training it or this one lacks the training libraries."""
    settings = settings or get_settings()
    engine = maker.kw["bind"]
    with engine.connect() as lock_connection:
        taken = queries.try_lock_version(lock_connection, version_id)
        lock_connection.commit()
        if not taken:
            logger.info("model version %s is being trained by another worker", version_id)
            return None
        try:
            return _run_holding_lock(maker, version_id, settings, progress, extra_callbacks)
        finally:
            queries.unlock_version(lock_connection, version_id)
            lock_connection.commit()


def interrupted_versions(maker: sessionmaker[Session]) -> list[int]:
    """Versions left `training`/`evaluating` by a worker that died: nobody holds their
    lock. Queued ones are still in the broker and need nothing."""
    with maker.begin() as db:
        return [
            version_id
            for version_id in queries.versions_in_training(db)
            if queries.version_lock_is_free(db, version_id)
        ]


@dataclass
class Attempt:
    """One attempt at a run, as read when it starts (a killed run is attempted again)."""

    version_id: int
    name: str
    release_id: int
    release_name: str
    release_state: str
    paths: artifacts.RunPaths
    config: TrainingConfig
    # The loss curve, kept across attempts; the progress writer appends to it.
    history: list[list[float]]
    hardware: str


def _run_holding_lock(
    maker: sessionmaker[Session],
    version_id: int,
    settings: Settings,
    progress: ProgressCallback | None,
    extra_callbacks: list[Any] | None,
) -> str | None:
    # Before the transaction: the first look imports torch and friends (seconds).
    missing = availability.missing_training_libraries()
    with maker.begin() as db:
        version = db.get(ModelVersion, version_id)
        if version is None:
            logger.warning("model version %s does not exist", version_id)
            return None
        if version.status in FINISHED_STATUSES:
            # A redelivered job for a run that already ended.
            return version.status
        if missing:
            _withdraw_unstartable(db, version, missing)
            return None
        attempts = queries.run_of(db, version_id).attempts
        name = version.name
    if attempts >= MAX_ATTEMPTS:
        reason = (
            f"The run was interrupted {attempts} times (its worker died each time, for "
            "example out of memory); it is not attempted again."
        )
        logger.error("model version %s: %s", version_id, reason)
        # Its checkpoints were kept only to resume.
        artifacts.remove_work_directory(artifacts.RunPaths.for_version(settings, version_id, name))
        _register_failure(maker, version_id, reason)
        return ModelVersionStatus.failed.value
    with maker.begin() as db:
        version = db.get_one(ModelVersion, version_id)
        attempt = _begin_attempt(db, version, settings)
    paths = attempt.paths
    log_handler = artifacts.attach_run_log(paths.log)
    logger.info("training model version %s on release %s", version_id, attempt.release_name)
    try:
        attempt.config.check_processes()
        release_dir = _release_files(attempt, settings)
        outcome = _train_and_evaluate(
            maker, attempt, release_dir, progress, extra_callbacks, settings
        )
        facts = _card_facts(attempt, outcome, settings)
        artifacts.write_artifact(paths, outcome, facts, attempt.config)
        _register_ready(maker, attempt, outcome)
        # The artifact holds the result; checkpoints were only there to resume.
        artifacts.remove_work_directory(paths)
        logger.info("model version %s is ready in %s", version_id, paths.artifact)
        return ModelVersionStatus.ready.value
    except Exception as error:
        reason = failure_reason(error, attempt.hardware)
        logger.exception("training model version %s failed: %s", version_id, reason)
        shutil.rmtree(paths.artifact, ignore_errors=True)
        artifacts.remove_work_directory(paths)
        _register_failure(maker, version_id, reason)
        return ModelVersionStatus.failed.value
    finally:
        artifacts.detach_run_log(log_handler)


def _withdraw_unstartable(db: Session, version: ModelVersion, missing: list[str]) -> None:
    """A run this worker cannot start for want of the training libraries registers
    nothing: a version that never started is removed (a failed version would claim a
    run that never was). One that trained elsewhere before keeps its checkpoints and
    waits for a worker that has them (`hedgerow train` requeues it on start)."""
    reason = availability.libraries_missing_error(missing).message
    if version.status == ModelVersionStatus.queued and queries.run_of(db, version.id).attempts == 0:
        db.delete(version)
        db.flush()
        logger.error("model version %s was withdrawn, nothing registered: %s", version.id, reason)
    else:
        logger.error("model version %s left for another worker: %s", version.id, reason)


def _begin_attempt(db: Session, version: ModelVersion, settings: Settings) -> Attempt:
    """Mark the version `training`, count the attempt and fix its config for this machine."""
    release = db.get_one(Release, version.release_id)
    run = queries.run_of(db, version.id)
    paths = artifacts.RunPaths.for_version(settings, version.id, version.name)
    config = TrainingConfig(**version.config).for_this_machine()
    version.config = config.as_dict()
    run.attempts += 1
    run.started_at = run.started_at or utcnow()
    run.log_path = str(paths.log)
    run.hardware = trainer.describe_hardware()
    if config.num_processes > 1:
        run.hardware = f"{config.num_processes} processes · {run.hardware}"[:200]
    version.status = ModelVersionStatus.training.value
    return Attempt(
        version_id=version.id,
        name=version.name,
        release_id=release.id,
        release_name=release.name,
        release_state=release.state,
        paths=paths,
        config=config,
        history=[list(point) for point in run.loss_history],
        hardware=run.hardware,
    )


def _release_files(attempt: Attempt, settings: Settings) -> Path:
    release_dir = settings.releases_root / attempt.release_name
    if attempt.release_state != ReleaseState.published or not release_dir.is_dir():
        raise TrainingFailure(
            f"Release {attempt.release_name} is {attempt.release_state} and its files are "
            f"not available (looked in {release_dir})."
        )
    return release_dir


def _register_ready(maker: sessionmaker[Session], attempt: Attempt, outcome: Evaluated) -> None:
    with maker.begin() as db:
        version = db.get_one(ModelVersion, attempt.version_id)
        version.status = ModelVersionStatus.ready.value
        version.metrics = outcome.metrics
        version.reference_answers = outcome.reference_answers
        version.artifact_path = str(attempt.paths.artifact)
        run = queries.run_of(db, attempt.version_id)
        run.finished_at = utcnow()
        run.eta_seconds = 0.0
        run.loss_history = attempt.history
        run.updated_at = utcnow()


def _register_failure(maker: sessionmaker[Session], version_id: int, reason: str) -> None:
    with maker.begin() as db:
        version = db.get_one(ModelVersion, version_id)
        version.status = ModelVersionStatus.failed.value
        version.failure_reason = reason
        version.artifact_path = None
        run = queries.run_of(db, version_id)
        run.finished_at = utcnow()
        run.eta_seconds = None
        run.updated_at = utcnow()


def failure_reason(error: BaseException, hardware: str) -> str:
    if isinstance(error, TrainingFailure):
        return str(error)
    if isinstance(error, ImportError):
        return (
            f"This worker lacks a library the run needs ({error}); install the training "
            f"libraries with `{availability.INSTALL_TRAIN}` (or "
            f"`{availability.PIP_INSTALL_TRAIN}`)."
        )
    if type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower():
        return (
            f"Out of memory on {hardware}. Lower HEDGEROW_TRAINING_BATCH_SIZE or "
            "HEDGEROW_TRAINING_MAX_LENGTH, raise HEDGEROW_TRAINING_GRADIENT_ACCUMULATION, "
            "or train with LoRA."
        )
    return f"{type(error).__name__}: {error}"[:2000]


def _card_facts(attempt: Attempt, outcome: Evaluated, settings: Settings) -> CardFacts:
    return CardFacts(
        name=attempt.name,
        version_id=attempt.version_id,
        base_model=attempt.config.base_model,
        release_name=attempt.release_name,
        release_id=attempt.release_id,
        license_name=settings.dataset_license,
        config=attempt.config.as_dict(),
        hardware=attempt.hardware,
        duration_seconds=outcome.seconds,
        train_examples=outcome.train_examples,
        validation_examples=outcome.validation_examples,
        metrics=outcome.metric_rows,
        chat_template=None,
        num_processes=outcome.world_size,
        stages=outcome.stages_note,
        preference_tuned=outcome.preference_tuned,
    )


# --- training and evaluating ----------------------------------------------------------


@dataclass
class Evaluated:
    model: Any
    tokenizer: Any
    metrics: dict[str, Any]
    metric_rows: list[MetricRow]
    reference_answers: list[dict[str, Any]]
    train_examples: int
    validation_examples: int
    seconds: float
    world_size: int
    stages_note: str
    preference_tuned: bool


def _train_and_evaluate(
    maker: sessionmaker[Session],
    attempt: Attempt,
    release_dir: Path,
    progress: ProgressCallback | None,
    extra_callbacks: list[Any] | None,
    settings: Settings,
) -> Evaluated:
    config, paths = attempt.config, attempt.paths
    conversations = trainer.load_conversations(release_dir, config.seed)
    train_examples, validation_examples = _completion_examples(conversations, config)
    paths.work.mkdir(parents=True, exist_ok=True)
    base = trainer.resolve_base_model(config, paths.work, trainer.all_texts(conversations))
    baseline = _baseline_loss(base, config, validation_examples, paths.baseline)
    report = _progress_writer(maker, attempt.version_id, attempt.history, progress)
    # The baseline model is gone: ranks launched next get its GPU memory back.
    trainer.release_memory()
    ran = stages.run_stages(
        config,
        base,
        train_examples,
        validation_examples,
        release_dir,
        paths,
        report,
        extra_callbacks,
    )
    if ran.resumed_from_step is not None:
        logger.info("resumed from checkpoint at step %s", ran.resumed_from_step)
    _mark_evaluating(maker, attempt, ran)
    model, tokenizer = ran.final.model, ran.final.tokenizer
    final = evaluation.validation_loss(model, tokenizer, validation_examples, config.max_length)
    prompts = evaluation.sample_reference_prompts(
        # The same seed for every version: versions answer the same prompts, side by side.
        settings.training_reference_sample,
        seed=config.seed,
    )
    answers = evaluation.answer_reference_prompts(
        model, tokenizer, prompts, settings.training_max_new_tokens
    )
    examples = {
        "train_examples": len(train_examples),
        "validation_examples": len(validation_examples),
    }
    return Evaluated(
        model=model,
        tokenizer=tokenizer,
        metrics=_metrics(examples, ran, attempt.history, baseline, final),
        metric_rows=_metric_rows(ran, attempt.history, baseline, final, answers),
        reference_answers=answers,
        train_examples=len(train_examples),
        validation_examples=len(validation_examples),
        seconds=ran.sft.seconds + (ran.dpo.seconds if ran.dpo else 0.0),
        world_size=ran.sft.world_size,
        stages_note=ran.dpo_result.note if ran.dpo_result else "SFT",
        preference_tuned=ran.dpo is not None,
    )


def _completion_examples(
    conversations: Conversations, config: TrainingConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The training and (capped) validation examples, or a failure when too few."""
    if len(conversations.train) < config.min_conversations:
        raise TrainingFailure(
            f"The release has {len(conversations.train)} training conversations; at least "
            f"{config.min_conversations} are needed (HEDGEROW_TRAINING_MIN_CONVERSATIONS)."
        )
    train_examples = trainer.completion_examples(conversations.train)
    validation_examples = trainer.completion_examples(conversations.validation)[
        :MAX_VALIDATION_EXAMPLES
    ]
    return train_examples, validation_examples


def _mark_evaluating(
    maker: sessionmaker[Session], attempt: Attempt, ran: stages.StagesOutcome
) -> None:
    with maker.begin() as db:
        version = db.get_one(ModelVersion, attempt.version_id)
        version.status = ModelVersionStatus.evaluating.value
        run = queries.run_of(db, attempt.version_id)
        run.resumed_from_step = ran.resumed_from_step
        run.step = ran.sft.global_step + (ran.dpo.global_step if ran.dpo else 0)
        run.loss_history = attempt.history


def _stage_history(history: list[list[float]], stage: str) -> list[list[float]]:
    return [point for point in history if stage_of(point) == stage]


def _metrics(
    examples: dict[str, int],
    ran: stages.StagesOutcome,
    history: list[list[float]],
    baseline: dict[str, float] | None,
    final: evaluation.LossSummary | None,
) -> dict[str, Any]:
    """The version's metrics (stored with it, shown on its page), after `examples`, the
    counts of training and validation examples."""
    sft_history = _stage_history(history, "sft")
    dpo_history = _stage_history(history, "dpo")
    metrics: dict[str, Any] = {
        **examples,
        "steps": ran.sft.global_step,
        "train_tokens": ran.sft.train_tokens,
        "train_seconds": round(ran.sft.seconds, 3),
        "first_train_loss": sft_history[0][1] if sft_history else None,
        "last_train_loss": sft_history[-1][1] if sft_history else None,
        "world_size": ran.sft.world_size,
    }
    if ran.dpo is not None:
        metrics["dpo_steps"] = ran.dpo.global_step
        metrics["dpo_train_seconds"] = round(ran.dpo.seconds, 3)
        metrics["dpo_first_loss"] = dpo_history[0][1] if dpo_history else None
        metrics["dpo_last_loss"] = dpo_history[-1][1] if dpo_history else None
    if ran.dpo_result is not None:
        metrics.update(ran.dpo_result.metrics)
    if baseline is not None:
        metrics["base_validation_loss"] = baseline["mean"]
    if ran.sft_validation_loss is not None:
        metrics["sft_validation_loss"] = ran.sft_validation_loss.mean
    if final is not None:
        metrics["validation_loss"] = final.mean
        metrics["validation_loss_stderr"] = final.stderr
        metrics["validation_perplexity"] = final.perplexity
    return metrics


def _metric_rows(
    ran: stages.StagesOutcome,
    history: list[list[float]],
    baseline: dict[str, float] | None,
    final: evaluation.LossSummary | None,
    answers: list[dict[str, Any]],
) -> list[MetricRow]:
    """The model card's evaluation table."""
    rows: list[MetricRow] = []
    if baseline is not None:
        rows.append(
            MetricRow("validation (base model)", "loss", baseline["mean"], baseline["stderr"])
        )
    if ran.sft_validation_loss is not None:
        sft_loss = ran.sft_validation_loss
        rows.append(MetricRow("validation (SFT model)", "loss", sft_loss.mean, sft_loss.stderr))
    if final is not None:
        rows.append(MetricRow("validation", "loss", final.mean, final.stderr))
        rows.append(MetricRow("validation", "perplexity", final.perplexity))
    sft_history = _stage_history(history, "sft")
    dpo_history = _stage_history(history, "dpo")
    if sft_history:
        rows.append(MetricRow("train", "loss (last logged step)", sft_history[-1][1]))
    if dpo_history:
        rows.append(MetricRow("DPO train", "loss (last logged step)", dpo_history[-1][1]))
    if ran.dpo_result is not None:
        rows.extend(ran.dpo_result.rows)
    answered = [item for item in answers if item["answer"]]
    rows.append(
        MetricRow("reference prompts", "share answered", len(answered) / max(len(answers), 1))
    )
    return rows


def _baseline_loss(
    base: str, config: TrainingConfig, examples: list[dict[str, Any]], path: Path
) -> dict[str, float] | None:
    """The base model's validation loss, measured once per run (a resumed run keeps the
    first measurement, as its base is gone by then)."""
    if path.is_file():
        stored: dict[str, float] | None = json.loads(path.read_text(encoding="utf-8"))
        return stored
    model = trainer.load_model(base, config, for_evaluation=True)
    tokenizer = trainer.load_tokenizer(base)
    summary = evaluation.validation_loss(model, tokenizer, examples, config.max_length)
    result = None if summary is None else {"mean": summary.mean, "stderr": summary.stderr}
    path.write_text(json.dumps(result), encoding="utf-8")
    return result


def _progress_writer(
    maker: sessionmaker[Session],
    version_id: int,
    history: list[list[float]],
    progress: ProgressCallback | None,
) -> ProgressCallback:
    """A progress callback that extends the loss curve, passes each update on to
    `progress` and commits the run's progress at most every PROGRESS_EVERY_SECONDS."""
    last_write = [0.0]

    def report(update: Progress) -> None:
        if update.loss is not None:
            point = [update.step, round(update.loss, 5)]
            if update.stage == "dpo":
                point.append(DPO_POINT_MARK)
            history.append(point)
            if len(history) > LOSS_CURVE_POINTS:
                del history[1::2]
        if progress is not None:
            progress(update)
        now = time.monotonic()
        if now - last_write[0] < PROGRESS_EVERY_SECONDS and update.step < update.total_steps:
            return
        last_write[0] = now
        with maker.begin() as db:
            queries.record_progress(db, version_id, update, list(history), utcnow())

    return report
