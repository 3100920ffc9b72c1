from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class TreeState(StrEnum):
    prompt_review = "prompt_review"
    lottery_waiting = "lottery_waiting"
    growing = "growing"
    ranking = "ranking"
    ready_for_export = "ready_for_export"
    aborted_low_grade = "aborted_low_grade"
    halted = "halted"


class Tree(Base):
    __tablename__ = "tree"
    __table_args__ = (
        CheckConstraint(enum_check("state", tuple(TreeState)), name="state"),
        CheckConstraint(
            "halted_from_state IS NULL OR " + enum_check("halted_from_state", tuple(TreeState)),
            name="halted_from_state",
        ),
        CheckConstraint("goal_size > 0 AND max_depth > 0 AND max_children > 0", name="shape"),
        CheckConstraint(
            "accepted_count >= 0 AND pending_count >= 0 AND reply_lease_count >= 0",
            name="counters_non_negative",
        ),
        # The root message is created in the same transaction as the tree; the FK is added
        # after both tables exist.
        ForeignKeyConstraint(
            ["root_message_id"], ["message.id"], use_alter=True, ondelete="SET NULL"
        ),
        # The prompt lottery: waiting prompts per language and author, oldest first.
        Index(
            "ix_tree_lottery",
            "language",
            "author_id",
            "entered_lottery_at",
            postgresql_where=text("state = 'lottery_waiting'"),
        ),
        Index("ix_tree_state_language", "state", "language"),
    )

    id: Mapped[int] = pk()
    root_message_id: Mapped[int | None] = mapped_column(BigInteger)
    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"), index=True)
    state: Mapped[str] = mapped_column(String(24))
    halted_from_state: Mapped[str | None] = mapped_column(String(24))
    language: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))

    # Parameters, copied from settings when the tree is created.
    goal_size: Mapped[int] = mapped_column(SmallInteger)
    max_depth: Mapped[int] = mapped_column(SmallInteger)
    max_children: Mapped[int] = mapped_column(SmallInteger)
    reviews_per_message: Mapped[int] = mapped_column(SmallInteger)
    acceptance_threshold: Mapped[float] = mapped_column(Float)
    rankings_per_sibling_set: Mapped[int] = mapped_column(SmallInteger)

    # Counters, kept in the transaction that changes what they count.
    accepted_count: Mapped[int] = mapped_column(Integer, server_default="0")
    pending_count: Mapped[int] = mapped_column(Integer, server_default="0")
    reply_lease_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Sibling sets that still need rankings while the tree is in `ranking`.
    open_ranking_sets: Mapped[int] = mapped_column(Integer, server_default="0")

    created_at: Mapped[datetime] = created_at_column()
    entered_lottery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    drawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
