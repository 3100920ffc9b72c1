from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class ReactionKind(StrEnum):
    """What one person said about a message, Open-Assistant's emojis. The export names
    them as Open-Assistant did (export/shapes.py EMOJI_NAMES: thumbs_up is "+1")."""

    thumbs_up = "thumbs_up"
    thumbs_down = "thumbs_down"
    # Given by reporting or flagging (growth's record_red_flag, which keeps
    # message.red_flag_count and may delete), never by the reaction bar.
    red_flag = "red_flag"
    heart = "heart"
    laugh = "laugh"
    confused = "confused"


class Reaction(Base):
    """One row per person, message and kind: the reaction bar toggles a row, and the
    export counts them per message in SQL. The unique index (message_id first) serves both
    a message's counts and a person's own reactions on a page of messages."""

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
