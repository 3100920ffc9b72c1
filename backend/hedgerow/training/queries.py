"""SQL of the training domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, text, update
from sqlalchemy.orm import Session

from hedgerow.models import (
    ModelVersion,
    ModelVersionStatus,
    Release,
    ReleaseKind,
    ReleaseState,
    TrainingRun,
)
from hedgerow.training.trainer import Progress

# First key of the two-key advisory locks on a version or a model name ("TRN" in ASCII).
TRAIN_LOCK_NAMESPACE = 0x54524E
ACTIVE = (
    ModelVersionStatus.queued,
    ModelVersionStatus.training,
    ModelVersionStatus.evaluating,
)


def run_of(db: Session, version_id: int) -> TrainingRun:
    return db.scalars(select(TrainingRun).where(TrainingRun.model_version_id == version_id)).one()


def serving_version(db: Session, name: str) -> ModelVersion | None:
    return db.scalars(
        select(ModelVersion).where(
            ModelVersion.name == name, ModelVersion.status == ModelVersionStatus.serving
        )
    ).one_or_none()


def previously_promoted(db: Session, name: str, *, before: ModelVersion) -> ModelVersion | None:
    """The ready version of `name` promoted most recently before `before`."""
    query = (
        select(ModelVersion)
        .where(
            ModelVersion.name == name,
            ModelVersion.status == ModelVersionStatus.ready,
            ModelVersion.promoted_at.is_not(None),
            ModelVersion.id != before.id,
        )
        .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    return db.scalars(query).one_or_none()


def recent_versions(db: Session, limit: int = 50) -> list[tuple[ModelVersion, TrainingRun]]:
    query = (
        select(ModelVersion, TrainingRun)
        .join(TrainingRun, TrainingRun.model_version_id == ModelVersion.id)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
        .limit(limit)
    )
    return [(version, run) for version, run in db.execute(query)]


def has_active_run(db: Session) -> bool:
    query = select(ModelVersion.id).where(ModelVersion.status.in_(ACTIVE)).limit(1)
    return db.scalars(query).first() is not None


def trees_in_last_trained_release(db: Session) -> int:
    """Trees in the release behind the newest version that did not fail (0 if none)."""
    query = (
        select(Release.counts)
        .join(ModelVersion, ModelVersion.release_id == Release.id)
        .where(ModelVersion.status != ModelVersionStatus.failed)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    counts = db.scalars(query).first()
    return int((counts or {}).get("trees", 0))


def published_releases(db: Session, limit: int = 50) -> list[Release]:
    query = (
        select(Release)
        .where(Release.state == ReleaseState.published)
        .order_by(Release.created_at.desc(), Release.id.desc())
        .limit(limit)
    )
    return list(db.scalars(query))


def newest_nightly_release(db: Session) -> Release | None:
    query = (
        select(Release)
        .where(Release.state == ReleaseState.published, Release.kind == ReleaseKind.nightly)
        .order_by(Release.created_at.desc(), Release.id.desc())
        .limit(1)
    )
    return db.scalars(query).first()


def has_versions(db: Session, release_id: int) -> bool:
    query = select(ModelVersion.id).where(ModelVersion.release_id == release_id).limit(1)
    return db.scalars(query).first() is not None


def versions_in_training(db: Session) -> list[int]:
    """Versions `training` or `evaluating` (by a live worker or one that died)."""
    query = select(ModelVersion.id).where(
        ModelVersion.status.in_([ModelVersionStatus.training, ModelVersionStatus.evaluating])
    )
    return list(db.scalars(query))


def record_progress(
    db: Session,
    version_id: int,
    progress: Progress,
    loss_history: list[list[float]],
    updated_at: datetime,
) -> None:
    """Update the run's progress columns without loading the row."""
    db.execute(
        update(TrainingRun)
        .where(TrainingRun.model_version_id == version_id)
        .values(
            step=progress.step,
            total_steps=progress.total_steps,
            loss=progress.loss,
            learning_rate=progress.learning_rate,
            tokens_per_second=progress.tokens_per_second,
            eta_seconds=progress.eta_seconds,
            loss_history=loss_history,
            updated_at=updated_at,
        )
    )


# --- advisory locks -------------------------------------------------------------------


def lock_model_name(db: Session, name: str) -> None:
    """Hold the name's lock until the transaction ends (promotions of one name queue)."""
    db.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:name))"),
        {"namespace": TRAIN_LOCK_NAMESPACE, "name": name},
    )


def try_lock_version(connection: Connection, version_id: int) -> bool:
    """Take the version's session-level lock if nobody holds it; kept until unlocked or
    until the connection closes (the server releases it if the process dies)."""
    taken: bool = connection.execute(
        text("SELECT pg_try_advisory_lock(:namespace, :id)"),
        {"namespace": TRAIN_LOCK_NAMESPACE, "id": version_id},
    ).scalar_one()
    return taken


def unlock_version(connection: Connection, version_id: int) -> None:
    connection.execute(
        text("SELECT pg_advisory_unlock(:namespace, :id)"),
        {"namespace": TRAIN_LOCK_NAMESPACE, "id": version_id},
    )


def version_lock_is_free(db: Session, version_id: int) -> bool:
    """Whether nobody holds the version's lock (tested by taking it for this transaction)."""
    taken: bool = db.execute(
        text("SELECT pg_try_advisory_xact_lock(:namespace, :id)"),
        {"namespace": TRAIN_LOCK_NAMESPACE, "id": version_id},
    ).scalar_one()
    return taken
