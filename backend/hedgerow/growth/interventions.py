"""What moderation does to a tree, kept exact: deleting and undeleting subtrees, halting and
resuming, editing a message's text, ending a disabled user's leases.

The moderation domain decides who may act and records why; these functions change the
counters, open-work flags and tree states, in the engine's lock order (task, tree, then
messages by ascending id).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from hedgerow.audit import record_audit
from hedgerow.config import get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.growth.flags import (
    PARENT_ROLE_FOR_KIND,
    REPLY_ROLE_FOR_KIND,
    refresh_open_flags,
    sibling_set_needs_rankings,
)
from hedgerow.growth.leases import release_task_slot
from hedgerow.growth.lottery import count_growing, draw_lottery
from hedgerow.growth.queries import (
    LOTTERY_LOCK_NAMESPACE,
    advisory_xact_lock,
    deleted_subtree_row,
    language_lock_key,
    latest_deletion_event,
    live_slot_leases,
    live_subtree_size,
    lock_leased_tasks_of_user,
    lock_live_tree_messages,
    lock_message,
    lock_message_in_tree,
    lock_messages,
    lock_tree,
    mark_labels_before_edit,
    mark_rankings_before_edit,
    message_ids_of_deletion,
    rankings_begun_in_tree,
    subtree_ids,
    tree_id_of_message,
)
from hedgerow.growth.text import text_sha256
from hedgerow.growth.tree_state import (
    FINISHED_STATES,
    abort_tree,
    complete_tree,
    halt_tree,
    maybe_start_ranking,
)
from hedgerow.i18n import gettext as _
from hedgerow.i18n import ngettext
from hedgerow.models import Message, ReviewState, TaskState, Tree, TreeState
from hedgerow.text import normalize_text


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
    # What undelete needs to put the tree back where it was.
    tree_before = {
        "tree_state": tree.state,
        "completed_at": tree.completed_at.isoformat() if tree.completed_at else None,
        # A tree this deletion finishes (aborted or complete) gets completed_at == now.
        "deleted_at": now.isoformat(),
    }
    ids = subtree_ids(db, root.id)
    sets_closed = _delete_messages(lock_messages(db, ids).values(), root, tree, parent)
    record_audit(
        db,
        actor_id=actor_id,
        action="message.delete_subtree",
        target_type="message",
        target_id=root.id,
        before=tree_before,
        after={"deletion_id": root.id, "message_ids": sorted(ids)},
        reason=reason,
    )
    if root.depth == 0:
        # Without its prompt a tree has nothing to offer or export, complete or not.
        abort_tree(db, tree, now=now, rng=rng, even_if_complete=True)
    elif tree.state == TreeState.ranking:
        tree.open_ranking_sets = max(tree.open_ranking_sets - sets_closed, 0)
        if tree.open_ranking_sets == 0:
            complete_tree(db, tree, now=now)
    else:
        maybe_start_ranking(db, tree, now=now, rng=rng)
    db.flush()
    return ids


def _delete_messages(
    messages: Iterable[Message], root: Message, tree: Tree, parent: Message | None
) -> int:
    """Mark the subtree deleted and take it off the counters; returns the sibling sets
    that stop needing rankings (they count only while the tree ranks)."""
    settings = get_settings()
    ranking = tree.state == TreeState.ranking
    sets_closed = 0
    for message in messages:
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
    return sets_closed


def delete_subtree(
    db: Session,
    message_id: int,
    *,
    actor_id: int | None,
    reason: str,
    now: datetime,
    rng: random.Random | None = None,
    expected_count: int | None = None,
) -> list[int]:
    """A moderator deletes a message with its replies; returns the deleted ids.

    With `expected_count` (what the moderator confirmed, see live_subtree_size) the
    deletion happens only if it still deletes exactly that many messages: replies written
    since the confirmation would otherwise go unseen. Counted under the tree's lock, which
    every new reply takes too.
    """
    tree, message, parent = lock_message_in_tree(db, message_id)
    if message.deleted:
        raise AppError("already_deleted", _("This message is already deleted."), 409)
    if expected_count is not None:
        count = live_subtree_size(db, [message_id])
        if count != expected_count:
            raise AppError(
                "subtree_changed",
                ngettext(
                    "This now deletes %(num)d message, not %(expected)s: confirm again.",
                    "This now deletes %(num)d messages, not %(expected)s: confirm again.",
                    count,
                    expected=expected_count,
                ),
                409,
                details={"count": count},
            )
    return soft_delete_subtree(
        db, message, tree, parent=parent, now=now, reason=reason, actor_id=actor_id, rng=rng
    )


# --- undoing a moderator's decision -----------------------------------------------------


def _live_slot_counts(db: Session, message_ids: list[int]) -> dict[tuple[int | None, str], int]:
    """(target id, slot kind) -> leases that still hold a slot on that target.

    A lease released while its target was deleted clears only its own ``holds_slot``
    (release_slot leaves a deleted target's counters alone), so the counters on deleted
    messages are stale; the tasks themselves are the truth.
    """
    counts: dict[tuple[int | None, str], int] = {}
    for target_id, kind, count in live_slot_leases(db, message_ids):
        slot = (
            "reply"
            if kind in REPLY_ROLE_FOR_KIND
            else "ranking"
            if kind in PARENT_ROLE_FOR_KIND
            else "review"
        )
        counts[(target_id, slot)] = counts.get((target_id, slot), 0) + count
    return counts


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
    return not rankings_begun_in_tree(db, tree.id)


def reopen_tree_work(
    db: Session, tree: Tree, *, now: datetime, rng: random.Random | None = None
) -> None:
    """Recompute every open-work flag and the ranking sets of a tree whose state or
    messages a moderator changed, then let it move on if it is done."""
    settings = get_settings()
    db.flush()
    messages = lock_live_tree_messages(db, tree.id)
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


def _restore_messages(
    db: Session,
    ids: list[int],
    locked: dict[int, Message],
    tree: Tree,
    root: Message,
    parent: Message | None,
) -> None:
    """Undelete the messages with their live leases and put them back on the counters."""
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


def _restore_tree_state(db: Session, tree: Tree, deletion_id: int) -> None:
    """Put back the state a deletion moved the tree out of, as far as that is still true."""
    event = latest_deletion_event(db, deletion_id)
    tree_before = (event.before or {}) if event is not None else {}
    state_before = tree_before.get("tree_state")
    deleted_at = tree_before.get("deleted_at")
    # The deletion aborted the tree (its prompt; a complete tree too) or completed it (the
    # last open sibling set).
    finished_by_this_deletion = (
        state_before is not None
        and state_before != tree.state
        and tree.state in FINISHED_STATES
        and deleted_at is not None
        and tree.completed_at == datetime.fromisoformat(deleted_at)
    )
    if finished_by_this_deletion and state_before is not None:
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
    row = deleted_subtree_row(db, deletion_id)
    if row is None:
        raise NotFound(_("That message does not exist."))
    if not row.deleted or row.deletion_id != deletion_id:
        raise AppError(
            "not_deleted",
            _("This message is not the top of a deleted subtree; nothing to undelete."),
            409,
        )
    tree = lock_tree(db, row.tree_id)
    ids = message_ids_of_deletion(db, row.tree_id, deletion_id)
    locked = lock_messages(db, ids + ([row.parent_id] if row.parent_id is not None else []))
    parent = locked.get(row.parent_id) if row.parent_id is not None else None
    if parent is not None and parent.deleted:
        raise AppError(
            "parent_deleted",
            _("The message this one replies to is deleted; undelete that one first."),
            409,
        )
    _restore_messages(db, ids, locked, tree, locked[deletion_id], parent)
    state_now = tree.state
    _restore_tree_state(db, tree, deletion_id)
    reopen_tree_work(db, tree, now=now, rng=rng)
    record_audit(
        db,
        actor_id=actor_id,
        action="message.undelete_subtree",
        target_type="message",
        target_id=deletion_id,
        before={"deleted": True, "tree_state": state_now},
        after={"message_ids": sorted(ids), "tree_state": tree.state},
        reason=reason,
    )
    db.flush()
    return sorted(ids)


# --- halting -----------------------------------------------------------------------------


def halt(
    db: Session,
    tree_id: int,
    *,
    reason: str,
    actor_id: int | None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Tree:
    """A moderator halts a tree: all work on it stops until it is resumed."""
    if db.get(Tree, tree_id) is None:
        raise NotFound(_("That tree does not exist."))
    tree = lock_tree(db, tree_id)
    if not halt_tree(db, tree, reason=reason, now=now or datetime.now(UTC), actor_id=actor_id):
        raise AppError(
            "cannot_halt", _("A tree in state “%(state)s” cannot be halted.", state=tree.state), 409
        )
    db.flush()
    return tree


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
    if db.get(Tree, tree_id) is None:
        raise NotFound(_("That tree does not exist."))
    tree = lock_tree(db, tree_id)
    if tree.state != TreeState.halted or tree.halted_from_state is None:
        raise AppError("not_halted", _("This conversation is not halted."), 409)
    restored = TreeState(tree.halted_from_state)
    if restored == TreeState.growing:
        restored = _back_to_growing(db, tree)
        if restored == TreeState.halted:
            raise AppError(
                "no_growing_slot",
                _(
                    "Every growing slot for %(language)s is taken; resume this tree when "
                    "one frees.",
                    language=tree.language,
                ),
                409,
            )
    tree.state = restored
    tree.halted_from_state = None
    reopen_tree_work(db, tree, now=now, rng=rng)
    if tree.state == TreeState.lottery_waiting:
        draw_lottery(db, tree.language, rng=rng, now=now)
    record_audit(
        db,
        actor_id=actor_id,
        action="tree.resume",
        target_type="tree",
        target_id=tree.id,
        before={"state": TreeState.halted.value},
        after={"state": tree.state},
        reason=reason,
    )
    db.flush()
    return tree


# --- edits and disabled users ------------------------------------------------------------


@dataclass(frozen=True)
class TextEdit:
    message: Message
    old_text: str
    new_text: str
    labels_before_edit: int
    rankings_before_edit: int


def edit_text(db: Session, message_id: int, new_text: str) -> TextEdit:
    """Replace a message's text. The labels of the message and the rankings of its sibling
    set made so far are marked before_edit: they judged other words."""
    text = normalize_text(new_text, get_settings().max_text_length)
    tree_id = tree_id_of_message(db, message_id)
    if tree_id is None:
        raise NotFound(_("That message does not exist."))
    lock_tree(db, tree_id)  # the lock order, although the tree's counters do not change
    message = lock_message(db, message_id)
    if message.deleted:
        raise AppError("message_deleted", _("Undelete the message before editing it."), 409)
    if text == message.text:
        raise AppError("text_unchanged", _("The new text is the same as the old one."), 422)
    old_text = message.text
    message.text = text
    message.text_sha256 = text_sha256(text)
    message.edited = True
    labels = mark_labels_before_edit(db, message.id)
    rankings = 0 if message.parent_id is None else mark_rankings_before_edit(db, message.parent_id)
    return TextEdit(message, old_text, text, labels, rankings)


def end_open_leases(db: Session, user_id: int, *, now: datetime) -> int:
    """Give back every slot the user's leased tasks hold; the tasks expire."""
    tasks = lock_leased_tasks_of_user(db, user_id)
    for task in tasks:
        release_task_slot(db, task, now=now)
        task.state = TaskState.expired
        task.finished_at = now
    db.flush()
    return len(tasks)
