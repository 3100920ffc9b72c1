from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, pk


class Ranking(Base):
    """One ranker's order of a sibling set (the children of parent_message_id), best first."""

    __tablename__ = "ranking"

    id: Mapped[int] = pk()
    parent_message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("task.id", ondelete="SET NULL"), unique=True
    )
    ordered_message_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    not_rankable: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # grades[i] compares ordered_message_ids[i] with [i+1]: much_better, better,
    # slightly_better or about_same.
    grades: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    before_edit: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()
