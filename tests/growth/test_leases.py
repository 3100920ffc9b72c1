"""Leases: late submissions, idempotent submissions, drafts and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.growth.schemas import Submission
from hedgerow.models import Message, Task, TaskState
from tests.factories import make_user
from tests.growth.factories import count_rows, make_tree, reload, unique_text

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LATER = START + timedelta(hours=3)


def test_expire_leases_frees_the_slots_of_abandoned_tasks(db: Session) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author, max_children=1)
    volunteer = make_user(db)
    task = service.request_task(db, volunteer, language="en", kind="reply_assistant", now=START)
    assert reload(db, root).open_for_reply is False

    assert service.expire_leases(db, START + timedelta(minutes=59)) == 0
    assert service.expire_leases(db, LATER) == 1
    expired = db.get(Task, task.id)
    assert expired is not None and (expired.state, expired.holds_slot) == (
        TaskState.expired,
        False,
    )
    assert (reload(db, root).reply_lease_count, root.open_for_reply) == (0, True)
    assert reload(db, tree).reply_lease_count == 0
    assert service.expire_leases(db, LATER) == 0


def test_a_late_submission_is_accepted_while_a_slot_is_free(db: Session) -> None:
    author, volunteer = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    task = service.request_task(db, volunteer, language="en", kind="reply_assistant", now=START)
    service.expire_leases(db, LATER)
    result = service.submit_task(db, volunteer, task.id, Submission(text="Late but welcome"))
    reply = db.get(Message, result.message_id)
    assert reply is not None and reply.parent_id == root.id
    assert (reload(db, root).child_count, root.reply_lease_count) == (1, 0)
    assert reload(db, tree).reply_lease_count == 0


def test_a_late_submission_without_a_free_slot_returns_the_text(db: Session) -> None:
    author, late, quick = make_user(db), make_user(db), make_user(db)
    _tree, root = make_tree(db, author, max_children=1)
    task = service.request_task(db, late, language="en", kind="reply_assistant", now=START)
    service.expire_leases(db, LATER)
    taken = service.request_task(db, quick, language="en", kind="reply_assistant", now=LATER)
    assert taken.target_message_id == root.id

    messages_before = count_rows(db, Message)
    with pytest.raises(AppError) as error:
        service.submit_task(db, late, task.id, Submission(text="My careful answer"))
    assert (error.value.code, error.value.status) == ("lease_expired_slot_taken", 409)
    assert error.value.details["text"] == "My careful answer"
    assert count_rows(db, Message) == messages_before
    assert reload(db, root).child_count == 0


def test_submitting_twice_gives_the_same_result_and_one_message(db: Session) -> None:
    author, volunteer = make_user(db), make_user(db)
    make_tree(db, author)
    task = service.request_task(db, volunteer, language="en", kind="reply_assistant")
    text = unique_text()
    first = service.submit_task(db, volunteer, task.id, Submission(text=text))
    messages = count_rows(db, Message)
    again = service.submit_task(db, volunteer, task.id, Submission(text=text))
    assert again.message_id == first.message_id
    assert (first.replayed, again.replayed) == (False, True)
    assert count_rows(db, Message) == messages


def test_a_draft_is_kept_and_extends_the_lease(db: Session) -> None:
    author, volunteer = make_user(db), make_user(db)
    make_tree(db, author)
    task = service.request_task(db, volunteer, language="en", kind="reply_assistant", now=START)
    deadline = service.save_draft(
        db, volunteer, task.id, {"text": "so far"}, now=START + timedelta(minutes=50)
    )
    assert deadline == START + timedelta(minutes=110)
    assert service.expire_leases(db, START + timedelta(minutes=100)) == 0
    stored = db.get(Task, task.id)
    assert stored is not None and stored.draft == {"text": "so far"}


def test_a_draft_after_expiry_takes_the_slot_again(db: Session) -> None:
    author, volunteer = make_user(db), make_user(db)
    _tree, root = make_tree(db, author)
    task = service.request_task(db, volunteer, language="en", kind="reply_assistant", now=START)
    service.expire_leases(db, LATER)
    service.save_draft(db, volunteer, task.id, {"text": "still here"}, now=LATER)
    stored = db.get(Task, task.id)
    assert stored is not None and (stored.state, stored.holds_slot) == (TaskState.leased, True)
    assert reload(db, root).reply_lease_count == 1


def test_someone_elses_task_is_not_found(db: Session) -> None:
    author, owner, intruder = make_user(db), make_user(db), make_user(db)
    make_tree(db, author)
    task = service.request_task(db, owner, language="en", kind="reply_assistant")
    for attempt in (
        lambda: service.submit_task(db, intruder, task.id, Submission(text="mine now")),
        lambda: service.skip_task(db, intruder, task.id, "x"),
        lambda: service.save_draft(db, intruder, task.id, {"text": "x"}),
    ):
        with pytest.raises(AppError) as error:
            attempt()
        assert (error.value.code, error.value.status) == ("not_your_task", 404)
    stored = db.scalar(select(Task).where(Task.id == task.id))
    assert stored is not None and stored.state == TaskState.leased
