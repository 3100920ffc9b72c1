"""A dataset release: one export run and, once published, its immutable directory."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class ReleaseKind(StrEnum):
    nightly = "nightly"
    manual = "manual"


class ReleaseState(StrEnum):
    running = "running"
    published = "published"
    failed = "failed"
    # Removed by retention; the row stays as a record of what was released.
    pruned = "pruned"


class Release(Base):
    __tablename__ = "release"
    __table_args__ = (
        CheckConstraint(enum_check("kind", tuple(ReleaseKind)), name="kind"),
        CheckConstraint(enum_check("state", tuple(ReleaseState)), name="state"),
        # The downloads page and retention both read published releases newest first.
        Index(
            "ix_release_published",
            "kind",
            "created_at",
            postgresql_where=text("state = 'published'"),
        ),
    )

    id: Mapped[int] = pk()
    # Also the directory name under the releases root, e.g. "2026-11-22-0300-r12".
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), server_default=ReleaseState.running.value)
    pinned: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    schema_version: Mapped[str] = mapped_column(String(16))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Filled on publish: row counts per file and the summary shown on the downloads page.
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # [{"name", "size", "sha256"}], the same list as manifest.json.
    files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Progress of a running export, for the admin page.
    messages_total: Mapped[int] = mapped_column(Integer, server_default="0")
    messages_done: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    # The Celery job that makes it (None from the command line): a job delivered again
    # after its worker died takes over this row instead of making another release.
    job_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Runs of that job that started on this row; a job that keeps killing its worker
    # stops after a few (see export.service.MAX_ATTEMPTS).
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
