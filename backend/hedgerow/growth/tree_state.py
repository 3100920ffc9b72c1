"""The tree state machine.

prompt_review -> lottery_waiting -> growing -> ranking -> ready_for_export, with
aborted_low_grade (prompt rejected or deleted) and halted (resumable) on the side. Every
transition clears or sets the open-work flags in the same transaction, and a tree leaving
``growing`` frees a growing slot, so the lottery draws in that transaction too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.growth.consensus import ranked_pairs
from hedgerow.growth.flags import refresh_open_flags
from hedgerow.growth.lottery import draw_lottery
from hedgerow.growth.queries import (
    accepted_children,
    clear_open_work,
    close_replies,
    current_label_values,
    current_ranking_orders,
    lock_messages,
    open_sibling_sets_for_ranking,
)
from hedgerow.models import (
    AuditEvent,
    Message,
    MessageRole,
    ReviewState,
    Tree,
    TreeState,
)

# Float arithmetic must not reject a message sitting exactly on the threshold
# (1 - 0.2 - 0.2 is 0.6000000000000001, and 1 - 0.4 is 0.6).
SCORE_TOLERANCE = 1e-9
FINISHED_STATES = frozenset({TreeState.ready_for_export, TreeState.aborted_low_grade})


def acceptance_score(label_values: Sequence[dict[str, Any]]) -> float:
    """1 - mean(spam) - mean(lang_mismatch) over the reviews of one message."""
    if not label_values:
        return 0.0
    spam = fmean(float(values.get("spam", 0.0)) for values in label_values)
    mismatch = fmean(float(values.get("lang_mismatch", 0.0)) for values in label_values)
    return 1.0 - spam - mismatch


def is_accepted(score: float, threshold: float) -> bool:
    return score >= threshold - SCORE_TOLERANCE


def _leave_state(
    db: Session, tree: Tree, new_state: TreeState, rng: random.Random | None, now: datetime
) -> None:
    was_growing = tree.state == TreeState.growing
    tree.state = new_state
    if was_growing:
        # A growing slot is free now: fill it in this transaction.
        db.flush()
        draw_lottery(db, tree.language, rng=rng, now=now)


def decide_review(
    db: Session,
    message: Message,
    parent: Message | None,
    tree: Tree,
    *,
    now: datetime,
    rng: random.Random | None = None,
) -> None:
    """After the last review: accept or reject `message` (tree and parent are locked)."""
    db.flush()
    values = current_label_values(db, message.id)
    score = acceptance_score(values)
    accepted = is_accepted(score, tree.acceptance_threshold)
    message.review_score = score
    message.reviewed_at = now
    message.review_state = ReviewState.accepted if accepted else ReviewState.rejected
    tree.pending_count -= 1
    if accepted:
        tree.accepted_count += 1

    if parent is None:  # the prompt
        refresh_open_flags(message, tree)
        if accepted:
            tree.state = TreeState.lottery_waiting
            tree.entered_lottery_at = now
        else:
            abort_tree(db, tree, now=now, rng=rng)
        return

    if accepted:
        parent.accepted_child_count += 1
    else:
        # A rejected reply leaves the tree: its child slot goes back to the parent.
        parent.child_count -= 1
    refresh_open_flags(message, tree)
    refresh_open_flags(parent, tree)
    maybe_start_ranking(db, tree, now=now, rng=rng)


def maybe_start_ranking(
    db: Session, tree: Tree, *, now: datetime, rng: random.Random | None = None
) -> None:
    """Growing -> ranking once the goal is reached and nothing is under review or leased."""
    if (
        tree.state == TreeState.growing
        and tree.accepted_count >= tree.goal_size
        and tree.pending_count == 0
        and tree.reply_lease_count == 0
    ):
        start_ranking(db, tree, now=now, rng=rng)


def start_ranking(
    db: Session, tree: Tree, *, now: datetime, rng: random.Random | None = None
) -> None:
    settings = get_settings()
    db.flush()
    close_replies(db, tree.id)
    ranked_parent_roles = [MessageRole.prompter]
    if settings.rank_prompter_replies:
        ranked_parent_roles.append(MessageRole.assistant)
    tree.open_ranking_sets = open_sibling_sets_for_ranking(
        db, tree.id, ranked_parent_roles, tree.rankings_per_sibling_set
    )
    _leave_state(db, tree, TreeState.ranking, rng, now)
    if tree.open_ranking_sets == 0:
        complete_tree(db, tree, now=now)


def store_consensus(db: Session, parent: Message) -> list[int]:
    """Rank the sibling set by ranked pairs over every ranker's order; store 0 = best."""
    children = accepted_children(db, parent.id)
    orders = current_ranking_orders(db, parent.id)
    candidate_ids = [child.id for child in children]
    consensus = ranked_pairs(candidate_ids, orders) if orders else []
    lock_messages(db, candidate_ids)
    rank_of = {message_id: rank for rank, message_id in enumerate(consensus)}
    for child in children:
        child.consensus_rank = rank_of.get(child.id)
    return consensus


def finish_sibling_set(db: Session, parent: Message, tree: Tree, *, now: datetime) -> None:
    """The set's last ranking is in: store its consensus; the last set completes the tree."""
    store_consensus(db, parent)
    tree.open_ranking_sets = max(tree.open_ranking_sets - 1, 0)
    if tree.open_ranking_sets == 0 and tree.state == TreeState.ranking:
        complete_tree(db, tree, now=now)


def complete_tree(db: Session, tree: Tree, *, now: datetime) -> None:
    tree.state = TreeState.ready_for_export
    tree.completed_at = now
    db.flush()
    clear_open_work(db, tree.id)


def abort_tree(db: Session, tree: Tree, *, now: datetime, rng: random.Random | None = None) -> None:
    if tree.state in FINISHED_STATES:
        return
    _leave_state(db, tree, TreeState.aborted_low_grade, rng, now)
    tree.completed_at = now
    db.flush()
    clear_open_work(db, tree.id)


def halt_tree(
    db: Session,
    tree: Tree,
    *,
    reason: str,
    now: datetime,
    actor_id: int | None = None,
    rng: random.Random | None = None,
) -> bool:
    """Stop all work on a tree, remembering where it was so a moderator can resume it."""
    if tree.state in FINISHED_STATES or tree.state == TreeState.halted:
        return False
    before = tree.state
    tree.halted_from_state = tree.state
    _leave_state(db, tree, TreeState.halted, rng, now)
    db.flush()
    clear_open_work(db, tree.id)
    db.add(
        AuditEvent(
            actor_id=actor_id,
            action="tree.halt",
            target_type="tree",
            target_id=tree.id,
            before={"state": before},
            after={"state": TreeState.halted.value},
            reason=reason,
        )
    )
    return True
