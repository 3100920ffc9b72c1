"""The prompt lottery: which accepted prompt grows next.

Per language, while fewer than ``growing_trees_per_language`` trees grow, draw an author
uniformly among enabled authors with a waiting prompt, then take that author's oldest
waiting prompt. Drawing authors, not prompts, means that someone who submitted two hundred
prompts has the same chance per draw as someone who submitted one.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.audit import record_audit
from hedgerow.config import get_settings
from hedgerow.growth.flags import refresh_open_flags
from hedgerow.growth.queries import (
    LOTTERY_LOCK_NAMESPACE,
    advisory_xact_lock,
    language_lock_key,
    lock_message,
)
from hedgerow.models import Tree, TreeState, User

_default_rng = random.Random()


def _waiting_authors(db: Session, language: str) -> list[int]:
    return list(
        db.scalars(
            select(Tree.author_id)
            .join(User, User.id == Tree.author_id)
            .where(
                Tree.state == TreeState.lottery_waiting,
                Tree.language == language,
                User.enabled,
                User.deleted_at.is_(None),
            )
            .distinct()
            .order_by(Tree.author_id)
        )
    )


def _oldest_waiting_tree(db: Session, language: str, author_id: int) -> Tree | None:
    return db.scalar(
        select(Tree)
        .where(
            Tree.state == TreeState.lottery_waiting,
            Tree.language == language,
            Tree.author_id == author_id,
        )
        .order_by(Tree.entered_lottery_at, Tree.id)
        .limit(1)
        # A tree another transaction holds (being withdrawn, moderated) is not drawable now.
        .with_for_update(skip_locked=True)
    )


def count_growing(db: Session, language: str) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(Tree)
            .where(Tree.state == TreeState.growing, Tree.language == language)
        )
        or 0
    )


def draw_lottery(
    db: Session,
    language: str,
    *,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Fill the language's free growing slots; return the ids of the trees drawn."""
    rng = rng or _default_rng
    now = now or datetime.now(UTC)
    limit = get_settings().growing_trees_per_language
    # Serialises draws per language, so two transactions never both fill the last slot.
    advisory_xact_lock(db, LOTTERY_LOCK_NAMESPACE, language_lock_key(language))
    growing = count_growing(db, language)
    drawn: list[int] = []
    unavailable: set[int] = set()
    while growing < limit:
        authors = [a for a in _waiting_authors(db, language) if a not in unavailable]
        if not authors:
            break
        author_id = rng.choice(authors)
        tree = _oldest_waiting_tree(db, language, author_id)
        if tree is None:
            unavailable.add(author_id)
            continue
        tree.state = TreeState.growing
        tree.drawn_at = now
        if tree.root_message_id is not None:
            refresh_open_flags(lock_message(db, tree.root_message_id), tree)
        drawn.append(tree.id)
        growing += 1
    db.flush()
    return drawn


def top_up_lotteries(
    db: Session, *, rng: random.Random | None = None, now: datetime | None = None
) -> dict[str, list[int]]:
    """Draw in every language that has waiting prompts (the periodic job)."""
    languages = db.scalars(
        select(Tree.language).where(Tree.state == TreeState.lottery_waiting).distinct()
    ).all()
    return {language: draw_lottery(db, language, rng=rng, now=now) for language in languages}


def withdraw_waiting_prompts(db: Session, user_id: int, *, actor_id: int | None = None) -> int:
    """Take a (disabled) user's prompts out of the lottery; they are halted, so a moderator
    can put them back. Returns how many were withdrawn."""
    trees = db.scalars(
        select(Tree)
        .where(Tree.author_id == user_id, Tree.state == TreeState.lottery_waiting)
        .order_by(Tree.id)
        .with_for_update()
    ).all()
    for tree in trees:
        tree.halted_from_state = tree.state
        tree.state = TreeState.halted
    if trees:
        record_audit(
            db,
            actor_id=actor_id,
            action="lottery.withdraw_waiting_prompts",
            target_type="user",
            target_id=user_id,
            after={"tree_ids": [tree.id for tree in trees]},
        )
    db.flush()
    return len(trees)
