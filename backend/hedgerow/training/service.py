"""The model registry, request side: queue a run, promote a version, roll back, and start
a run on a new nightly release by itself.

These functions take the caller's session and only flush; the caller enqueues the job
after its commit. The run itself (the job) is `training.runner`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.audit import record_audit
from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _
from hedgerow.models import (
    ModelVersion,
    ModelVersionStatus,
    Release,
    ReleaseState,
    TrainingRun,
    User,
)
from hedgerow.training import availability, queries
from hedgerow.training.trainer import TrainingConfig

logger = logging.getLogger(__name__)

TRAIN_JOB = "training.train_model_version"
ACTIVE_STATUSES = queries.ACTIVE


def utcnow() -> datetime:
    return datetime.now(UTC)


def start_run(
    db: Session,
    release_id: int,
    *,
    requested_by: User | None,
    settings: Settings | None = None,
    dpo: bool | None = None,
    num_processes: int | None = None,
) -> ModelVersion:
    """Register a model version for `release_id` that this process trains itself
    (`hedgerow train-run`); `dpo` and `num_processes` override the settings for this run."""
    release = _trainable_release(db, release_id, num_processes)
    return _register(db, release, requested_by, settings or get_settings(), dpo, num_processes)


def queue_run(
    db: Session,
    trainers: redis.Redis,
    release_id: int,
    *,
    requested_by: User | None,
    settings: Settings | None = None,
    dpo: bool | None = None,
    num_processes: int | None = None,
) -> ModelVersion:
    """Queue a model version for `release_id` for the trainers; the caller enqueues the
    job after commit. Refused, with nothing registered, while no trainer (which has the
    training libraries: it checked them when it started) is running to take it."""
    release = _trainable_release(db, release_id, num_processes)
    availability.require_trainer(trainers)
    return _register(db, release, requested_by, settings or get_settings(), dpo, num_processes)


def _trainable_release(db: Session, release_id: int, num_processes: int | None) -> Release:
    if num_processes is not None and num_processes < 0:
        raise AppError(
            "invalid_num_processes",
            _("The number of processes is 0 (one per GPU) or more."),
            422,
        )
    release = db.get(Release, release_id)
    if release is None:
        raise NotFound(_("That release does not exist."))
    if release.state != ReleaseState.published:
        raise AppError(
            "release_not_published",
            _(
                "Release %(name)s is %(state)s; only published releases can be trained on.",
                name=release.name,
                state=release.state,
            ),
            409,
        )
    return release


def _register(
    db: Session,
    release: Release,
    requested_by: User | None,
    settings: Settings,
    dpo: bool | None,
    num_processes: int | None,
) -> ModelVersion:
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
        raise NotFound(_("That model version does not exist."))
    return version


def promote(db: Session, version_id: int, *, actor: User | None) -> ModelVersion:
    """Serve `version_id` under its name; the version served before goes back to ready.
    `actor` None: the command line (`hedgerow models promote`)."""
    version = get_version(db, version_id)
    # Two admins promoting at once queue here instead of tripping the unique index.
    queries.lock_model_name(db, version.name)
    db.refresh(version)
    if version.status == ModelVersionStatus.serving:
        return version
    if version.status != ModelVersionStatus.ready:
        raise AppError(
            "version_not_ready",
            _(
                "Only a ready version can be promoted; v%(id)s is %(status)s.",
                id=version.id,
                status=version.status,
            ),
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


def roll_back(db: Session, name: str, *, actor: User | None) -> ModelVersion:
    """Serve again the version that served before the current one (`actor` None: the
    command line)."""
    queries.lock_model_name(db, name)
    current = queries.serving_version(db, name)
    if current is None:
        raise AppError("nothing_serving", _("No version of %(name)s is serving.", name=name), 409)
    earlier = queries.previously_promoted(db, name, before=current)
    if earlier is None:
        raise AppError(
            "nothing_to_roll_back",
            _(
                "v%(id)s is the first version of %(name)s to serve; there is nothing to roll "
                "back to.",
                id=current.id,
                name=name,
            ),
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


def _audit(
    db: Session,
    actor: User | None,
    action: str,
    version: ModelVersion,
    previous: ModelVersion | None,
) -> None:
    record_audit(
        db,
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type="model_version",
        target_id=version.id,
        before={"serving": previous.id if previous else None},
        after={"serving": version.id},
        # Nothing promotes on its own: an event without an actor came from the command line.
        reason="command line" if actor is None else None,
    )
    db.flush()


# --- starting runs on their own -----------------------------------------------------


def start_run_on_newest_nightly(
    maker: sessionmaker[Session], trainers: redis.Redis, settings: Settings | None = None
) -> int | None:
    """Queue a run on the newest nightly release when no version was trained on it yet,
    none is in progress, enough new trees arrived since the release the last run trained
    on, and a trainer is running; returns the new version's id."""
    settings = settings or get_settings()
    if not availability.live_trainers(trainers):
        # Looked at again at the next beat: the run starts once a trainer is there.
        logger.info("no trainer is running; a run on a new nightly release waits for one")
        return None
    with maker.begin() as db:
        queries.lock_model_name(db, settings.training_model_name)
        release = queries.newest_nightly_release(db)
        if release is None or queries.has_versions(db, release.id):
            return None
        if queries.has_active_run(db):
            return None
        trees_now = int((release.counts or {}).get("trees", 0))
        trees_before = queries.trees_in_last_trained_release(db)
        if trees_now - trees_before < settings.training_min_new_trees:
            return None
        version = _register(db, release, None, settings, None, None)
        version_id = version.id
    enqueue_training(version_id)
    return version_id
