"""Factories for growth tests: trees in a given state, replies, settings overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.growth.flags import refresh_open_flags
from hedgerow.growth.shown import record_tree_visit
from hedgerow.growth.submission import new_message
from hedgerow.models import (
    GrowthPolicy,
    Message,
    MessageRole,
    ReviewState,
    Tree,
    TreeState,
    User,
    VolunteerReliability,
)
from tests.factories import make_user

_texts = itertools.count(1)


def unique_text(prefix: str = "text") -> str:
    return f"{prefix} number {next(_texts)}: how do hedgehogs spend the winter?"


def override_settings(monkeypatch: pytest.MonkeyPatch, **values: Any) -> None:
    """Change settings for one test; the app and the services read the same object."""
    settings = get_settings()
    for name, value in values.items():
        assert hasattr(settings, name), name
        monkeypatch.setattr(settings, name, value)


def make_tree(
    db: Session,
    author: User,
    *,
    state: TreeState = TreeState.growing,
    language: str = "en",
    goal_size: int = 15,
    max_depth: int = 5,
    max_children: int = 3,
    reviews_per_message: int = 3,
    acceptance_threshold: float = 0.6,
    rankings_per_sibling_set: int = 3,
    entered_lottery_at: datetime | None = None,
    growth_policy: GrowthPolicy = GrowthPolicy.fixed,
    min_reviews_per_message: int | None = None,
    min_rankings_per_sibling_set: int | None = None,
    review_confidence: float = 0.9,
    ranking_confidence: float = 0.8,
    prompter_replies_per_assistant: int | None = None,
    lonely_sibling_preference: float = 0.0,
) -> tuple[Tree, Message]:
    """A tree and its root prompt, with counters as the engine would have left them.

    By default the fixed policy with exactly `reviews_per_message` reviews and
    `rankings_per_sibling_set` rankings, and any parent may have up to `max_children`
    replies (give `prompter_replies_per_assistant` for the production shape)."""
    root_reviewed = state != TreeState.prompt_review
    tree = Tree(
        author_id=author.id,
        state=state,
        language=language,
        goal_size=goal_size,
        max_depth=max_depth,
        max_children=max_children,
        reviews_per_message=reviews_per_message,
        acceptance_threshold=acceptance_threshold,
        rankings_per_sibling_set=rankings_per_sibling_set,
        growth_policy=growth_policy,
        min_reviews_per_message=min_reviews_per_message or reviews_per_message,
        min_rankings_per_sibling_set=min_rankings_per_sibling_set or rankings_per_sibling_set,
        review_confidence=review_confidence,
        ranking_confidence=ranking_confidence,
        prompter_replies_per_assistant=prompter_replies_per_assistant or max_children,
        lonely_sibling_preference=lonely_sibling_preference,
        accepted_count=1 if root_reviewed else 0,
        pending_count=0 if root_reviewed else 1,
        reply_lease_count=0,
        open_ranking_sets=0,
        entered_lottery_at=(
            entered_lottery_at or datetime.now(UTC) if state == TreeState.lottery_waiting else None
        ),
    )
    db.add(tree)
    db.flush()
    root = new_message(
        tree=tree,
        parent=None,
        author_id=author.id,
        role=MessageRole.prompter,
        text=unique_text("prompt"),
    )
    if root_reviewed:
        root.review_state = ReviewState.accepted
        root.review_count = reviews_per_message
    db.add(root)
    db.flush()
    tree.root_message_id = root.id
    refresh_open_flags(root, tree)
    db.flush()
    return tree, root


def add_reply(
    db: Session,
    tree: Tree,
    parent: Message,
    author: User,
    *,
    review_state: ReviewState = ReviewState.accepted,
) -> Message:
    role = MessageRole.assistant if parent.role == MessageRole.prompter else MessageRole.prompter
    reply = new_message(
        tree=tree, parent=parent, author_id=author.id, role=role, text=unique_text(role)
    )
    reply.review_state = review_state
    db.add(reply)
    if review_state != ReviewState.rejected:
        parent.child_count += 1
    if review_state == ReviewState.accepted:
        reply.review_count = tree.reviews_per_message
        parent.accepted_child_count += 1
        tree.accepted_count += 1
    elif review_state == ReviewState.pending:
        tree.pending_count += 1
    db.flush()
    refresh_open_flags(reply, tree)
    refresh_open_flags(parent, tree)
    db.flush()
    return reply


def count_rows(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def reload(db: Session, obj: Any) -> Any:
    db.flush()
    db.refresh(obj)
    return obj


def give_track_record(db: Session, user: User, *, agreed: int = 10, settled: int = 10) -> User:
    """A volunteer with `agreed` of `settled` reviews that went as the decision did."""
    db.add(VolunteerReliability(user_id=user.id, reviews_settled=settled, reviews_agreed=agreed))
    db.flush()
    return user


def make_trusted_viewer(db: Session, message: Message) -> User:
    """A volunteer whose red flag on `message` counts: a track record (enough accepted
    contributions at the default setting) and a visit of its tree that showed it."""
    user = give_track_record(db, make_user(db))
    record_tree_visit(db, user.id, message.tree_id, message.id)
    return user
