"""The tree state machine.

prompt_review -> lottery_waiting -> growing -> ranking -> ready_for_export, with
aborted_low_grade (prompt rejected or deleted) and halted (resumable) on the side. Every
transition clears or sets the open-work flags in the same transaction, and a tree leaving
``growing`` frees a growing slot, so the lottery draws in that transaction too.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy.orm import Session

from hedgerow.audit import record_audit
from hedgerow.config import get_settings
from hedgerow.growth.consensus import ranked_pairs
from hedgerow.growth.flags import refresh_open_flags
from hedgerow.growth.lottery import draw_lottery
from hedgerow.growth.queries import (
    accepted_children,
    author_record,
    clear_open_work,
    close_replies,
    current_ranking_orders,
    current_review_votes,
    lock_messages,
    open_sibling_sets_for_ranking,
    record_decision,
)
from hedgerow.growth.redundancy import (
    consensus_confidence,
    reliability,
    review_decision,
    sibling_set_settles,
    votes_to_accept,
)
from hedgerow.models import (
    Message,
    MessageRole,
    ReviewState,
    Tree,
    TreeState,
)

FINISHED_STATES = frozenset({TreeState.ready_for_export, TreeState.aborted_low_grade})


def _leave_state(
    db: Session, tree: Tree, new_state: TreeState, rng: random.Random | None, now: datetime
) -> None:
    was_growing = tree.state == TreeState.growing
    tree.state = new_state
    if was_growing:
        # A growing slot is free now: fill it in this transaction.
        db.flush()
        draw_lottery(db, tree.language, rng=rng, now=now)


def maybe_decide_review(
    db: Session,
    message: Message,
    parent: Message | None,
    tree: Tree,
    *,
    now: datetime,
    rng: random.Random | None = None,
) -> bool:
    """After a review: accept or reject `message` if the rules say it is decided (tree and
    parent are locked); returns whether it was. The reviewers' and the author's records
    learn from the decision."""
    db.flush()
    settings = get_settings()
    votes = current_review_votes(db, message.id)
    reviews = [
        (
            values,
            reliability(
                settled, agreed, settings.reviewer_prior_reliability, settings.reviewer_prior_weight
            ),
        )
        for values, _user_id, settled, agreed in votes
    ]
    decided, accepted_before = author_record(db, message.author_id)
    prior = reliability(
        decided, accepted_before, settings.author_prior_acceptance, settings.author_prior_weight
    )
    decision = review_decision(tree, reviews, prior, given=message.review_count)
    if decision is None:
        return False
    agreements = [
        (user_id, votes_to_accept(values) == decision.accepted)
        for values, user_id, _settled, _agreed in votes
    ]
    record_decision(db, agreements, message.author_id, decision.accepted)
    accepted = decision.accepted
    message.review_score = decision.score
    message.review_confidence = decision.confidence
    message.reviewed_at = now
    message.review_state = ReviewState.accepted if accepted else ReviewState.rejected
    tree.pending_count -= 1
    if accepted:
        tree.accepted_count += 1
    _apply_decision(db, message, parent, tree, accepted, now=now, rng=rng)
    return True


def _apply_decision(
    db: Session,
    message: Message,
    parent: Message | None,
    tree: Tree,
    accepted: bool,
    *,
    now: datetime,
    rng: random.Random | None,
) -> None:
    if parent is None:  # the prompt
        refresh_open_flags(message, tree)
        if accepted:
            tree.state = TreeState.lottery_waiting
            tree.entered_lottery_at = now
            # A growing slot may be free now (nothing waited to fill it): draw at once rather
            # than leave it empty until the periodic top-up. The draw is among all waiting
            # authors, so this prompt gets no head start.
            db.flush()
            draw_lottery(db, tree.language, rng=rng, now=now)
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
    tree.open_ranking_sets = open_sibling_sets_for_ranking(db, tree.id, ranked_parent_roles)
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


def maybe_settle_sibling_set(db: Session, parent: Message, tree: Tree, *, now: datetime) -> bool:
    """After a ranking: measure how sure the set's consensus is and, if the rules say it is
    settled, finish the set; returns whether it was."""
    orders = current_ranking_orders(db, parent.id)
    if orders:
        candidates = [child.id for child in accepted_children(db, parent.id)]
        parent.ranking_confidence = consensus_confidence(ranked_pairs(candidates, orders), orders)
    if not sibling_set_settles(tree, parent.ranking_count, len(orders), parent.ranking_confidence):
        return False
    finish_sibling_set(db, parent, tree, now=now)
    return True


def finish_sibling_set(db: Session, parent: Message, tree: Tree, *, now: datetime) -> None:
    """The set takes no more rankings: store its consensus; the last set completes the
    tree."""
    store_consensus(db, parent)
    parent.ranking_settled = True
    refresh_open_flags(parent, tree)
    tree.open_ranking_sets = max(tree.open_ranking_sets - 1, 0)
    if tree.open_ranking_sets == 0 and tree.state == TreeState.ranking:
        complete_tree(db, tree, now=now)


def complete_tree(db: Session, tree: Tree, *, now: datetime) -> None:
    tree.state = TreeState.ready_for_export
    tree.completed_at = now
    db.flush()
    clear_open_work(db, tree.id)


def abort_tree(
    db: Session,
    tree: Tree,
    *,
    now: datetime,
    rng: random.Random | None = None,
    even_if_complete: bool = False,
) -> None:
    """End a tree as aborted_low_grade. A complete tree stays complete unless
    `even_if_complete` (its prompt was deleted: there is nothing left to export)."""
    if tree.state == TreeState.aborted_low_grade:
        return
    if tree.state == TreeState.ready_for_export and not even_if_complete:
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
    record_audit(
        db,
        actor_id=actor_id,
        action="tree.halt",
        target_type="tree",
        target_id=tree.id,
        before={"state": before},
        after={"state": TreeState.halted.value},
        reason=reason,
    )
    return True
