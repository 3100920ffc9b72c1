from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class ReactionKind(StrEnum):
    thumbs_up = "thumbs_up"
    thumbs_down = "thumbs_down"
    red_flag = "red_flag"


class Reaction(Base):
    __tablename__ = "reaction"
    __table_args__ = (
        CheckConstraint(enum_check("kind", tuple(ReactionKind)), name="kind"),
        UniqueConstraint("message_id", "user_id", "kind"),
    )

    id: Mapped[int] = pk()
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("message.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()
