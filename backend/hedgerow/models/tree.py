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


class GrowthPolicy(StrEnum):
    fixed = "fixed"
    adaptive = "adaptive"


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
        CheckConstraint(enum_check("growth_policy", tuple(GrowthPolicy)), name="growth_policy"),
        CheckConstraint(
            "0 < min_reviews_per_message AND min_reviews_per_message <= reviews_per_message "
            "AND 0 < min_rankings_per_sibling_set "
            "AND min_rankings_per_sibling_set <= rankings_per_sibling_set "
            "AND prompter_replies_per_assistant > 0",
            name="redundancy",
        ),
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
    # How much review and ranking each item gets: "fixed" (always the maximum, decided by
    # the acceptance threshold, as Open-Assistant did) or "adaptive" (stop as soon as the
    # reliability-weighted evidence is confident, ask for more while it is not).
    growth_policy: Mapped[str] = mapped_column(String(16), server_default="fixed")
    # The most reviews a message gets (the fixed policy's exact number) and the fewest
    # before a decision.
    reviews_per_message: Mapped[int] = mapped_column(SmallInteger)
    min_reviews_per_message: Mapped[int] = mapped_column(SmallInteger, server_default="3")
    acceptance_threshold: Mapped[float] = mapped_column(Float)
    # Adaptive: the posterior probability of a review decision that settles it.
    review_confidence: Mapped[float] = mapped_column(Float, server_default="0.9")
    # The most rankings a sibling set gets (the fixed policy's exact number), the fewest
    # before it may settle, and the confidence that settles it (adaptive).
    rankings_per_sibling_set: Mapped[int] = mapped_column(SmallInteger)
    min_rankings_per_sibling_set: Mapped[int] = mapped_column(SmallInteger, server_default="3")
    ranking_confidence: Mapped[float] = mapped_column(Float, server_default="0.8")
    # Tree shape: prompter replies an assistant reply may have (the training value is in
    # ranked sibling sets of assistant replies), and the chance that a reply task goes to a
    # parent whose sibling set has exactly one reply, so that more sets become rankable.
    prompter_replies_per_assistant: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    lonely_sibling_preference: Mapped[float] = mapped_column(Float, server_default="0")

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


class TreeVisit(Base):
    """A user saw this tree in the tree viewer, up to its newest message then shown.

    The evidence that a red flag's author was shown the message (growth/shown.py) when no
    task of theirs showed it. One row per user and tree, rewritten only when a visit shows
    a newer message than the row says, so reloading the viewer writes nothing. Message ids
    grow with time, so every message the viewer showed has an id at or below the mark.
    """

    __tablename__ = "tree_visit"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    tree_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tree.id", ondelete="CASCADE"), primary_key=True
    )
    newest_message_id: Mapped[int] = mapped_column(BigInteger)
