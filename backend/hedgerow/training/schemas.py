"""JSON shapes of the training API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hedgerow.inputs import Id


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release_id: Id
    # Override the settings for this run: a DPO stage after SFT, and processes (0: one
    # per GPU).
    dpo: bool | None = None
    num_processes: int | None = Field(default=None, ge=0)


class RunOut(BaseModel):
    step: int
    total_steps: int
    loss: float | None
    learning_rate: float | None
    tokens_per_second: float | None
    eta_seconds: float | None
    resumed_from_step: int | None
    attempts: int
    hardware: str | None
    started_at: datetime | None
    finished_at: datetime | None


class ModelVersionOut(BaseModel):
    id: int
    name: str
    base_model: str
    release_id: Id
    status: str
    failure_reason: str | None
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    artifact_path: str | None
    created_at: datetime
    promoted_at: datetime | None
    run: RunOut


class ModelVersionDetail(ModelVersionOut):
    reference_answers: list[dict[str, Any]]


class ModelVersionList(BaseModel):
    versions: list[ModelVersionOut]
