"""Each volunteer's track record, the evidence behind the reliability estimates that the
adaptive review rule uses: how often their reviews voted as the decision went (a one-coin
model of the reviewer), and how often the messages they wrote were accepted (the prior
that a new message of theirs is good). Updated in the transaction that decides a message."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base


class VolunteerReliability(Base):
    __tablename__ = "volunteer_reliability"
    __table_args__ = (
        CheckConstraint(
            "0 <= reviews_agreed AND reviews_agreed <= reviews_settled "
            "AND 0 <= messages_accepted AND messages_accepted <= messages_decided",
            name="counts",
        ),
    )

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    # Their reviews of messages since decided, and how many voted as the decision went.
    reviews_settled: Mapped[int] = mapped_column(Integer, server_default="0")
    reviews_agreed: Mapped[int] = mapped_column(Integer, server_default="0")
    # Their messages since decided, and how many were accepted.
    messages_decided: Mapped[int] = mapped_column(Integer, server_default="0")
    messages_accepted: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
