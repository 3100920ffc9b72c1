"""Chats with the served model (trees of messages) and blind arena battles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class ChatRole(StrEnum):
    user = "user"
    assistant = "assistant"


class ChatMessageStatus(StrEnum):
    # An assistant message is created empty and streamed into.
    pending = "pending"
    complete = "complete"
    # The user pressed stop: the text so far is kept.
    stopped = "stopped"
    # The model server was down, slow or refused; `error` says why.
    failed = "failed"


class BattleVote(StrEnum):
    a = "a"
    b = "b"
    tie = "tie"
    both_bad = "both_bad"


class Chat(Base):
    __tablename__ = "chat"
    __table_args__ = (
        # The chat list: a user's chats, most recently used first.
        Index(
            "ix_chat_owner_recent",
            "owner_id",
            "updated_at",
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = pk()
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(String(200))
    # Hidden chats leave the list but stay reachable (and exportable).
    hidden: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The owner may keep a chat out of the released datasets.
    allow_data_use: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class ChatMessage(Base):
    __tablename__ = "chat_message"
    __table_args__ = (
        CheckConstraint(enum_check("role", tuple(ChatRole)), name="role"),
        CheckConstraint(enum_check("status", tuple(ChatMessageStatus)), name="status"),
        CheckConstraint("thumbs IN (-1, 1)", name="thumbs"),
        Index("ix_chat_message_chat_id", "chat_id", "id"),
        Index("ix_chat_message_parent_id", "parent_id"),
    )

    id: Mapped[int] = pk()
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chat.id", ondelete="CASCADE"))
    # None for the first prompt of the chat (there may be several: edited first prompts).
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("chat_message.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[str] = mapped_column(String(16), server_default=ChatMessageStatus.complete.value)
    # Assistant messages: what answered and how it was sampled.
    model_name: Mapped[str | None] = mapped_column(String(200))
    # The exact version ("hedgerow-chat@12") when the server says (system_fingerprint).
    model_version: Mapped[str | None] = mapped_column(String(200))
    sampling: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    thumbs: Mapped[int | None] = mapped_column(SmallInteger)
    report_reason: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class Battle(Base):
    """One prompt answered by two serving versions, shown blind; the vote reveals them."""

    __tablename__ = "battle"
    __table_args__ = (
        CheckConstraint(f"vote IS NULL OR {enum_check('vote', tuple(BattleVote))}", name="vote"),
        Index("ix_battle_voted", "voted_at", postgresql_where=text("vote IS NOT NULL")),
    )

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    prompt: Mapped[str] = mapped_column(Text)
    model_a: Mapped[str] = mapped_column(String(200))
    version_a: Mapped[str | None] = mapped_column(String(200))
    answer_a: Mapped[str] = mapped_column(Text, server_default="")
    model_b: Mapped[str] = mapped_column(String(200))
    version_b: Mapped[str | None] = mapped_column(String(200))
    answer_b: Mapped[str] = mapped_column(Text, server_default="")
    vote: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()
    voted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
