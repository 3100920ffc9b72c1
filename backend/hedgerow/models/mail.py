"""The mail log: every message queued for an account and what became of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class MailStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"


class MailMessage(Base):
    """One email. The bodies wait here for the ``mail.send`` job (which takes only the id)
    and are cleared once the message is sent or given up on: they may carry a sign-in
    link, which must not outlive its delivery in the database."""

    __tablename__ = "mail_message"
    __table_args__ = (CheckConstraint(enum_check("status", tuple(MailStatus)), name="status"),)

    id: Mapped[int] = pk()
    # The account's mail log on the settings page reads by user.
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    template: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=MailStatus.queued.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
