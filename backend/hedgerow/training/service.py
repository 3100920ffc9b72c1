"""The model registry and the training run's lifecycle.

Request-side functions (`start_run`, `promote`, `roll_back`, listings) take the request's
session and only flush. `run_training` is a long job, not a request: it owns its
transactions, holds a per-version PostgreSQL advisory lock for its whole run (released by
the server if the process dies, so a restarted worker may take over), and registers the
artifact only once it is complete. A failure leaves a `failed` version with its reason
and no artifact; a kill leaves the version `training` with its checkpoints, and the next
attempt resumes from the last one.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.models import (
    AuditEvent,
    ModelVersion,
    ModelVersionStatus,
    Release,
    ReleaseState,
    TrainingRun,
    User,
)
from hedgerow.training import artifacts, evaluation, queries, stages
from hedgerow.training.card import CardFacts, MetricRow
from hedgerow.training.chart import DPO_POINT_MARK, stage_of
from hedgerow.training.trainer import (
    MAX_VALIDATION_EXAMPLES,
    Progress,
    ProgressCallback,
    TrainingConfig,
    TrainingFailure,
)

logger = logging.getLogger(__name__)

TRAIN_JOB = "training.train_model_version"
# First key of the two-key advisory lock a run holds on its version ("TRN" in ASCII).
TRAIN_LOCK_NAMESPACE = 0x54524E
# Progress is committed at most this often; the page polls every few seconds.
PROGRESS_EVERY_SECONDS = 2.0
# The loss curve keeps at most this many points; beyond, every other one is dropped.
LOSS_CURVE_POINTS = 400
FINISHED_STATUSES = (
    ModelVersionStatus.ready,
    ModelVersionStatus.serving,
    ModelVersionStatus.failed,
)
ACTIVE_STATUSES = (
    ModelVersionStatus.queued,
    ModelVersionStatus.training,
    ModelVersionStatus.evaluating,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- registry (request side) --------------------------------------------------------


def start_run(
    db: Session,
    release_id: int,
    *,
    requested_by: User | None,
    settings: Settings | None = None,
    dpo: bool | None = None,
    num_processes: int | None = None,
) -> ModelVersion:
    """Queue a model version for `release_id`; the caller enqueues the job after commit.
    `dpo` and `num_processes` override the settings for this run."""
    settings = settings or get_settings()
    if num_processes is not None and num_processes < 0:
        raise AppError(
            "invalid_num_processes",
            "The number of processes is 0 (one per GPU) or more.",
            422,
        )
    release = db.get(Release, release_id)
    if release is None:
        raise NotFound("release")
    if release.state != ReleaseState.published:
        raise AppError(
            "release_not_published",
            f"Release {release.name} is {release.state}; only published releases can be "
            "trained on.",
            409,
        )
    config = TrainingConfig.from_settings(settings)
    if dpo is not None:
        config.dpo = dpo
    if num_processes is not None:
        config.num_processes = num_processes
    version = ModelVersion(
        name=settings.training_model_name,
        base_model=config.base_model,
        release_id=release.id,
        config=config.as_dict(),
        status=ModelVersionStatus.queued.value,
        requested_by_id=requested_by.id if requested_by else None,
    )
    db.add(version)
    db.flush()
    db.add(TrainingRun(model_version_id=version.id))
    db.flush()
    return version


def enqueue_training(version_id: int) -> None:
    from hedgerow.worker import celery_app

    celery_app.send_task(TRAIN_JOB, args=[version_id])


def get_version(db: Session, version_id: int) -> ModelVersion:
    version = db.get(ModelVersion, version_id)
    if version is None:
        raise NotFound("model version")
    return version


def promote(db: Session, version_id: int, *, actor: User) -> ModelVersion:
    """Serve `version_id` under its name; the version served before goes back to ready."""
    version = get_version(db, version_id)
    _lock_name(db, version.name)
    db.refresh(version)
    if version.status == ModelVersionStatus.serving:
        return version
    if version.status != ModelVersionStatus.ready:
        raise AppError(
            "version_not_ready",
            f"Only a ready version can be promoted; v{version.id} is {version.status}.",
            409,
        )
    previous = queries.serving_version(db, version.name)
    if previous is not None:
        previous.status = ModelVersionStatus.ready.value
        db.flush()
    version.status = ModelVersionStatus.serving.value
    version.promoted_at = utcnow()
    db.flush()
    _audit(db, actor, "model.promote", version, previous)
    return version


def roll_back(db: Session, name: str, *, actor: User) -> ModelVersion:
    """Serve again the version that served before the current one."""
    _lock_name(db, name)
    current = queries.serving_version(db, name)
    if current is None:
        raise AppError("nothing_serving", f"No version of {name} is serving.", 409)
    earlier = queries.previously_promoted(db, name, before=current)
    if earlier is None:
        raise AppError(
            "nothing_to_roll_back",
            f"v{current.id} is the first version of {name} to serve; there is nothing "
            "to roll back to.",
            409,
        )
    current.status = ModelVersionStatus.ready.value
    db.flush()
    earlier.status = ModelVersionStatus.serving.value
    # Promoted again: a second rollback goes further back, not back and forth.
    current.promoted_at = None
    db.flush()
    _audit(db, actor, "model.rollback", earlier, current)
    return earlier


def _lock_name(db: Session, name: str) -> None:
    # Two admins promoting at once queue here instead of tripping the unique index.
    db.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:name))"),
        {"namespace": TRAIN_LOCK_NAMESPACE, "name": name},
    )


def _audit(
    db: Session, actor: User, action: str, version: ModelVersion, previous: ModelVersion | None
) -> None:
    db.add(
        AuditEvent(
            actor_id=actor.id,
            action=action,
            target_type="model_version",
            target_id=version.id,
            before={"serving": previous.id if previous else None},
            after={"serving": version.id},
        )
    )
    db.flush()


# --- running (job side) -------------------------------------------------------------


def run_training(
    maker: sessionmaker[Session],
    version_id: int,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    extra_callbacks: list[Any] | None = None,
) -> str | None:
    """Train, evaluate and register `version_id`; returns its final status, or None when
    another process is already training it."""
    settings = settings or get_settings()
    engine = maker.kw["bind"]
    with engine.connect() as lock_connection:
        taken = lock_connection.execute(
            text("SELECT pg_try_advisory_lock(:namespace, :id)"),
            {"namespace": TRAIN_LOCK_NAMESPACE, "id": version_id},
        ).scalar_one()
        lock_connection.commit()
        if not taken:
            logger.info("model version %s is being trained by another worker", version_id)
            return None
        try:
            return _run_holding_lock(maker, version_id, settings, progress, extra_callbacks)
        finally:
            lock_connection.execute(
                text("SELECT pg_advisory_unlock(:namespace, :id)"),
                {"namespace": TRAIN_LOCK_NAMESPACE, "id": version_id},
            )
            lock_connection.commit()


def _run_holding_lock(
    maker: sessionmaker[Session],
    version_id: int,
    settings: Settings,
    progress: ProgressCallback | None,
    extra_callbacks: list[Any] | None,
) -> str | None:
    from hedgerow.training import trainer

    with maker.begin() as db:
        version = db.get(ModelVersion, version_id)
        if version is None:
            logger.warning("model version %s does not exist", version_id)
            return None
        if version.status in FINISHED_STATUSES:
            # A redelivered job for a run that already ended.
            return version.status
        release = db.get_one(Release, version.release_id)
        run = queries.run_of(db, version_id)
        paths = artifacts.RunPaths.for_version(settings, version_id, version.name)
        config = TrainingConfig(**version.config).for_this_machine()
        version.config = config.as_dict()
        name, release_id = version.name, release.id
        release_name, release_state = release.name, release.state
        run.attempts += 1
        run.started_at = run.started_at or utcnow()
        run.log_path = str(paths.log)
        run.hardware = trainer.describe_hardware()
        if config.num_processes > 1:
            run.hardware = f"{config.num_processes} processes · {run.hardware}"[:200]
        history = [list(point) for point in run.loss_history]
        hardware = run.hardware
        version.status = ModelVersionStatus.training.value
    log_handler = artifacts.attach_run_log(paths.log)
    logger.info("training model version %s on release %s", version_id, release_name)
    try:
        config.check_processes()
        release_dir = settings.releases_root / release_name
        if release_state != ReleaseState.published or not release_dir.is_dir():
            raise TrainingFailure(
                f"Release {release_name} is {release_state} and its files are not available "
                f"(looked in {release_dir})."
            )
        outcome = _train_and_evaluate(
            maker,
            version_id,
            config,
            paths,
            release_dir,
            history,
            progress,
            extra_callbacks,
            settings,
        )
        facts = CardFacts(
            name=name,
            version_id=version_id,
            base_model=config.base_model,
            release_name=release_name,
            release_id=release_id,
            license_name=settings.dataset_license,
            config=config.as_dict(),
            hardware=hardware,
            duration_seconds=outcome.seconds,
            train_examples=outcome.train_examples,
            validation_examples=outcome.validation_examples,
            metrics=outcome.metric_rows,
            chat_template=None,
            num_processes=outcome.world_size,
            stages=outcome.stages_note,
            preference_tuned=outcome.preference_tuned,
        )
        artifacts.write_artifact(paths, outcome, facts, config)
        with maker.begin() as db:
            version = db.get_one(ModelVersion, version_id)
            version.status = ModelVersionStatus.ready.value
            version.metrics = outcome.metrics
            version.reference_answers = outcome.reference_answers
            version.artifact_path = str(paths.artifact)
            run = queries.run_of(db, version_id)
            run.finished_at = utcnow()
            run.eta_seconds = 0.0
            run.loss_history = history
            run.updated_at = utcnow()
        # The artifact holds the result; checkpoints were only there to resume.
        artifacts.remove_work_directory(paths)
        logger.info("model version %s is ready in %s", version_id, paths.artifact)
        return ModelVersionStatus.ready.value
    except Exception as error:
        reason = failure_reason(error, hardware)
        logger.exception("training model version %s failed: %s", version_id, reason)
        shutil.rmtree(paths.artifact, ignore_errors=True)
        artifacts.remove_work_directory(paths)
        with maker.begin() as db:
            version = db.get_one(ModelVersion, version_id)
            version.status = ModelVersionStatus.failed.value
            version.failure_reason = reason
            version.artifact_path = None
            run = queries.run_of(db, version_id)
            run.finished_at = utcnow()
            run.eta_seconds = None
            run.updated_at = utcnow()
        return ModelVersionStatus.failed.value
    finally:
        artifacts.detach_run_log(log_handler)


def failure_reason(error: BaseException, hardware: str) -> str:
    if isinstance(error, TrainingFailure):
        return str(error)
    if isinstance(error, ImportError):
        return (
            f"This worker lacks the training libraries ({error}); install them with "
            "pip install 'hedgerow[train]'."
        )
    if type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower():
        return (
            f"Out of memory on {hardware}. Lower HEDGEROW_TRAINING_BATCH_SIZE or "
            "HEDGEROW_TRAINING_MAX_LENGTH, raise HEDGEROW_TRAINING_GRADIENT_ACCUMULATION, "
            "or train with LoRA."
        )
    return f"{type(error).__name__}: {error}"[:2000]


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
    version_id: int,
    config: TrainingConfig,
    paths: artifacts.RunPaths,
    release_dir: Path,
    history: list[list[float]],
    progress: ProgressCallback | None,
    extra_callbacks: list[Any] | None,
    settings: Settings,
) -> Evaluated:
    from hedgerow.training import trainer

    conversations = trainer.load_conversations(release_dir, config.seed)
    if len(conversations.train) < config.min_conversations:
        raise TrainingFailure(
            f"The release has {len(conversations.train)} training conversations; at least "
            f"{config.min_conversations} are needed (HEDGEROW_TRAINING_MIN_CONVERSATIONS)."
        )
    train_examples = trainer.completion_examples(conversations.train)
    validation_examples = trainer.completion_examples(conversations.validation)[
        :MAX_VALIDATION_EXAMPLES
    ]
    paths.work.mkdir(parents=True, exist_ok=True)
    base = trainer.resolve_base_model(config, paths.work, trainer.all_texts(conversations))
    baseline = _baseline_loss(base, config, validation_examples, paths.baseline)
    report = _progress_writer(maker, version_id, history, progress)
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
    outcome = ran.final
    if ran.resumed_from_step is not None:
        logger.info("resumed from checkpoint at step %s", ran.resumed_from_step)
    steps = ran.sft.global_step + (ran.dpo.global_step if ran.dpo else 0)
    with maker.begin() as db:
        version = db.get_one(ModelVersion, version_id)
        version.status = ModelVersionStatus.evaluating.value
        run = queries.run_of(db, version_id)
        run.resumed_from_step = ran.resumed_from_step
        run.step = steps
        run.loss_history = history
    final = evaluation.validation_loss(
        outcome.model, outcome.tokenizer, validation_examples, config.max_length
    )
    prompts = evaluation.sample_reference_prompts(
        # The same seed for every version: versions answer the same prompts, side by side.
        settings.training_reference_sample,
        seed=config.seed,
    )
    answers = evaluation.answer_reference_prompts(
        outcome.model, outcome.tokenizer, prompts, settings.training_max_new_tokens
    )
    sft_history = [point for point in history if stage_of(point) == "sft"]
    dpo_history = [point for point in history if stage_of(point) == "dpo"]
    metrics: dict[str, Any] = {
        "train_examples": len(train_examples),
        "validation_examples": len(validation_examples),
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
    rows: list[MetricRow] = []
    if baseline is not None:
        metrics["base_validation_loss"] = baseline["mean"]
        rows.append(
            MetricRow("validation (base model)", "loss", baseline["mean"], baseline["stderr"])
        )
    if ran.sft_validation_loss is not None:
        sft_loss = ran.sft_validation_loss
        metrics["sft_validation_loss"] = sft_loss.mean
        rows.append(MetricRow("validation (SFT model)", "loss", sft_loss.mean, sft_loss.stderr))
    if final is not None:
        metrics["validation_loss"] = final.mean
        metrics["validation_loss_stderr"] = final.stderr
        metrics["validation_perplexity"] = final.perplexity
        rows.append(MetricRow("validation", "loss", final.mean, final.stderr))
        rows.append(MetricRow("validation", "perplexity", final.perplexity))
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
    return Evaluated(
        model=outcome.model,
        tokenizer=outcome.tokenizer,
        metrics=metrics,
        metric_rows=rows,
        reference_answers=answers,
        train_examples=len(train_examples),
        validation_examples=len(validation_examples),
        seconds=ran.sft.seconds + (ran.dpo.seconds if ran.dpo else 0.0),
        world_size=ran.sft.world_size,
        stages_note=ran.dpo_result.note if ran.dpo_result else "SFT",
        preference_tuned=ran.dpo is not None,
    )


def _baseline_loss(
    base: str, config: TrainingConfig, examples: list[dict[str, Any]], path: Path
) -> dict[str, float] | None:
    """The base model's validation loss, measured once per run (a resumed run keeps the
    first measurement, as its base is gone by then)."""
    from hedgerow.training import trainer

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
    import time

    last_write = [0.0]

    def report(update_: Progress) -> None:
        if update_.loss is not None:
            point = [update_.step, round(update_.loss, 5)]
            if update_.stage == "dpo":
                point.append(DPO_POINT_MARK)
            history.append(point)
            if len(history) > LOSS_CURVE_POINTS:
                del history[1::2]
        if progress is not None:
            progress(update_)
        now = time.monotonic()
        if now - last_write[0] < PROGRESS_EVERY_SECONDS and update_.step < update_.total_steps:
            return
        last_write[0] = now
        with maker.begin() as db:
            db.execute(
                update(TrainingRun)
                .where(TrainingRun.model_version_id == version_id)
                .values(
                    step=update_.step,
                    total_steps=update_.total_steps,
                    loss=update_.loss,
                    learning_rate=update_.learning_rate,
                    tokens_per_second=update_.tokens_per_second,
                    eta_seconds=update_.eta_seconds,
                    loss_history=list(history),
                    updated_at=utcnow(),
                )
            )

    return report


# --- starting runs on their own -----------------------------------------------------


def interrupted_versions(maker: sessionmaker[Session]) -> list[int]:
    """Versions left `training`/`evaluating` by a worker that died: nobody holds their
    lock. Queued ones are still in the broker and need nothing."""
    with maker.begin() as db:
        candidates = list(
            db.scalars(
                select(ModelVersion.id).where(
                    ModelVersion.status.in_(
                        [ModelVersionStatus.training, ModelVersionStatus.evaluating]
                    )
                )
            )
        )
        free = []
        for version_id in candidates:
            taken = db.execute(
                text("SELECT pg_try_advisory_xact_lock(:namespace, :id)"),
                {"namespace": TRAIN_LOCK_NAMESPACE, "id": version_id},
            ).scalar_one()
            if taken:
                free.append(version_id)
    return free


def start_run_on_newest_nightly(
    maker: sessionmaker[Session], settings: Settings | None = None
) -> int | None:
    """Queue a run on the newest nightly release when no version was trained on it yet,
    none is in progress, and enough new trees arrived since the release the last run
    trained on; returns the new version's id."""
    settings = settings or get_settings()
    with maker.begin() as db:
        _lock_name(db, settings.training_model_name)
        release = queries.newest_nightly_release(db)
        if release is None or queries.has_versions(db, release.id):
            return None
        if queries.has_active_run(db):
            return None
        trees_now = int((release.counts or {}).get("trees", 0))
        trees_before = queries.trees_in_last_trained_release(db)
        if trees_now - trees_before < settings.training_min_new_trees:
            return None
        version = start_run(db, release.id, requested_by=None, settings=settings)
        version_id = version.id
    enqueue_training(version_id)
    return version_id
