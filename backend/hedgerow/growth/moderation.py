"""Auto-moderation: red flags soft-delete a subtree; many skips halt a tree."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.growth.flags import refresh_open_flags, sibling_set_needs_rankings
from hedgerow.growth.queries import lock_messages, lock_tree, subtree_ids
from hedgerow.growth.tree_state import (
    abort_tree,
    complete_tree,
    halt_tree,
    maybe_start_ranking,
)
from hedgerow.models import (
    AuditEvent,
    Message,
    Reaction,
    ReactionKind,
    ReviewState,
    Tree,
    TreeState,
    User,
)


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
    row = db.execute(
        select(Message.tree_id, Message.parent_id).where(Message.id == message_id)
    ).first()
    if row is None:
        raise NotFound("message")
    tree = lock_tree(db, row.tree_id)
    # Parent before child: messages are always locked in ascending id order.
    locked = lock_messages(db, [m for m in (row.parent_id, message_id) if m is not None])
    message = locked[message_id]
    if message.deleted:
        raise NotFound("message")
    if message.author_id == user.id:
        raise AppError("own_message", "You cannot flag your own message.", 409)
    inserted = db.scalar(
        insert(Reaction)
        .values(message_id=message_id, user_id=user.id, kind=ReactionKind.red_flag)
        .on_conflict_do_nothing()
        .returning(Reaction.id)
    )
    if inserted is not None:
        message.red_flag_count += 1
    deleted = False
    if message.red_flag_count >= get_settings().red_flags_to_delete:
        soft_delete_subtree(
            db,
            message,
            tree,
            parent=locked.get(row.parent_id) if row.parent_id is not None else None,
            now=now,
            reason=f"auto: {message.red_flag_count} red flags",
            rng=rng,
        )
        deleted = True
    db.flush()
    return RedFlagOutcome(message_id, message.red_flag_count, inserted is not None, deleted)


def soft_delete_subtree(
    db: Session,
    root: Message,
    tree: Tree,
    *,
    parent: Message | None,
    now: datetime,
    reason: str,
    actor_id: int | None = None,
    rng: random.Random | None = None,
) -> list[int]:
    """Delete `root` and everything below it, sharing one deletion_id; fix every counter.

    The tree and `root`'s parent must already be locked. Leases on deleted messages stop
    counting against the tree now; their tasks release nothing later (see release_slot's
    callers: a deleted target's counters are left alone).
    """
    settings = get_settings()
    ids = subtree_ids(db, root.id)
    messages = lock_messages(db, ids)
    ranking = tree.state == TreeState.ranking
    sets_closed = 0
    for message in messages.values():
        if message.deleted:
            continue
        if ranking and sibling_set_needs_rankings(message, tree, settings):
            sets_closed += 1
        if message.review_state == ReviewState.pending:
            tree.pending_count -= 1
        elif message.review_state == ReviewState.accepted:
            tree.accepted_count -= 1
        tree.reply_lease_count -= message.reply_lease_count
        message.deleted = True
        message.deletion_id = root.id
        message.open_for_review = message.open_for_reply = message.open_for_ranking = False

    if parent is not None:
        needed_before = sibling_set_needs_rankings(parent, tree, settings)
        if root.review_state != ReviewState.rejected:
            parent.child_count -= 1  # the deleted reply gives its child slot back
        if root.review_state == ReviewState.accepted:
            parent.accepted_child_count -= 1
        if ranking and needed_before and not sibling_set_needs_rankings(parent, tree, settings):
            sets_closed += 1
        refresh_open_flags(parent, tree, settings)

    db.add(
        AuditEvent(
            actor_id=actor_id,
            action="message.delete_subtree",
            target_type="message",
            target_id=root.id,
            after={"deletion_id": root.id, "message_ids": sorted(ids)},
            reason=reason,
        )
    )
    if root.depth == 0:
        abort_tree(db, tree, now=now, rng=rng)
    elif ranking:
        tree.open_ranking_sets = max(tree.open_ranking_sets - sets_closed, 0)
        if tree.open_ranking_sets == 0:
            complete_tree(db, tree, now=now)
    else:
        maybe_start_ranking(db, tree, now=now, rng=rng)
    db.flush()
    return ids


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
