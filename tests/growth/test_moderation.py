"""Auto-moderation: red flags delete subtrees, skips halt trees, both audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.models import AuditEvent, Message, Reaction, ReviewState, TreeState
from tests.factories import make_user
from tests.growth.factories import (
    add_reply,
    count_rows,
    make_tree,
    make_trusted_viewer,
    override_settings,
    reload,
)


def flag(db: Session, message: Message, times: int) -> None:
    """Red flags that count: from trusted volunteers who were shown the message."""
    for _ in range(times):
        service.record_red_flag(db, make_trusted_viewer(db, message), message.id)


def test_red_flags_soft_delete_a_reply_with_its_subtree(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, red_flags_to_delete=3)
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    keep = add_reply(db, tree, root, writer)
    bad = add_reply(db, tree, root, writer)
    below = add_reply(db, tree, bad, writer)
    below_pending = add_reply(db, tree, below, writer, review_state=ReviewState.pending)
    assert (reload(db, tree).accepted_count, tree.pending_count) == (4, 1)

    flag(db, bad, 2)
    assert reload(db, bad).deleted is False
    flag(db, bad, 1)

    for message in (bad, below, below_pending):
        reload(db, message)
        assert message.deleted and message.deletion_id == bad.id
        assert not (message.open_for_review or message.open_for_reply)
    assert reload(db, keep).deleted is False
    assert (reload(db, tree).accepted_count, tree.pending_count) == (2, 0)
    assert tree.state == TreeState.growing
    assert (reload(db, root).child_count, root.accepted_child_count) == (1, 1)
    assert root.open_for_reply is True  # the slot came back
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "message.delete_subtree"))
    assert event is not None
    assert event.actor_id is None and event.target_id == bad.id
    assert event.after == {
        "deletion_id": bad.id,
        "message_ids": sorted([bad.id, below.id, below_pending.id]),
    }


def test_a_red_flag_counts_once_per_user(db: Session) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author)
    reply = add_reply(db, tree, root, make_user(db))
    flagger = make_trusted_viewer(db, reply)
    first = service.record_red_flag(db, flagger, reply.id)
    again = service.record_red_flag(db, flagger, reply.id)
    assert (first.newly_flagged, again.newly_flagged) == (True, False)
    assert reload(db, reply).red_flag_count == 1
    assert count_rows(db, Reaction) == 1


def test_nobody_flags_their_own_message(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author)
    with pytest.raises(AppError) as error:
        service.record_red_flag(db, author, root.id)
    assert error.value.code == "own_message"


def test_a_flagged_prompt_aborts_its_tree(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    override_settings(monkeypatch, red_flags_to_delete=2)
    author = make_user(db)
    tree, root = make_tree(db, author, state=TreeState.prompt_review)
    flag(db, root, 2)
    assert reload(db, root).deleted is True
    assert reload(db, tree).state == TreeState.aborted_low_grade
    assert tree.pending_count == 0


def test_deleting_a_reply_while_ranking_can_complete_the_tree(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, red_flags_to_delete=1)
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author, goal_size=3)
    first = add_reply(db, tree, root, writer)
    add_reply(db, tree, root, writer)
    from hedgerow.growth.tree_state import start_ranking

    start_ranking(db, tree, now=tree.created_at)
    assert (tree.state, tree.open_ranking_sets) == (TreeState.ranking, 1)
    flag(db, first, 1)
    # One accepted reply is left: no sibling set to rank, so the tree is done.
    assert reload(db, tree).state == TreeState.ready_for_export


def test_enough_skips_halt_the_tree_and_are_audited(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, skips_to_halt=3)
    author = make_user(db)
    tree, root = make_tree(db, author, state=TreeState.prompt_review)
    for _ in range(2):
        volunteer = make_user(db)
        task = service.request_task(db, volunteer, language="en", kind="review_prompt")
        service.skip_task(db, volunteer, task.id, "cannot judge")
    assert reload(db, tree).state == TreeState.prompt_review
    volunteer = make_user(db)
    task = service.request_task(db, volunteer, language="en", kind="review_prompt")
    service.skip_task(db, volunteer, task.id, "cannot judge")

    assert (reload(db, tree).state, tree.halted_from_state) == (
        TreeState.halted,
        TreeState.prompt_review,
    )
    assert reload(db, root).skip_count == 3
    assert root.open_for_review is False
    assert root.review_lease_count == 0
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "tree.halt"))
    assert event is not None and event.actor_id is None and event.target_id == tree.id


def test_submitting_into_a_halted_tree_is_refused_and_changes_nothing(
    db: Session,
) -> None:
    author, volunteer = make_user(db), make_user(db)
    tree, _root = make_tree(db, author)
    task = service.request_task(db, volunteer, language="en", kind="reply_assistant")
    from hedgerow.growth.tree_state import halt_tree

    halt_tree(db, tree, reason="moderator", now=tree.created_at)
    messages = count_rows(db, Message)
    with pytest.raises(AppError) as error:
        service.submit_task(
            db, volunteer, task.id, service.Submission(text="too late, it is halted")
        )
    assert (error.value.code, error.value.status) == ("tree_not_accepting", 409)
    assert count_rows(db, Message) == messages
    # The volunteer can still give the task back and move on.
    service.skip_task(db, volunteer, task.id, "halted")
    assert reload(db, tree).reply_lease_count == 0
