"""Admin JSON API for the model registry (mounted at /api/v1)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from hedgerow.accounts.security import AdminUser
from hedgerow.db import SessionDep
from hedgerow.inputs import Id
from hedgerow.models import ModelVersion, TrainingRun
from hedgerow.openapi import error_responses
from hedgerow.redis_client import get_redis
from hedgerow.training import queries, service
from hedgerow.training.schemas import (
    ModelVersionDetail,
    ModelVersionList,
    ModelVersionOut,
    RunOut,
    StartRun,
)

router = APIRouter(prefix="/models", tags=["models"])


def _run_out(run: TrainingRun) -> RunOut:
    return RunOut(
        step=run.step,
        total_steps=run.total_steps,
        loss=run.loss,
        learning_rate=run.learning_rate,
        tokens_per_second=run.tokens_per_second,
        eta_seconds=run.eta_seconds,
        resumed_from_step=run.resumed_from_step,
        attempts=run.attempts,
        hardware=run.hardware,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def _version_out(version: ModelVersion, run: TrainingRun) -> ModelVersionOut:
    return ModelVersionOut(
        id=version.id,
        name=version.name,
        base_model=version.base_model,
        release_id=version.release_id,
        status=version.status,
        failure_reason=version.failure_reason,
        config=version.config,
        metrics=version.metrics,
        artifact_path=version.artifact_path,
        created_at=version.created_at,
        promoted_at=version.promoted_at,
        run=_run_out(run),
    )


def _detail(db: SessionDep, version: ModelVersion) -> ModelVersionDetail:
    out = _version_out(version, queries.run_of(db, version.id))
    return ModelVersionDetail(**out.model_dump(), reference_answers=version.reference_answers or [])


@router.get("")
def list_versions(admin: AdminUser, db: SessionDep) -> ModelVersionList:
    return ModelVersionList(
        versions=[_version_out(version, run) for version, run in queries.recent_versions(db)]
    )


@router.post("", status_code=202, responses=error_responses(404, 409))
def start_run(
    body: StartRun, admin: AdminUser, db: SessionDep, background: BackgroundTasks
) -> ModelVersionDetail:
    version = service.queue_run(
        db,
        get_redis(),
        body.release_id,
        requested_by=admin,
        dpo=body.dpo,
        num_processes=body.num_processes,
    )
    # Runs after the response, so after the commit.
    background.add_task(service.enqueue_training, version.id)
    db.refresh(version)
    return _detail(db, version)


@router.get("/{version_id}")
def get_version(version_id: Id, admin: AdminUser, db: SessionDep) -> ModelVersionDetail:
    return _detail(db, service.get_version(db, version_id))


@router.post("/{version_id}/promote", responses=error_responses(409))
def promote(version_id: Id, admin: AdminUser, db: SessionDep) -> ModelVersionDetail:
    return _detail(db, service.promote(db, version_id, actor=admin))


@router.post("/serving/{name}/rollback", responses=error_responses(409))
def roll_back(name: str, admin: AdminUser, db: SessionDep) -> ModelVersionDetail:
    return _detail(db, service.roll_back(db, name, actor=admin))
