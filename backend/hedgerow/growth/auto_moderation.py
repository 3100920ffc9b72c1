"""Auto-moderation: red flags soft-delete a subtree; many skips halt a tree."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.growth.interventions import soft_delete_subtree
from hedgerow.growth.queries import insert_red_flag, lock_message_in_tree
from hedgerow.growth.tree_state import halt_tree
from hedgerow.models import Message, Tree, User


@dataclass(frozen=True)
class RedFlagOutcome:
    message_id: int
    red_flag_count: int
    newly_flagged: bool
    deleted: bool


def record_red_flag(
    db: Session,
    user: User,
    message_id: int,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> RedFlagOutcome:
    """One red flag per user and message; enough of them delete the message's subtree."""
    now = now or datetime.now(UTC)
    tree, message, parent = lock_message_in_tree(db, message_id)
    if message.deleted:
        raise NotFound("message")
    if message.author_id == user.id:
        raise AppError("own_message", "You cannot flag your own message.", 409)
    inserted = insert_red_flag(db, message_id, user.id)
    if inserted:
        message.red_flag_count += 1
    deleted = False
    if message.red_flag_count >= get_settings().red_flags_to_delete:
        soft_delete_subtree(
            db,
            message,
            tree,
            parent=parent,
            now=now,
            reason=f"auto: {message.red_flag_count} red flags",
            rng=rng,
        )
        deleted = True
    db.flush()
    return RedFlagOutcome(message_id, message.red_flag_count, inserted, deleted)


def count_skip(
    db: Session,
    target: Message,
    tree: Tree,
    *,
    now: datetime,
    rng: random.Random | None = None,
) -> bool:
    """Count a skip of `target` (locked with its tree); returns True if it halted the tree.

    Something that volunteer after volunteer skips is usually broken or offensive: stop the
    tree and let a moderator look.
    """
    target.skip_count += 1
    threshold = get_settings().skips_to_halt
    if target.skip_count >= threshold:
        return halt_tree(
            db,
            tree,
            reason=f"auto: message {target.id} skipped {target.skip_count} times",
            now=now,
            rng=rng,
        )
    return False
