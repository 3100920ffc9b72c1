from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, pk


class Label(Base):
    """One reviewer's labels on one message; values are 0..1 keyed by label name."""

    __tablename__ = "label"

    id: Mapped[int] = pk()
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("task.id", ondelete="SET NULL"), unique=True
    )
    values: Mapped[dict[str, float]] = mapped_column(JSONB)
    mode: Mapped[str] = mapped_column(String(8), server_default="full")
    guideline_version: Mapped[str] = mapped_column(String(32))
    # True for labels given before a moderator edited the message's text.
    before_edit: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()
