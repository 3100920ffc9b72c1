"""The model registry: a model version per training run, and the run's live progress."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class ModelVersionStatus(StrEnum):
    queued = "queued"
    training = "training"
    evaluating = "evaluating"
    ready = "ready"
    failed = "failed"
    serving = "serving"


class ModelVersion(Base):
    __tablename__ = "model_version"
    __table_args__ = (
        CheckConstraint(enum_check("status", tuple(ModelVersionStatus)), name="status"),
        # Promotion relies on it: at most one serving version per name, even when two
        # admins promote at the same moment.
        Index(
            "uq_model_version_serving",
            "name",
            unique=True,
            postgresql_where=text("status = 'serving'"),
        ),
        Index("ix_model_version_created_at", "created_at"),
    )

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(64))
    base_model: Mapped[str] = mapped_column(String(300))
    release_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("release.id", ondelete="RESTRICT"), index=True
    )
    # The effective training configuration (method, steps, learning rate, LoRA...).
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Filled when evaluation ends: validation loss before/after, perplexity, stderr...
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The sampled reference prompts and this version's greedy answers, for comparisons.
    reference_answers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # Set only once the artifact is complete (weights, tokenizer, card).
    artifact_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=ModelVersionStatus.queued.value)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    requested_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrainingRun(Base):
    """Progress of the run that produces a model version, written while it trains."""

    __tablename__ = "training_run"

    id: Mapped[int] = pk()
    model_version_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("model_version.id", ondelete="CASCADE"), unique=True
    )
    step: Mapped[int] = mapped_column(Integer, server_default="0")
    total_steps: Mapped[int] = mapped_column(Integer, server_default="0")
    loss: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    # [[step, loss], ...] for the loss curve.
    loss_history: Mapped[list[list[float]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    # The step a restarted run resumed from (None: it started from scratch).
    resumed_from_step: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    hardware: Mapped[str | None] = mapped_column(String(200))
    log_path: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
