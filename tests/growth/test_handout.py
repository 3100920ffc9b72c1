"""Handing out tasks: who gets what, one at a time, and never past a limit."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.growth.schemas import Submission
from hedgerow.models import Message, ReviewState, Task, TaskState, TreeState
from tests.factories import make_user
from tests.growth.factories import (
    add_reply,
    make_tree,
    override_settings,
    reload,
    unique_text,
)


def test_a_volunteer_is_never_handed_their_own_prompt_to_review(db: Session) -> None:
    author = make_user(db)
    make_tree(db, author, state=TreeState.prompt_review)
    with pytest.raises(AppError) as error:
        service.request_task(db, author, language="en", kind="review_prompt")
    assert error.value.code == "no_task_available"
    assert error.value.status == 404

    reviewer = make_user(db)
    task = service.request_task(db, reviewer, language="en", kind="review_prompt")
    assert task.kind == "review_prompt"


def test_a_volunteer_never_replies_to_a_message_they_wrote(db: Session) -> None:
    author = make_user(db)
    make_tree(db, author)
    with pytest.raises(AppError) as error:
        service.request_task(db, author, language="en", kind="reply_assistant")
    assert error.value.code == "no_task_available"


def test_a_volunteer_never_ranks_a_sibling_set_containing_their_reply(db: Session) -> None:
    author, replier, other, ranker = (make_user(db) for _ in range(4))
    tree, root = make_tree(db, author, state=TreeState.growing, goal_size=3)
    add_reply(db, tree, root, replier)
    add_reply(db, tree, root, other)
    tree.state = TreeState.ranking
    root.open_for_ranking = True
    tree.open_ranking_sets = 1
    db.flush()

    for excluded in (author, replier, other):
        with pytest.raises(AppError):
            service.request_task(db, excluded, language="en", kind="rank_assistant_replies")
    task = service.request_task(db, ranker, language="en", kind="rank_assistant_replies")
    assert task.target_message_id == root.id
    assert sorted(r.id for r in task.replies) == sorted(
        m.id for m in db.scalars(select(Message).where(Message.parent_id == root.id))
    )


def test_a_done_or_skipped_item_is_never_handed_to_the_same_volunteer_again(
    db: Session,
) -> None:
    author = make_user(db)
    make_tree(db, author, state=TreeState.prompt_review)
    make_tree(db, author, state=TreeState.prompt_review)
    reviewer = make_user(db)
    labels = {"spam": 0, "lang_mismatch": 0, "quality": 0.5}

    first = service.request_task(db, reviewer, language="en", kind="review_prompt")
    service.submit_task(db, reviewer, first.id, Submission(labels=labels, mode="quick"))
    second = service.request_task(db, reviewer, language="en", kind="review_prompt")
    assert second.target_message_id != first.target_message_id
    service.skip_task(db, reviewer, second.id, "not for me")

    with pytest.raises(AppError) as error:
        service.request_task(db, reviewer, language="en", kind="review_prompt")
    assert error.value.code == "no_task_available"


def test_requesting_again_returns_the_task_already_held_with_its_draft(db: Session) -> None:
    author, volunteer = make_user(db), make_user(db)
    make_tree(db, author)
    make_tree(db, author)
    first = service.request_task(db, volunteer, language="en", kind="reply_assistant")
    service.save_draft(db, volunteer, first.id, {"text": "half a rep"})

    again = service.request_task(db, volunteer, language="en", kind="any")
    assert again.id == first.id
    assert again.resumed is True
    assert again.draft == {"text": "half a rep"}
    assert first.resumed is False
    leased = db.scalars(
        select(Task).where(Task.user_id == volunteer.id, Task.state == TaskState.leased)
    ).all()
    assert len(leased) == 1


def test_a_parent_never_exceeds_max_children_when_leases_are_counted(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author, max_children=3)
    volunteers = [make_user(db) for _ in range(4)]

    tasks = [
        service.request_task(db, v, language="en", kind="reply_assistant") for v in volunteers[:3]
    ]
    assert {t.target_message_id for t in tasks} == {root.id}
    assert reload(db, root).reply_lease_count == 3
    assert root.open_for_reply is False

    with pytest.raises(AppError) as error:
        service.request_task(db, volunteers[3], language="en", kind="reply_assistant")
    assert error.value.code == "no_task_available"

    # Submitting turns a lease into a child: still three slots in use.
    service.submit_task(db, volunteers[0], tasks[0].id, Submission(text=unique_text()))
    assert (reload(db, root).child_count, root.reply_lease_count) == (1, 2)
    with pytest.raises(AppError):
        service.request_task(db, volunteers[3], language="en", kind="reply_assistant")

    # A skip gives its slot back.
    service.skip_task(db, volunteers[1], tasks[1].id, "no idea")
    fourth = service.request_task(db, volunteers[3], language="en", kind="reply_assistant")
    assert fourth.target_message_id == root.id


def test_a_tree_is_never_leased_past_its_goal(db: Session) -> None:
    author = make_user(db)
    tree, _root = make_tree(db, author, goal_size=3, max_children=3)
    volunteers = [make_user(db) for _ in range(3)]
    service.request_task(db, volunteers[0], language="en", kind="reply_assistant")
    service.request_task(db, volunteers[1], language="en", kind="reply_assistant")
    # accepted 1 (the prompt) + 2 leases = the goal of 3.
    with pytest.raises(AppError):
        service.request_task(db, volunteers[2], language="en", kind="reply_assistant")
    assert reload(db, tree).reply_lease_count == 2


def test_replies_stay_shallower_than_max_depth(db: Session) -> None:
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author, max_depth=3)
    level1 = add_reply(db, tree, root, writer)
    level2 = add_reply(db, tree, level1, writer)
    # Depth 2 is the deepest allowed reply with max_depth 3: it takes no replies itself.
    assert (root.open_for_reply, level1.open_for_reply, level2.open_for_reply) == (
        True,
        True,
        False,
    )
    volunteer = make_user(db)
    task = service.request_task(db, volunteer, language="en", kind="reply_prompter")
    assert task.target_message_id == level1.id
    result = service.submit_task(db, volunteer, task.id, Submission(text=unique_text()))
    assert db.get(Message, result.message_id).depth == 2  # type: ignore[union-attr]


def test_trees_closest_to_completion_are_served_first(db: Session) -> None:
    author, writer = make_user(db), make_user(db)
    _young, _young_root = make_tree(db, author)
    older, older_root = make_tree(db, author)
    add_reply(db, older, older_root, writer)
    task = service.request_task(db, make_user(db), language="en", kind="reply_assistant")
    assert task.target_message_id == older_root.id


def test_any_kind_follows_the_weights_among_kinds_with_work(db: Session) -> None:
    author = make_user(db)
    _tree, _root = make_tree(db, author)  # offers a reply
    make_tree(db, author, state=TreeState.prompt_review)  # offers a review
    picks: dict[str, int] = {}
    rng = random.Random(7)
    for _ in range(40):
        volunteer = make_user(db)
        view = service.request_task(db, volunteer, language="en", rng=rng)
        picks[view.kind] = picks.get(view.kind, 0) + 1
        service.skip_task(db, volunteer, view.id)
    # review 5 : reply 2 : prompt 0.01; with this seed and 40 draws reviews dominate.
    assert picks.get("review_prompt", 0) > picks.get("reply_assistant", 0) > 0
    assert picks.get("write_prompt", 0) <= 1


def test_prompt_tasks_stop_when_enough_prompts_wait(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, waiting_prompts_per_language=2)
    author, volunteer = make_user(db), make_user(db)
    make_tree(db, author, state=TreeState.prompt_review)
    assert service.request_task(db, volunteer, language="en", kind="write_prompt").kind == (
        "write_prompt"
    )
    make_tree(db, author, state=TreeState.lottery_waiting)
    other = make_user(db)
    with pytest.raises(AppError) as error:
        service.request_task(db, other, language="en", kind="write_prompt")
    assert error.value.code == "no_task_available"
    assert service.available_task_counts(db, other, "en")["write_prompt"] == 0


def test_available_counts_exclude_the_users_own_work(db: Session) -> None:
    author = make_user(db)
    make_tree(db, author, state=TreeState.prompt_review)
    make_tree(db, author, state=TreeState.prompt_review)
    make_tree(db, author)
    assert service.available_task_counts(db, author, "en")["review_prompt"] == 0
    counts = service.available_task_counts(db, make_user(db), "en")
    assert counts["review_prompt"] == 2
    assert counts["reply_assistant"] == 1
    assert counts["rank_assistant_replies"] == 0
    assert "rank_prompter_replies" not in counts  # off by default


def test_an_expired_task_is_replaced_when_its_owner_asks_again(db: Session) -> None:
    author, volunteer = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    start = datetime.now(UTC)
    first = service.request_task(db, volunteer, language="en", kind="reply_assistant", now=start)
    later = start + timedelta(hours=2)
    second = service.request_task(db, volunteer, language="en", kind="reply_assistant", now=later)
    # The same item again, in the same task row, with a fresh lease and one slot held.
    assert second.id == first.id
    assert second.resumed is False
    assert second.lease_expires_at > later
    assert reload(db, root).reply_lease_count == 1
    assert reload(db, tree).reply_lease_count == 1


def test_unknown_language_or_kind_is_refused(db: Session) -> None:
    volunteer = make_user(db)
    with pytest.raises(AppError) as error:
        service.request_task(db, volunteer, language="xx")
    assert error.value.code == "invalid_language"
    with pytest.raises(AppError) as error:
        service.request_task(db, volunteer, language="en", kind="rank_prompter_replies")
    assert error.value.code == "invalid_kind"


def test_rejected_items_are_not_open_for_replies(db: Session) -> None:
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    rejected = add_reply(db, tree, root, writer, review_state=ReviewState.rejected)
    pending = add_reply(db, tree, root, writer, review_state=ReviewState.pending)
    assert not rejected.open_for_reply and not pending.open_for_reply
    assert pending.open_for_review and not rejected.open_for_review
    # Neither is an accepted assistant reply, so there is nothing to reply to as prompter.
    with pytest.raises(AppError) as error:
        service.request_task(db, make_user(db), language="en", kind="reply_prompter")
    assert error.value.code == "no_task_available"
