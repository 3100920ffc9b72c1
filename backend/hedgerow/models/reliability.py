"""How often each reviewer agreed with the settled decisions: the evidence behind the
reliability that weighs their votes (a one-coin model, updated when a message is decided)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base


class ReviewerReliability(Base):
    __tablename__ = "reviewer_reliability"
    __table_args__ = (CheckConstraint("0 <= agreed AND agreed <= settled", name="counts"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    # Reviews of messages since decided, and how many of them voted as the decision went.
    settled: Mapped[int] = mapped_column(Integer, server_default="0")
    agreed: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
