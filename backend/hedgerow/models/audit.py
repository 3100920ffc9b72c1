from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, pk


class AuditEvent(Base):
    """Append-only record of every moderator and admin action (a trigger refuses changes)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_target", "target_type", "target_id"),
        Index("ix_audit_event_actor_id_created_at", "actor_id", "created_at"),
        Index("ix_audit_event_action", "action"),
    )

    id: Mapped[int] = pk()
    # NULL for the system (auto-moderation, jobs).
    actor_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
