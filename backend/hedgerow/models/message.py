from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy import (
    text as sql,
)
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class MessageRole(StrEnum):
    prompter = "prompter"
    assistant = "assistant"


class ReviewState(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        CheckConstraint(enum_check("role", tuple(MessageRole)), name="role"),
        CheckConstraint(enum_check("review_state", tuple(ReviewState)), name="review_state"),
        CheckConstraint("char_length(text) > 0", name="text_not_empty"),
        CheckConstraint(
            "(parent_id IS NULL AND depth = 0 AND role = 'prompter') "
            "OR (parent_id IS NOT NULL AND depth > 0)",
            name="root_shape",
        ),
        CheckConstraint(
            "review_count >= 0 AND review_lease_count >= 0 AND child_count >= 0 "
            "AND reply_lease_count >= 0 AND ranking_count >= 0 AND ranking_lease_count >= 0",
            name="counters_non_negative",
        ),
        # Open work is found through small partial indexes that hold only the open items,
        # so handing out a task costs the same at 10 thousand or 10 million messages.
        Index(
            "ix_message_open_for_review",
            "language",
            "tree_id",
            postgresql_where=sql("open_for_review"),
        ),
        Index(
            "ix_message_open_for_reply",
            "language",
            "role",
            "tree_id",
            postgresql_where=sql("open_for_reply"),
        ),
        Index(
            "ix_message_open_for_ranking",
            "language",
            "tree_id",
            postgresql_where=sql("open_for_ranking"),
        ),
        Index("ix_message_tree_id_depth", "tree_id", "depth"),
        Index("ix_message_parent_id", "parent_id"),
        Index("ix_message_author_id_created_at", "author_id", "created_at"),
        # Duplicate detection: the same text submitted again is refused.
        Index("ix_message_text_sha256", "text_sha256"),
    )

    id: Mapped[int] = pk()
    tree_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tree.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("message.id", ondelete="CASCADE")
    )
    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    depth: Mapped[int] = mapped_column(SmallInteger)
    # Prompts only: the category and an optional context passage.
    category: Mapped[str | None] = mapped_column(String(32))
    context: Mapped[str | None] = mapped_column(Text)

    review_state: Mapped[str] = mapped_column(String(16), server_default=ReviewState.pending.value)
    review_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    review_lease_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    review_score: Mapped[float | None] = mapped_column(Float)
    # The posterior probability of the review decision, from the reviewers' votes weighted
    # by their estimated reliability (set when the message is decided).
    review_confidence: Mapped[float | None] = mapped_column(Float)
    # Children that are submitted and not rejected or deleted; they hold a child slot.
    child_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    accepted_child_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    reply_lease_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    # Rankings of this message's children (the sibling set).
    ranking_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    ranking_lease_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    consensus_rank: Mapped[int | None] = mapped_column(SmallInteger)
    # The sibling set's rankings are all in: its consensus is stored and it takes no more.
    ranking_settled: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    # How sure the consensus order is: the lowest posterior probability, over neighbouring
    # replies in it, that the rankers prefer the higher one (None before any ranking).
    ranking_confidence: Mapped[float | None] = mapped_column(Float)

    open_for_review: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    open_for_reply: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    open_for_ranking: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))

    red_flag_count: Mapped[int] = mapped_column(Integer, server_default="0")
    skip_count: Mapped[int] = mapped_column(Integer, server_default="0")
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    model_name: Mapped[str | None] = mapped_column(String(128))
    deleted: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    # Set on a subtree deleted together, so undelete restores exactly that subtree.
    deletion_id: Mapped[int | None] = mapped_column(BigInteger)
    edited: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    created_at: Mapped[datetime] = created_at_column()
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageRevision(Base):
    __tablename__ = "message_revision"

    id: Mapped[int] = pk()
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    editor_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"))
    old_text: Mapped[str] = mapped_column(Text)
    new_text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
