"""Reviews decide a message's fate, and the tree moves through its states."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.growth import service
from hedgerow.growth.labels import GUIDELINE_VERSION
from hedgerow.growth.redundancy import acceptance_score
from hedgerow.growth.schemas import Submission
from hedgerow.models import Label, Message, ReviewState, Tree, TreeState, User
from tests.factories import make_user
from tests.growth.factories import add_reply, make_tree, override_settings, reload


def review(db: Session, reviewer: User, kind: str, *, spam: float = 0, mismatch: float = 0):
    task = service.request_task(db, reviewer, language="en", kind=kind)
    service.submit_task(
        db,
        reviewer,
        task.id,
        Submission(labels={"spam": spam, "lang_mismatch": mismatch, "quality": 0.5}, mode="quick"),
    )
    return task


@pytest.mark.parametrize(
    ("threshold", "spam_votes", "expected"),
    [
        # 4 reviews, 2 say spam: score 1 - 0.5 = 0.5.
        (0.5, 2, ReviewState.accepted),  # exactly at the threshold: accepted
        (0.51, 2, ReviewState.rejected),  # just above it: rejected
        (0.75, 1, ReviewState.accepted),  # 1 - 0.25 = 0.75, exactly at it
    ],
)
def test_acceptance_is_decided_at_the_threshold_inclusive(
    db: Session, threshold: float, spam_votes: int, expected: ReviewState
) -> None:
    author = make_user(db)
    _tree, root = make_tree(
        db,
        author,
        state=TreeState.prompt_review,
        reviews_per_message=4,
        acceptance_threshold=threshold,
    )
    for vote in range(4):
        review(db, make_user(db), "review_prompt", spam=1 if vote < spam_votes else 0)
    assert reload(db, root).review_state == expected
    assert root.review_score == pytest.approx(1 - spam_votes / 4)


def test_the_score_sums_spam_and_language_mismatch_means() -> None:
    values = [
        {"spam": 1.0, "lang_mismatch": 0.0},
        {"spam": 0.0, "lang_mismatch": 1.0},
        {"spam": 0.0, "lang_mismatch": 0.0},
        {"spam": 0.0, "lang_mismatch": 0.0},
        {"spam": 0.0, "lang_mismatch": 0.0},
    ]
    # 1 - 0.2 - 0.2 is 0.6000000000000001 in floating point; the boundary still holds.
    assert acceptance_score(values) == pytest.approx(0.6)


def test_no_decision_before_the_last_review(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author, state=TreeState.prompt_review)
    review(db, make_user(db), "review_prompt")
    review(db, make_user(db), "review_prompt")
    assert reload(db, root).review_state == ReviewState.pending
    assert root.review_count == 2
    assert root.open_for_review is True


def test_an_accepted_prompt_enters_the_lottery(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=0)  # no slot: it waits
    author = make_user(db)
    tree, root = make_tree(db, author, state=TreeState.prompt_review)
    for _ in range(3):
        review(db, make_user(db), "review_prompt")
    reload(db, tree)
    assert tree.state == TreeState.lottery_waiting
    assert tree.entered_lottery_at is not None
    assert (tree.accepted_count, tree.pending_count) == (1, 0)
    assert reload(db, root).open_for_review is False
    labels = db.scalars(select(Label).where(Label.message_id == root.id)).all()
    assert {label.guideline_version for label in labels} == {GUIDELINE_VERSION}


def test_an_accepted_prompt_fills_a_free_growing_slot_at_once(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slot freed while nothing waited is filled by the next accepted prompt, not left
    empty until the periodic top-up; the draw is still among every waiting author."""
    override_settings(monkeypatch, growing_trees_per_language=1)
    waiting, _ = make_tree(db, make_user(db), state=TreeState.lottery_waiting)
    tree, _root = make_tree(db, make_user(db), state=TreeState.prompt_review)
    for _ in range(3):
        review(db, make_user(db), "review_prompt")
    states = {reload(db, waiting).state, reload(db, tree).state}
    assert states == {TreeState.growing, TreeState.lottery_waiting}
    drawn = next(t for t in (waiting, tree) if t.state == TreeState.growing)
    assert drawn.drawn_at is not None


