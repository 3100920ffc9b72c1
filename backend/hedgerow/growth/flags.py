"""The open-work flags and the slots that leases hold.

``open_for_review``, ``open_for_reply`` and ``open_for_ranking`` are each backed by a small
partial index; the hand-out reads only those indexes, so they must be exactly true in the
same transaction as every change to what they summarise. Every change to a message's
counters or review state, or to its tree's state, ends with ``refresh_open_flags``.
"""

from __future__ import annotations

from hedgerow.config import Settings, get_settings
from hedgerow.growth.redundancy import ranking_target, reply_limit, review_target
from hedgerow.models import Message, MessageRole, ReviewState, Task, TaskKind, Tree, TreeState

REPLY_ROLE_FOR_KIND = {
    TaskKind.reply_assistant: MessageRole.assistant,
    TaskKind.reply_prompter: MessageRole.prompter,
}
# The role of the parent whose children a task works on (replies and rankings).
PARENT_ROLE_FOR_KIND = {
    TaskKind.reply_assistant: MessageRole.prompter,
    TaskKind.reply_prompter: MessageRole.assistant,
    TaskKind.rank_assistant_replies: MessageRole.prompter,
    TaskKind.rank_prompter_replies: MessageRole.assistant,
}


def children_are_ranked(parent: Message, settings: Settings) -> bool:
    """Assistant replies are always ranked; prompter replies only where enabled."""
    return parent.role == MessageRole.prompter or settings.rank_prompter_replies


def tree_reviews(message: Message, tree: Tree) -> bool:
    # The root is reviewed before the tree grows; replies while it grows.
    wanted = TreeState.prompt_review if message.depth == 0 else TreeState.growing
    return tree.state == wanted


def is_open_for_review(message: Message, tree: Tree) -> bool:
    return (
        message.review_state == ReviewState.pending
        and not message.deleted
        and tree_reviews(message, tree)
        and message.review_count + message.review_lease_count < review_target(message, tree)
    )


def can_have_replies(message: Message, tree: Tree) -> bool:
    """Replies sit one level deeper than their parent, and depth stays below max_depth:
    with max_depth 5 the deepest reply has depth 4, so a parent at depth 3 is the last one
    open for replies."""
    return message.depth + 1 < tree.max_depth


def is_open_for_reply(message: Message, tree: Tree) -> bool:
    return (
        tree.state == TreeState.growing
        and message.review_state == ReviewState.accepted
        and not message.deleted
        and can_have_replies(message, tree)
        and message.child_count + message.reply_lease_count < reply_limit(message, tree)
    )


def sibling_set_is_rankable(parent: Message, settings: Settings) -> bool:
    return (
        not parent.deleted
        and parent.accepted_child_count >= 2
        and children_are_ranked(parent, settings)
    )


def sibling_set_needs_rankings(parent: Message, tree: Tree, settings: Settings) -> bool:
    """Counts towards tree.open_ranking_sets: rankable and not settled yet."""
    return sibling_set_is_rankable(parent, settings) and not parent.ranking_settled


def is_open_for_ranking(parent: Message, tree: Tree, settings: Settings) -> bool:
    return (
        tree.state == TreeState.ranking
        and sibling_set_is_rankable(parent, settings)
        and not parent.ranking_settled
        and parent.ranking_count + parent.ranking_lease_count < ranking_target(parent, tree)
    )


def refresh_open_flags(message: Message, tree: Tree, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    message.open_for_review = is_open_for_review(message, tree)
    message.open_for_reply = is_open_for_reply(message, tree)
    message.open_for_ranking = is_open_for_ranking(message, tree, settings)


# --- slots --------------------------------------------------------------------------


def tree_has_room(tree: Tree) -> bool:
    """A tree never grows past its goal: submitted, pending and leased replies all count."""
    return tree.accepted_count + tree.pending_count + tree.reply_lease_count < tree.goal_size


def slot_is_free(kind: str, target: Message, tree: Tree, settings: Settings) -> bool:
    """Whether a new lease of `kind` on `target` may be taken (ignoring who asks)."""
    if kind in REPLY_ROLE_FOR_KIND:
        return is_open_for_reply(target, tree) and tree_has_room(tree)
    if kind in PARENT_ROLE_FOR_KIND:
        return is_open_for_ranking(target, tree, settings)
    return is_open_for_review(target, tree)


def take_slot(task: Task, target: Message, tree: Tree, settings: Settings) -> None:
    if task.kind in REPLY_ROLE_FOR_KIND:
        target.reply_lease_count += 1
        tree.reply_lease_count += 1
    elif task.kind in PARENT_ROLE_FOR_KIND:
        target.ranking_lease_count += 1
    else:
        target.review_lease_count += 1
    task.holds_slot = True
    refresh_open_flags(target, tree, settings)


def release_slot(task: Task, target: Message, tree: Tree, settings: Settings) -> None:
    """Give back the slot a task holds; a no-op for a task that holds none."""
    if not task.holds_slot:
        return
    if target.deleted:
        # Deleting a subtree already took its leases off the tree's counters.
        task.holds_slot = False
        return
    if task.kind in REPLY_ROLE_FOR_KIND:
        target.reply_lease_count -= 1
        tree.reply_lease_count -= 1
    elif task.kind in PARENT_ROLE_FOR_KIND:
        target.ranking_lease_count -= 1
    else:
        target.review_lease_count -= 1
    task.holds_slot = False
    refresh_open_flags(target, tree, settings)
