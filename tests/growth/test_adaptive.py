"""Adaptive redundancy and the tree shape through the real service: reviews decided as soon
as they agree, more work only where volunteers disagree, reliability learned from decisions,
sibling sets settled by agreeing rankings, lonely sibling sets preferred."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.growth.flags import refresh_open_flags
from hedgerow.growth.schemas import Submission
from hedgerow.growth.tree_state import maybe_start_ranking
from hedgerow.models import (
    GrowthPolicy,
    Message,
    ReviewState,
    Tree,
    TreeState,
    User,
    VolunteerReliability,
)
from tests.factories import make_user
from tests.growth.factories import add_reply, make_tree, reload

ADAPTIVE = {
    "growth_policy": GrowthPolicy.adaptive,
    "reviews_per_message": 4,
    "min_reviews_per_message": 2,
    "rankings_per_sibling_set": 4,
    "min_rankings_per_sibling_set": 2,
}
GOOD = {"spam": 0.0, "lang_mismatch": 0.0, "quality": 0.75}
SPAM = {"spam": 1.0, "lang_mismatch": 0.0, "quality": 0.0}


def _review(db: Session, reviewer: User, labels: dict[str, float]) -> int:
    task = service.request_task(db, reviewer, language="en", kind="review_prompt")
    service.submit_task(db, reviewer, task.id, Submission(labels=labels, mode="quick"))
    assert task.target_message_id is not None
    return task.target_message_id


def test_two_agreeing_reviews_decide_a_message_and_teach_reliability(db: Session) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author, state=TreeState.prompt_review, **ADAPTIVE)
    first, second, third = (make_user(db) for _ in range(3))
    _review(db, first, GOOD)
    assert reload(db, root).review_state == ReviewState.pending
    _review(db, second, GOOD)
    root = reload(db, root)
    assert root.review_state == ReviewState.accepted
    assert root.review_count == 2
    # The author's prior (0.85, no record yet) and two votes at the prior reliability 0.8.
    odds = 0.85 / 0.15 * 4 * 4
    assert root.review_confidence == pytest.approx(odds / (odds + 1))
    assert reload(db, tree).state == TreeState.growing  # accepted, and drawn: slots are free
    with pytest.raises(AppError) as nothing_left:
        service.request_task(db, third, language="en", kind="review_prompt")
    assert nothing_left.value.code == "no_task_available"
    rows = {r.user_id: r for r in db.scalars(select(VolunteerReliability))}
    assert [(rows[u.id].reviews_settled, rows[u.id].reviews_agreed) for u in (first, second)] == [
        (1, 1),
        (1, 1),
    ]
    assert (rows[author.id].messages_decided, rows[author.id].messages_accepted) == (1, 1)


def test_disagreement_asks_for_one_more_review_at_a_time(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author, state=TreeState.prompt_review, **ADAPTIVE)
    reviewers = [make_user(db) for _ in range(5)]
    _review(db, reviewers[0], GOOD)
    _review(db, reviewers[1], SPAM)
    root = reload(db, root)
    assert root.review_state == ReviewState.pending and root.open_for_review
    # One more review is wanted: a lease on it closes the message to everyone else.
    service.request_task(db, reviewers[2], language="en", kind="review_prompt")
    with pytest.raises(AppError):
        service.request_task(db, reviewers[3], language="en", kind="review_prompt")


def test_a_trusted_reviewer_outweighs_a_doubtful_one(db: Session) -> None:
    """Two reviews that disagree are decided at once when one reviewer has agreed with the
    decisions nearly always and the other barely more than chance."""
    author = make_user(db)
    _tree, root = make_tree(db, author, state=TreeState.prompt_review, **ADAPTIVE)
    trusted, doubtful = make_user(db), make_user(db)
    db.add_all(
        [
            VolunteerReliability(user_id=trusted.id, reviews_settled=200, reviews_agreed=196),
            VolunteerReliability(user_id=doubtful.id, reviews_settled=200, reviews_agreed=104),
        ]
    )
    db.flush()
    _review(db, doubtful, SPAM)
    _review(db, trusted, GOOD)
    root = reload(db, root)
    assert root.review_state == ReviewState.accepted
    assert root.review_confidence is not None and root.review_confidence > 0.95
    rows = {
        r.user_id: (r.reviews_settled, r.reviews_agreed)
        for r in db.scalars(select(VolunteerReliability))
    }
    assert rows[doubtful.id] == (201, 104) and rows[trusted.id] == (201, 197)


def test_equally_trusted_reviewers_who_disagree_need_a_third(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author, state=TreeState.prompt_review, **ADAPTIVE)
    first, second, third = (make_user(db) for _ in range(3))
    _review(db, first, SPAM)
    _review(db, second, GOOD)
    assert reload(db, root).review_state == ReviewState.pending  # only the prior: 0.85
    _review(db, third, GOOD)
    root = reload(db, root)
    assert root.review_state == ReviewState.accepted and root.review_count == 3


def test_a_spammers_record_lets_one_review_reject_their_next_message(db: Session) -> None:
    spammer = make_user(db)
    db.add(VolunteerReliability(user_id=spammer.id, messages_decided=12, messages_accepted=1))
    db.flush()
    _tree, root = make_tree(
        db, spammer, state=TreeState.prompt_review, **(ADAPTIVE | {"min_reviews_per_message": 1})
    )
    _review(db, make_user(db), SPAM)
    root = reload(db, root)
    assert root.review_state == ReviewState.rejected and root.review_count == 1


def _ranking_tree(db: Session, author: User, replies: int) -> tuple[Tree, Message, list[User]]:
    tree, root = make_tree(db, author, goal_size=1 + replies, **ADAPTIVE)
    writers = [make_user(db) for _ in range(replies)]
    for writer in writers:
        add_reply(db, tree, root, writer)
    maybe_start_ranking(db, tree, now=reload(db, tree).created_at)
    assert reload(db, tree).state == TreeState.ranking
    return tree, root, writers


def _rank(db: Session, ranker: User, best_first: list[int]) -> None:
    task = service.request_task(db, ranker, language="en", kind="rank_assistant_replies")
    service.submit_task(db, ranker, task.id, Submission(ranking=best_first))


def test_two_agreeing_rankings_settle_a_sibling_set(db: Session) -> None:
    author = make_user(db)
    tree, root, _writers = _ranking_tree(db, author, 2)
    children = sorted(m.id for m in db.scalars(select(Message).where(Message.parent_id == root.id)))
    order = [children[1], children[0]]
    _rank(db, make_user(db), order)
    assert not reload(db, root).ranking_settled
    _rank(db, make_user(db), order)
    root = reload(db, root)
    assert root.ranking_settled and root.ranking_count == 2
    assert root.ranking_confidence == pytest.approx(0.875)
    assert reload(db, tree).state == TreeState.ready_for_export
    ranks = {
        m.id: m.consensus_rank
        for m in db.scalars(select(Message).where(Message.parent_id == root.id))
    }
    assert ranks == {children[1]: 0, children[0]: 1}


def test_contested_rankings_ask_for_more_up_to_the_maximum(db: Session) -> None:
    author = make_user(db)
    tree, root, _writers = _ranking_tree(db, author, 2)
    a, b = sorted(m.id for m in db.scalars(select(Message).where(Message.parent_id == root.id)))
    _rank(db, make_user(db), [a, b])
    _rank(db, make_user(db), [b, a])
    assert not reload(db, root).ranking_settled and reload(db, root).open_for_ranking
    _rank(db, make_user(db), [a, b])  # 2-1: 0.6875 < 0.8
    assert not reload(db, root).ranking_settled
    _rank(db, make_user(db), [b, a])  # the maximum of 4: settled whatever the confidence
    root = reload(db, root)
    assert root.ranking_settled and root.ranking_count == 4
    assert not root.open_for_ranking
    assert reload(db, tree).state == TreeState.ready_for_export


def test_an_assistant_reply_takes_only_its_prompter_replies(db: Session) -> None:
    author, assistant, prompter, other = (make_user(db) for _ in range(4))
    tree, root = make_tree(db, author, prompter_replies_per_assistant=1)
    reply = add_reply(db, tree, root, assistant)
    assert reload(db, reply).open_for_reply
    add_reply(db, tree, reply, prompter)
    assert not reload(db, reply).open_for_reply
    with pytest.raises(AppError):
        service.request_task(db, other, language="en", kind="reply_prompter")


@pytest.mark.parametrize(("preference", "lonely_wins"), [(1.0, True), (0.0, False)])
def test_reply_tasks_prefer_a_sibling_set_of_one(
    db: Session, preference: float, lonely_wins: bool
) -> None:
    """The tree closest to completion comes first, unless a lonely sibling set elsewhere
    is preferred (with the tree's probability)."""
    author, writer, volunteer = (make_user(db) for _ in range(3))
    nearly_done, nearly_root = make_tree(
        db, author, goal_size=15, lonely_sibling_preference=preference
    )
    nearly_done.accepted_count = 10  # the completion-first order would pick this tree
    lonely_tree, lonely_root = make_tree(db, author, lonely_sibling_preference=preference)
    add_reply(db, lonely_tree, lonely_root, writer)
    db.flush()
    task = service.request_task(
        db, volunteer, language="en", kind="reply_assistant", rng=random.Random(1)
    )
    expected = lonely_root.id if lonely_wins else nearly_root.id
    assert task.target_message_id == expected


def test_a_volunteers_record_and_its_estimates_are_public(db: Session) -> None:
    seasoned, newcomer = make_user(db), make_user(db)
    db.add(
        VolunteerReliability(
            user_id=seasoned.id,
            reviews_settled=96,
            reviews_agreed=92,
            messages_decided=16,
            messages_accepted=8,
        )
    )
    db.flush()
    record = service.volunteer_record(db, seasoned.id)
    assert record.review_reliability == pytest.approx((92 + 0.8 * 4) / 100)
    assert record.author_acceptance == pytest.approx((8 + 0.85 * 4) / 20)
    fresh = service.volunteer_record(db, newcomer.id)
    assert (fresh.reviews_settled, fresh.review_reliability) == (0, pytest.approx(0.8))
    estimate = service.review_reliability_expression()
    ordered = db.execute(
        select(User.id, estimate)
        .outerjoin(VolunteerReliability, VolunteerReliability.user_id == User.id)
        .where(User.id.in_([seasoned.id, newcomer.id]))
        .order_by(estimate.desc())
    ).all()
    assert [row[0] for row in ordered] == [seasoned.id, newcomer.id]
    assert ordered[0][1] == pytest.approx(record.review_reliability)


def test_the_ranking_hand_out_prefers_the_least_settled_sibling_set(db: Session) -> None:
    """Among open sets, the one whose consensus is least sure comes first (a set nobody
    ranked yet counts as the least sure of all)."""
    author = make_user(db)
    sure_tree, sure_root, _ = _ranking_tree(db, author, 2)
    unsure_tree, unsure_root, _ = _ranking_tree(db, author, 2)
    fresh_tree, fresh_root, _ = _ranking_tree(db, author, 2)
    # One ranking slot left on each: a lease on the fresh set, three contested rankings on
    # the unsure one (the maximum is four), one ranking on the sure one (the minimum is two).
    fresh_root.ranking_lease_count, fresh_root.ranking_confidence = 1, None
    unsure_root.ranking_count, unsure_root.ranking_confidence = 3, 0.6875
    sure_root.ranking_count, sure_root.ranking_confidence = 1, 0.75
    for tree, root in (
        (sure_tree, sure_root),
        (unsure_tree, unsure_root),
        (fresh_tree, fresh_root),
    ):
        refresh_open_flags(root, tree)
        assert root.open_for_ranking
    db.flush()
    handed = []
    for _ in range(3):
        ranker = make_user(db)
        task = service.request_task(db, ranker, language="en", kind="rank_assistant_replies")
        handed.append(task.target_message_id)
    assert handed == [fresh_root.id, unsure_root.id, sure_root.id]


@pytest.mark.parametrize("policy", [GrowthPolicy.fixed, GrowthPolicy.adaptive])
def test_a_message_edited_during_review_is_still_decided_at_the_maximum(
    db: Session, policy: GrowthPolicy
) -> None:
    """Reviews of the old text stop counting as evidence but still count toward the
    maximum, so the message is decided on the reviews of its new text, never stuck open."""
    author = make_user(db)
    parameters = ADAPTIVE | {"growth_policy": policy, "reviews_per_message": 3}
    if policy == GrowthPolicy.fixed:
        parameters |= {"min_reviews_per_message": 3}
    _tree, root = make_tree(db, author, state=TreeState.prompt_review, **parameters)
    _review(db, make_user(db), GOOD)
    _review(db, make_user(db), SPAM)
    service.edit_text(db, root.id, "Why do hedgehogs hibernate? (edited)")
    assert reload(db, root).review_state == ReviewState.pending
    _review(db, make_user(db), GOOD)
    root = reload(db, root)
    assert root.review_count == 3
    assert root.review_state == ReviewState.accepted  # on the one review of the new text
