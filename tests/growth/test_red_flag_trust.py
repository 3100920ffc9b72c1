"""Red flags delete a message only when they come from volunteers who were shown it and
have earned trust; every other flag reaches the moderators' queue as a report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.growth import service
from hedgerow.growth.shown import record_tree_visit
from hedgerow.models import (
    Message,
    Reaction,
    Report,
    ReportStatus,
    Role,
    Task,
    TaskKind,
    TaskState,
    Tree,
    TreeState,
    TreeVisit,
    User,
)
from hedgerow.moderation import service as moderation
from tests.factories import api_headers, make_api_key, make_user
from tests.growth.factories import (
    add_reply,
    count_rows,
    give_track_record,
    make_tree,
    override_settings,
    reload,
)


def finished_tree(db: Session, size: int = 15) -> tuple[Tree, list[Message]]:
    """A `ready_for_export` tree of `size` messages, each parent with two replies."""
    writer = make_user(db)
    tree, root = make_tree(db, make_user(db), state=TreeState.ready_for_export)
    messages = [root]
    while len(messages) < size:
        messages.append(add_reply(db, tree, messages[(len(messages) - 1) // 2], writer))
    return tree, messages


def red_flag(client: TestClient, db: Session, user: User, message: Message) -> dict:
    headers = api_headers(make_api_key(db, user))
    response = client.post(f"/api/v1/messages/{message.id}/red-flag", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def view_tree(client: TestClient, db: Session, user: User, tree: Tree) -> None:
    headers = api_headers(make_api_key(db, user))
    assert client.get(f"/trees/{tree.id}", headers=headers).status_code == 200


def give_task(db: Session, user: User, kind: TaskKind, target: Message) -> None:
    """A task the volunteer did earlier (its conversation showed them messages)."""
    now = datetime.now(UTC)
    db.add(
        Task(
            user_id=user.id,
            kind=kind,
            language="en",
            target_message_id=target.id,
            state=TaskState.done,
            lease_expires_at=now + timedelta(hours=1),
            finished_at=now,
        )
    )
    db.flush()


def live_messages(db: Session, tree: Tree) -> int:
    db.expire_all()
    return len(
        db.scalars(select(Message.id).where(Message.tree_id == tree.id, ~Message.deleted)).all()
    )


def open_reports_on(db: Session, message: Message) -> list[Report]:
    return list(
        db.scalars(
            select(Report).where(
                Report.message_id == message.id, Report.status == ReportStatus.open
            )
        )
    )


def test_four_fresh_accounts_cannot_hide_a_finished_tree(client: TestClient, db: Session) -> None:
    tree, messages = finished_tree(db)
    root = messages[0]
    for _ in range(4):
        throwaway = make_user(db)  # signed up and accepted the Terms a moment ago
        # Looking at the tree first does not help: trust is earned by contributing.
        view_tree(client, db, throwaway, tree)
        outcome = red_flag(client, db, throwaway, root)
        assert (outcome["counted"], outcome["deleted"]) == (False, False)

    assert live_messages(db, tree) == 15
    assert (reload(db, tree).state, reload(db, root).red_flag_count) == (
        TreeState.ready_for_export,
        0,
    )
    assert count_rows(db, Reaction) == 0
    # The moderators see all four flags, as reports on the prompt.
    assert len(open_reports_on(db, root)) == 4
    items, _ = moderation.queue_page(db, page=1)
    assert [(item.message.id, item.report_count) for item in items] == [(root.id, 4)]


def test_flags_from_trusted_volunteers_who_were_shown_the_message_delete_it(
    client: TestClient, db: Session
) -> None:
    tree, messages = finished_tree(db)
    target = messages[1]  # the first assistant reply, with a subtree of 7 messages below
    reviewer, ranker, replier, reader = (give_track_record(db, make_user(db)) for _ in range(4))
    # Shown in a task: a review of a message below it (its path passes through the target),
    # a ranking of its siblings, a reply to it; shown by the tree viewer.
    give_task(db, reviewer, TaskKind.review_prompter_reply, messages[3])
    give_task(db, ranker, TaskKind.rank_assistant_replies, messages[0])
    give_task(db, replier, TaskKind.reply_prompter, target)
    view_tree(client, db, reader, tree)

    outcomes = [red_flag(client, db, user, target) for user in (reviewer, ranker, replier, reader)]

    assert [outcome["counted"] for outcome in outcomes] == [True] * 4
    assert [outcome["red_flag_count"] for outcome in outcomes] == [1, 2, 3, 4]
    assert outcomes[-1]["deleted"] is True
    assert live_messages(db, tree) == 15 - 7
    assert open_reports_on(db, target) == []


def test_a_trusted_volunteer_who_was_not_shown_the_message_only_reports_it(
    client: TestClient, db: Session
) -> None:
    tree, messages = finished_tree(db, size=7)
    target = messages[2]  # the second assistant reply
    volunteers = [give_track_record(db, make_user(db)) for _ in range(3)]
    # A task in a sibling's subtree, a review of the target's parent (its path stops
    # above the target), and a tree visit that ended before the target was written.
    give_task(db, volunteers[0], TaskKind.review_prompter_reply, messages[3])
    give_task(db, volunteers[1], TaskKind.review_prompt, messages[0])
    record_tree_visit(db, volunteers[2].id, tree.id, target.id - 1)

    for volunteer in volunteers:
        outcome = red_flag(client, db, volunteer, target)
        assert outcome["counted"] is False
        assert outcome["red_flag_count"] == 0
    assert len(open_reports_on(db, target)) == 3
    assert reload(db, target).deleted is False


@pytest.mark.parametrize(
    ("agreed", "settled", "why"),
    [
        (9, 9, "one accepted contribution short of the setting"),
        (12, 40, "their reviews mostly went against the decision"),
    ],
)
def test_a_volunteer_without_earned_trust_only_reports_what_they_were_shown(
    client: TestClient, db: Session, agreed: int, settled: int, why: str
) -> None:
    tree, messages = finished_tree(db, size=3)
    volunteer = give_track_record(db, make_user(db), agreed=agreed, settled=settled)
    view_tree(client, db, volunteer, tree)
    outcome = red_flag(client, db, volunteer, messages[1])
    assert outcome["counted"] is False, why
    assert len(open_reports_on(db, messages[1])) == 1


def test_the_trust_threshold_is_a_setting(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, red_flag_trusted_contributions=0)
    tree, messages = finished_tree(db, size=3)
    newcomer = make_user(db)
    # Without any contributions needed, being shown the message is enough...
    view_tree(client, db, newcomer, tree)
    assert red_flag(client, db, newcomer, messages[1])["counted"] is True
    # ...and still necessary.
    assert red_flag(client, db, make_user(db), messages[2])["counted"] is False


def test_a_moderators_flag_counts_without_having_seen_the_tree(
    client: TestClient, db: Session
) -> None:
    _tree, messages = finished_tree(db, size=3)
    moderator = make_user(db, role=Role.moderator)
    assert red_flag(client, db, moderator, messages[1])["counted"] is True


def test_a_severe_report_from_a_newcomer_reaches_the_queue_once_and_deletes_nothing(
    client: TestClient, db: Session
) -> None:
    _tree, messages = finished_tree(db, size=3)
    headers = api_headers(make_api_key(db, make_user(db)))
    response = client.post(
        f"/api/v1/messages/{messages[1].id}/report",
        json={"reason": "hate_speech", "text": "awful"},
        headers=headers,
    )
    assert response.status_code in (200, 201), response.text
    reports = open_reports_on(db, messages[1])
    assert [(report.reason, report.text) for report in reports] == [("hate_speech", "awful")]
    assert reload(db, messages[1]).red_flag_count == 0


def test_the_tree_viewer_remembers_the_newest_message_it_showed(
    client: TestClient, db: Session
) -> None:
    tree, messages = finished_tree(db, size=3)
    volunteer = give_track_record(db, make_user(db))
    view_tree(client, db, volunteer, tree)
    visit = db.get_one(TreeVisit, (volunteer.id, tree.id))
    assert visit.newest_message_id == max(message.id for message in messages)

    # A reply written after the visit was not shown by it...
    later = add_reply(db, tree, messages[1], make_user(db))
    assert red_flag(client, db, volunteer, later)["counted"] is False
    # ...until the next visit shows it: flagged again, it counts.
    view_tree(client, db, volunteer, tree)
    assert reload(db, visit).newest_message_id == later.id
    assert service.record_red_flag(db, volunteer, later.id).counted is True
    # An older visit arriving late never lowers the mark.
    record_tree_visit(db, volunteer.id, tree.id, messages[0].id)
    assert reload(db, visit).newest_message_id == later.id
