"""Auto-moderation: red flags soft-delete a subtree; many skips halt a tree."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.growth.flags import (
    PARENT_ROLE_FOR_KIND,
    REPLY_ROLE_FOR_KIND,
    refresh_open_flags,
    sibling_set_needs_rankings,
)
from hedgerow.growth.lottery import count_growing, draw_lottery
from hedgerow.growth.queries import (
    LOTTERY_LOCK_NAMESPACE,
    advisory_xact_lock,
    language_lock_key,
    lock_message_in_tree,
    lock_messages,
    lock_tree,
    subtree_ids,
)
from hedgerow.growth.tree_state import (
    FINISHED_STATES,
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
    Task,
    TaskState,
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
    tree, message, parent = lock_message_in_tree(db, message_id)
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
            parent=parent,
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
    # What undelete needs to put the tree back where it was.
    tree_before = {
        "tree_state": tree.state,
        "completed_at": tree.completed_at.isoformat() if tree.completed_at else None,
        # A tree this deletion finishes (aborted or complete) gets completed_at == now.
        "deleted_at": now.isoformat(),
    }
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
            before=tree_before,
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


# --- undoing a moderator's decision -----------------------------------------------------


def _live_slot_counts(db: Session, message_ids: list[int]) -> dict[tuple[int | None, str], int]:
    """(target id, slot kind) -> leases that still hold a slot on that target.

    A lease released while its target was deleted clears only its own ``holds_slot``
    (release_slot leaves a deleted target's counters alone), so the counters on deleted
    messages are stale; the tasks themselves are the truth.
    """
    rows = db.execute(
        select(Task.target_message_id, Task.kind, func.count())
        .where(
            Task.target_message_id.in_(message_ids),
            Task.state == TaskState.leased,
            Task.holds_slot,
        )
        .group_by(Task.target_message_id, Task.kind)
    ).all()
    counts: dict[tuple[int | None, str], int] = {}
    for target_id, kind, count in rows:
        slot = (
            "reply"
            if kind in REPLY_ROLE_FOR_KIND
            else "ranking"
            if kind in PARENT_ROLE_FOR_KIND
            else "review"
        )
        counts[(target_id, slot)] = counts.get((target_id, slot), 0) + count
    return counts


def _deletion_event(db: Session, deletion_id: int) -> AuditEvent | None:
    return db.scalar(
        select(AuditEvent)
        .where(
            AuditEvent.action == "message.delete_subtree",
            AuditEvent.target_type == "message",
            AuditEvent.target_id == deletion_id,
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def _has_growing_room(db: Session, tree: Tree) -> bool:
    advisory_xact_lock(db, LOTTERY_LOCK_NAMESPACE, language_lock_key(tree.language))
    return count_growing(db, tree.language) < get_settings().growing_trees_per_language


def _back_to_growing(db: Session, tree: Tree) -> TreeState:
    """The state for a tree a moderator sends back to `growing`: the growing limit per
    language holds even then. Without a free slot, a tree that is just its prompt waits in
    the lottery; one with replies stays halted (the lottery's draw opens only the prompt
    for work), to be resumed when a slot frees."""
    if _has_growing_room(db, tree):
        return TreeState.growing
    if tree.accepted_count + tree.pending_count <= 1:
        if tree.entered_lottery_at is None:
            tree.entered_lottery_at = datetime.now(UTC)
        return TreeState.lottery_waiting
    tree.halted_from_state = TreeState.growing
    return TreeState.halted


def _ranking_started_by_deletion(db: Session, tree: Tree) -> bool:
    """A ranking tree that has restored pending replies or reply leases started ranking only
    because the deletion took them away; with no ranking given or leased yet, it can go
    back to growing."""
    if tree.pending_count == 0 and tree.reply_lease_count == 0:
        return False
    in_tree = select(Message.id).where(Message.tree_id == tree.id)
    rankings_begun = db.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.tree_id == tree.id,
            (Message.ranking_count > 0) | (Message.ranking_lease_count > 0),
        )
    )
    held = db.scalar(
        select(func.count())
        .select_from(Task)
        .where(
            Task.target_message_id.in_(in_tree),
            Task.state == TaskState.leased,
            Task.holds_slot,
            Task.kind.in_(list(PARENT_ROLE_FOR_KIND)),
        )
    )
    return not rankings_begun and not held


def reopen_tree_work(
    db: Session, tree: Tree, *, now: datetime, rng: random.Random | None = None
) -> None:
    """Recompute every open-work flag and the ranking sets of a tree whose state or
    messages a moderator changed, then let it move on if it is done."""
    settings = get_settings()
    db.flush()
    messages = db.scalars(
        select(Message)
        .where(Message.tree_id == tree.id, ~Message.deleted)
        .order_by(Message.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for message in messages:
        refresh_open_flags(message, tree, settings)
    if tree.state == TreeState.ranking:
        tree.open_ranking_sets = sum(
            1 for message in messages if sibling_set_needs_rankings(message, tree, settings)
        )
        if tree.open_ranking_sets == 0:
            complete_tree(db, tree, now=now)
    elif tree.state == TreeState.growing:
        maybe_start_ranking(db, tree, now=now, rng=rng)
    db.flush()


def undelete_subtree(
    db: Session,
    deletion_id: int,
    *,
    actor_id: int | None,
    reason: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> list[int]:
    """Bring back exactly the messages one deletion removed, with every counter, flag and
    the tree's state as they would be had the deletion never happened.

    Messages deleted earlier by another deletion stay deleted. A tree that the deletion
    finished (aborted by deleting its prompt, or completed by closing its last open sibling
    set) returns to the state it had before; a growing tree goes back into the lottery if
    its language has no free growing slot.
    """
    now = now or datetime.now(UTC)
    row = db.execute(
        select(Message.tree_id, Message.parent_id, Message.deleted, Message.deletion_id).where(
            Message.id == deletion_id
        )
    ).first()
    if row is None:
        raise NotFound("message")
    if not row.deleted or row.deletion_id != deletion_id:
        raise AppError(
            "not_deleted",
            "This message is not the top of a deleted subtree; nothing to undelete.",
            409,
        )
    tree = lock_tree(db, row.tree_id)
    ids = list(
        db.scalars(
            select(Message.id).where(
                Message.tree_id == row.tree_id, Message.deletion_id == deletion_id
            )
        )
    )
    locked = lock_messages(db, ids + ([row.parent_id] if row.parent_id is not None else []))
    root = locked[deletion_id]
    parent = locked.get(row.parent_id) if row.parent_id is not None else None
    if parent is not None and parent.deleted:
        raise AppError(
            "parent_deleted",
            "The message this one replies to is deleted; undelete that one first.",
            409,
        )

    slots = _live_slot_counts(db, ids)
    for message_id in ids:
        message = locked[message_id]
        message.deleted = False
        message.deletion_id = None
        message.reply_lease_count = slots.get((message_id, "reply"), 0)
        message.review_lease_count = slots.get((message_id, "review"), 0)
        message.ranking_lease_count = slots.get((message_id, "ranking"), 0)
        if message.review_state == ReviewState.pending:
            tree.pending_count += 1
        elif message.review_state == ReviewState.accepted:
            tree.accepted_count += 1
        tree.reply_lease_count += message.reply_lease_count
    if parent is not None:
        if root.review_state != ReviewState.rejected:
            parent.child_count += 1
        if root.review_state == ReviewState.accepted:
            parent.accepted_child_count += 1

    event = _deletion_event(db, deletion_id)
    tree_before = (event.before or {}) if event is not None else {}
    state_before = tree_before.get("tree_state")
    state_now = tree.state
    deleted_at = tree_before.get("deleted_at")
    finished_by_this_deletion = (
        state_before is not None
        and state_before not in FINISHED_STATES
        and tree.state in FINISHED_STATES
        and deleted_at is not None
        and tree.completed_at == datetime.fromisoformat(deleted_at)
    )
    if finished_by_this_deletion and state_before is not None:
        # The deletion aborted the tree (its prompt) or completed it (the last open sibling
        # set): put it back where it was.
        restored = TreeState(state_before)
        if restored == TreeState.growing:
            restored = _back_to_growing(db, tree)
        tree.state = restored
        completed = tree_before.get("completed_at")
        tree.completed_at = datetime.fromisoformat(completed) if completed else None
    elif (
        state_before == TreeState.growing
        and tree.state == TreeState.ranking
        and _ranking_started_by_deletion(db, tree)
        and _has_growing_room(db, tree)
    ):
        tree.state = TreeState.growing
        tree.open_ranking_sets = 0
    reopen_tree_work(db, tree, now=now, rng=rng)
    db.add(
        AuditEvent(
            actor_id=actor_id,
            action="message.undelete_subtree",
            target_type="message",
            target_id=deletion_id,
            before={"deleted": True, "tree_state": state_now},
            after={"message_ids": sorted(ids), "tree_state": tree.state},
            reason=reason,
        )
    )
    db.flush()
    return sorted(ids)


def resume_tree(
    db: Session,
    tree_id: int,
    *,
    actor_id: int | None,
    reason: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Tree:
    """Undo a halt: the tree goes back to the state it was halted from and offers work
    again (see _back_to_growing for a growing tree whose language has no free slot)."""
    now = now or datetime.now(UTC)
    tree = lock_tree(db, tree_id)
    if tree.state != TreeState.halted or tree.halted_from_state is None:
        raise AppError("not_halted", "This conversation is not halted.", 409)
    restored = TreeState(tree.halted_from_state)
    if restored == TreeState.growing:
        restored = _back_to_growing(db, tree)
        if restored == TreeState.halted:
            raise AppError(
                "no_growing_slot",
                f"Every growing slot for {tree.language} is taken; resume this tree when "
                "one frees.",
                409,
            )
    tree.state = restored
    tree.halted_from_state = None
    reopen_tree_work(db, tree, now=now, rng=rng)
    if tree.state == TreeState.lottery_waiting:
        draw_lottery(db, tree.language, rng=rng, now=now)
    db.add(
        AuditEvent(
            actor_id=actor_id,
            action="tree.resume",
            target_type="tree",
            target_id=tree.id,
            before={"state": TreeState.halted.value},
            after={"state": tree.state},
            reason=reason,
        )
    )
    db.flush()
    return tree