def test_a_rejected_prompt_aborts_its_tree(db: Session) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author, state=TreeState.prompt_review)
    for _ in range(3):
        review(db, make_user(db), "review_prompt", spam=1)
    assert reload(db, tree).state == TreeState.aborted_low_grade
    assert reload(db, root).review_state == ReviewState.rejected
    assert not (root.open_for_review or root.open_for_reply or root.open_for_ranking)


def test_an_accepted_reply_opens_for_replies_and_counts_towards_the_goal(db: Session) -> None:
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    reply = add_reply(db, tree, root, writer, review_state=ReviewState.pending)
    for _ in range(3):
        review(db, make_user(db), "review_assistant_reply")
    assert reload(db, reply).review_state == ReviewState.accepted
    assert reply.open_for_reply is True
    assert (reload(db, tree).accepted_count, tree.pending_count) == (2, 0)
    assert reload(db, root).accepted_child_count == 1


def test_a_rejected_reply_gives_its_child_slot_back(db: Session) -> None:
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author, max_children=1)
    reply = add_reply(db, tree, root, writer, review_state=ReviewState.pending)
    assert reload(db, root).open_for_reply is False  # the only slot is taken
    for _ in range(3):
        review(db, make_user(db), "review_assistant_reply", mismatch=1)
    assert reload(db, reply).review_state == ReviewState.rejected
    assert reply.open_for_reply is False
    assert (reload(db, root).child_count, root.open_for_reply) == (0, True)
    assert (reload(db, tree).accepted_count, tree.pending_count) == (1, 0)


def test_reviews_never_exceed_the_configured_number_even_with_leases(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author, state=TreeState.prompt_review, reviews_per_message=2)
    first = service.request_task(db, make_user(db), language="en", kind="review_prompt")
    second = service.request_task(db, make_user(db), language="en", kind="review_prompt")
    assert first.target_message_id == second.target_message_id == root.id
    assert reload(db, root).open_for_review is False
    with pytest.raises(Exception) as error:
        service.request_task(db, make_user(db), language="en", kind="review_prompt")
    assert getattr(error.value, "code", None) == "no_task_available"


def test_a_small_tree_grows_ranks_and_becomes_ready_for_export(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole life of a tree through the service: reviews, lottery, replies, rankings."""
    override_settings(
        monkeypatch,
        tree_goal_size=3,
        growth_policy="fixed",
        reviews_per_message=1,
        rankings_per_sibling_set=2,
        growing_trees_per_language=1,
    )
    rng = random.Random(3)
    author = make_user(db)
    prompt_task = service.request_task(db, author, language="en", kind="write_prompt")
    created = service.submit_task(
        db, author, prompt_task.id, Submission(text="Why do hedgerows matter?", category="open_qa")
    )
    tree = db.get(Tree, created.tree_id)
    root = db.get(Message, created.message_id)
    assert tree is not None and root is not None
    assert (tree.state, tree.goal_size, root.open_for_review) == (
        TreeState.prompt_review,
        3,
        True,
    )

    # The one growing slot is free, so the accepted prompt is drawn in the same transaction.
    review(db, make_user(db), "review_prompt")
    assert reload(db, tree).state == TreeState.growing
    assert service.top_up_lotteries(db, rng=rng) == {}

    for _ in range(2):
        writer = make_user(db)
        task = service.request_task(db, writer, language="en", kind="reply_assistant")
        service.submit_task(db, writer, task.id, Submission(text=f"Reply by {writer.username}"))
    for _ in range(2):
        review(db, make_user(db), "review_assistant_reply")
    reload(db, tree)
    assert tree.state == TreeState.ranking
    assert (tree.accepted_count, tree.open_ranking_sets) == (3, 1)

    for _ in range(2):
        ranker = make_user(db)
        task = service.request_task(db, ranker, language="en", kind="rank_assistant_replies")
        order = [r.id for r in task.replies]
        order.sort()
        service.submit_task(db, ranker, task.id, Submission(ranking=order))
    reload(db, tree)
    assert tree.state == TreeState.ready_for_export
    assert tree.completed_at is not None
    children = db.scalars(
        select(Message).where(Message.parent_id == root.id).order_by(Message.id)
    ).all()
    assert [c.consensus_rank for c in children] == [0, 1]
    assert not any(
        m.open_for_review or m.open_for_reply or m.open_for_ranking
        for m in db.scalars(select(Message).where(Message.tree_id == tree.id))
    )
