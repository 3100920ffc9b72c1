from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql,
)
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class ReportReason(StrEnum):
    spam = "spam"
    offensive = "offensive"
    hate_speech = "hate_speech"
    sexual_content = "sexual_content"
    personal_information = "personal_information"
    wrong_language = "wrong_language"
    low_quality = "low_quality"
    other = "other"


class ReportStatus(StrEnum):
    open = "open"
    dismissed = "dismissed"
    actioned = "actioned"


class Report(Base):
    __tablename__ = "report"
    __table_args__ = (
        CheckConstraint(enum_check("reason", tuple(ReportReason)), name="reason"),
        CheckConstraint(enum_check("status", tuple(ReportStatus)), name="status"),
        # One report per user per message.
        UniqueConstraint("message_id", "reporter_id"),
        Index("ix_report_open", "message_id", postgresql_where=sql("status = 'open'")),
    )

    id: Mapped[int] = pk()
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("message.id", ondelete="CASCADE")
    )
    reporter_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=ReportStatus.open.value)
    resolved_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("user.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
