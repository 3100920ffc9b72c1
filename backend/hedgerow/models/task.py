from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class TaskKind(StrEnum):
    """What a volunteer is asked to do. "Task" always means a volunteer task."""

    write_prompt = "write_prompt"
    reply_assistant = "reply_assistant"
    reply_prompter = "reply_prompter"
    review_prompt = "review_prompt"
    review_prompter_reply = "review_prompter_reply"
    review_assistant_reply = "review_assistant_reply"
    rank_assistant_replies = "rank_assistant_replies"
    rank_prompter_replies = "rank_prompter_replies"


class TaskState(StrEnum):
    leased = "leased"
    done = "done"
    skipped = "skipped"
    expired = "expired"


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint(enum_check("kind", tuple(TaskKind)), name="kind"),
        CheckConstraint(enum_check("state", tuple(TaskState)), name="state"),
        CheckConstraint(
            "(kind = 'write_prompt') = (target_message_id IS NULL)", name="target_matches_kind"
        ),
        # One task per user, kind and item: never the same item twice, one reply per parent.
        # It is also the index behind the hand-out's "not already done or skipped" anti-join.
        UniqueConstraint("user_id", "target_message_id", "kind"),
        # The one task a volunteer holds at a time.
        Index("ix_task_user_id_leased", "user_id", postgresql_where=text("state = 'leased'")),
        # The lease-expiry job walks only live leases.
        Index(
            "ix_task_lease_expires_at",
            "lease_expires_at",
            postgresql_where=text("state = 'leased'"),
        ),
        Index("ix_task_target_message_id", "target_message_id"),
    )

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16))
    target_message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("message.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(16), server_default=TaskState.leased.value)
    # Whether this task holds a slot (child, review or ranking) on its target right now.
    holds_slot: Mapped[bool] = mapped_column(server_default=text("false"))
    lease_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # What the submission produced: a message, label or ranking id, kept for idempotency.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    skip_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
