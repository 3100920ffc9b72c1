"""Moderation rules: reports, delete and exact undelete, edits, halts, disabling, deleting a
user on request, trollboard, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.growth import service as growth
from hedgerow.growth.tree_state import complete_tree, start_ranking
from hedgerow.models import (
    AuditEvent,
    Label,
    Message,
    Ranking,
    Reaction,
    ReactionKind,
    Report,
    ReportReason,
    ReportStatus,
    ReviewState,
    Role,
    Task,
    TaskState,
    Tree,
    TreeState,
    UserSession,
    VolunteerReliability,
)
from hedgerow.moderation import service
from tests.factories import make_user
from tests.growth.factories import (
    add_reply,
    make_tree,
    make_trusted_viewer,
    override_settings,
    reload,
)

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

COUNTERS = (
    "deleted",
    "deletion_id",
    "review_state",
    "review_count",
    "review_lease_count",
    "child_count",
    "accepted_child_count",
    "reply_lease_count",
    "ranking_count",
    "ranking_lease_count",
    "open_for_review",
    "open_for_reply",
    "open_for_ranking",
)
TREE_FIELDS = (
    "state",
    "accepted_count",
    "pending_count",
    "reply_lease_count",
    "open_ranking_sets",
    "completed_at",
)


def snapshot(db: Session, tree: Tree) -> dict[str, Any]:
    db.flush()
    db.expire_all()
    fresh = db.get_one(Tree, tree.id)
    messages = db.scalars(select(Message).where(Message.tree_id == tree.id).order_by(Message.id))
    return {
        "tree": {name: getattr(fresh, name) for name in TREE_FIELDS},
        "messages": {m.id: {name: getattr(m, name) for name in COUNTERS} for m in messages},
    }


def audit_actions(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# --- reports ---------------------------------------------------------------------------


def test_a_user_reports_a_message_once(db: Session) -> None:
    author, reporter = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    reply = add_reply(db, tree, root, author)
    report = service.report_message(
        db, reporter, reply.id, reason=ReportReason.low_quality, text="  rambling  "
    )
    assert (report.status, report.text) == (ReportStatus.open, "rambling")
    with pytest.raises(AppError) as error:
        service.report_message(db, reporter, reply.id, reason=ReportReason.spam, text=None)
    assert (error.value.code, error.value.status) == ("already_reported", 409)
    assert len(db.scalars(select(Report)).all()) == 1


def test_reports_refuse_own_missing_and_deleted_messages(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author)
    with pytest.raises(AppError) as own:
        service.report_message(db, author, root.id, reason=ReportReason.spam, text=None)
    assert own.value.code == "own_message"
    with pytest.raises(AppError) as missing:
        service.report_message(db, make_user(db), 10**12, reason=ReportReason.spam, text=None)
    assert missing.value.status == 404
    with pytest.raises(AppError) as too_long:
        service.report_message(
            db, make_user(db), root.id, reason=ReportReason.other, text="x" * 2001
        )
    assert too_long.value.code == "report_text_too_long"
    assert db.scalars(select(Report)).all() == []


def test_severe_reports_feed_auto_moderation(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    override_settings(monkeypatch, red_flags_to_delete=2)
    author = make_user(db)
    tree, root = make_tree(db, author)
    reply = add_reply(db, tree, root, author)

    def report(reason: ReportReason) -> None:
        # From volunteers whose red flags count (trusted, shown the message).
        reporter = make_trusted_viewer(db, reply)
        service.report_message(db, reporter, reply.id, reason=reason, text="")

    report(ReportReason.low_quality)
    assert reload(db, reply).red_flag_count == 0  # a mild reason is for a human to judge
    report(ReportReason.offensive)
    assert (reload(db, reply).red_flag_count, reply.deleted) == (1, False)
    report(ReportReason.hate_speech)
    assert reload(db, reply).deleted is True


def test_the_queue_groups_reports_by_message_most_severe_then_most_reported(db: Session) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author)
    mild_popular, severe, mild = (add_reply(db, tree, root, author) for _ in range(3))
    for _ in range(3):
        service.report_message(
            db, make_user(db), mild_popular.id, reason=ReportReason.low_quality, text=""
        )
    service.report_message(db, make_user(db), mild.id, reason=ReportReason.low_quality, text="")
    service.report_message(
        db, make_user(db), severe.id, reason=ReportReason.personal_information, text=""
    )
    items, has_next = service.queue_page(db, page=1)
    assert [item.message.id for item in items] == [severe.id, mild_popular.id, mild.id]
    assert [item.report_count for item in items] == [1, 3, 1]
    assert [m.id for m in items[0].path] == [root.id, severe.id]
    assert items[0].history.messages == 4 and has_next is False
    service.dismiss_reports(db, make_user(db, role=Role.moderator), severe.id, reason="fine")
    assert next(item.message.id for item in service.queue_page(db, page=1)[0]) == mild_popular.id


# --- delete and undelete ---------------------------------------------------------------


def test_undelete_restores_exactly_what_a_delete_removed(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    keep = add_reply(db, tree, root, writer)
    bad = add_reply(db, tree, root, writer)
    below = add_reply(db, tree, bad, writer)
    add_reply(db, tree, below, writer, review_state=ReviewState.pending)
    # A volunteer holds a reply lease below the deleted message through the whole affair.
    volunteer = make_user(db)
    task = growth.request_task(db, volunteer, language="en", kind="reply_prompter", now=START)
    leased = db.get_one(Task, task.id)
    assert leased.target_message_id in (keep.id, bad.id)
    before = snapshot(db, tree)

    ids = service.delete_message(db, moderator, bad.id, reason="abusive")
    deleted = snapshot(db, tree)
    assert all(deleted["messages"][i]["deleted"] for i in ids)
    assert deleted["tree"]["accepted_count"] == before["tree"]["accepted_count"] - 2

    restored_ids = service.undelete_message(db, moderator, bad.id, reason="mistake")
    assert sorted(restored_ids) == sorted(ids)
    assert snapshot(db, tree) == before
    assert audit_actions(db)[-2:] == ["message.delete_subtree", "message.undelete_subtree"]


def test_undelete_counts_only_the_leases_that_still_hold_a_slot(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    author, writer = make_user(db), make_user(db)
    tree, root = make_tree(db, author, max_children=1)
    reply = add_reply(db, tree, root, writer)
    task = growth.request_task(db, make_user(db), language="en", kind="reply_prompter", now=START)
    assert db.get_one(Task, task.id).target_message_id == reply.id
    assert reload(db, tree).reply_lease_count == 1

    service.delete_message(db, moderator, reply.id, reason="spam")
    assert reload(db, tree).reply_lease_count == 0
    # The lease runs out while its target is deleted.
    assert growth.expire_leases(db, START + timedelta(days=1)) == 1
    service.undelete_message(db, moderator, reply.id, reason="not spam")

    assert (reload(db, reply).reply_lease_count, reply.open_for_reply) == (0, True)
    assert reload(db, tree).reply_lease_count == 0
    assert (reload(db, root).child_count, root.open_for_reply) == (1, False)


def test_deleting_and_undeleting_a_prompt_puts_its_tree_back(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    author = make_user(db)
    tree, root = make_tree(db, author)
    reply = add_reply(db, tree, root, make_user(db))
    before = snapshot(db, tree)
    service.delete_message(db, moderator, root.id, reason="spam prompt")
    assert reload(db, tree).state == TreeState.aborted_low_grade
    assert reload(db, reply).deleted is True
    service.undelete_message(db, moderator, root.id, reason="appeal")
    assert snapshot(db, tree) == before


def test_deleting_the_prompt_of_a_complete_tree_aborts_it_and_undelete_completes_it_again(
    db: Session,
) -> None:
    """A tree without its prompt has nothing to export: "ready for export" would be false."""
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    add_reply(db, tree, root, make_user(db))
    complete_tree(db, tree, now=START)
    before = snapshot(db, tree)

    service.delete_message(
        db, moderator, root.id, reason="doxxing prompt", now=START + timedelta(1)
    )
    assert (reload(db, tree).state, tree.completed_at) == (
        TreeState.aborted_low_grade,
        START + timedelta(1),
    )
    service.undelete_message(db, moderator, root.id, reason="appeal")
    assert snapshot(db, tree) == before


def test_a_deletion_confirmed_for_another_count_changes_nothing(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    reply = add_reply(db, tree, root, make_user(db))
    below = add_reply(db, tree, reply, make_user(db))
    assert service.deletion_preview(db, reply.id).count == 2
    add_reply(db, tree, below, make_user(db))  # written after the moderator looked
    before = snapshot(db, tree)

    with pytest.raises(AppError) as error:
        service.delete_message(db, moderator, reply.id, reason="spam", expected_count=2)
    assert (error.value.code, error.value.status, error.value.details) == (
        "subtree_changed",
        409,
        {"count": 3},
    )
    assert snapshot(db, tree) == before
    assert len(service.delete_message(db, moderator, reply.id, reason="x", expected_count=3)) == 3


def test_an_undeleted_growing_tree_waits_in_the_lottery_when_its_language_is_full(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=1)
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db), language="fr")
    service.delete_message(db, moderator, root.id, reason="oops")
    make_tree(db, make_user(db), language="fr")  # took the free growing slot
    service.undelete_message(db, moderator, root.id, reason="undo")
    assert reload(db, tree).state == TreeState.lottery_waiting
    assert reload(db, root).open_for_reply is False


def test_undelete_reopens_a_ranking_the_deletion_completed(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db), goal_size=3)
    first = add_reply(db, tree, root, make_user(db))
    add_reply(db, tree, root, make_user(db))
    start_ranking(db, tree, now=START)
    before = snapshot(db, tree)
    assert (before["tree"]["state"], before["tree"]["open_ranking_sets"]) == ("ranking", 1)

    service.delete_message(db, moderator, first.id, reason="spam")
    assert reload(db, tree).state == TreeState.ready_for_export  # one reply: nothing to rank
    service.undelete_message(db, moderator, first.id, reason="not spam")
    assert snapshot(db, tree) == before


def test_undelete_returns_a_tree_to_growing_when_the_deletion_started_its_ranking(
    db: Session,
) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db), goal_size=3)
    add_reply(db, tree, root, make_user(db))
    add_reply(db, tree, root, make_user(db))
    pending = add_reply(db, tree, root, make_user(db), review_state=ReviewState.pending)
    before = snapshot(db, tree)
    assert before["messages"][pending.id]["open_for_review"] is True

    service.delete_message(db, moderator, pending.id, reason="gibberish")
    assert reload(db, tree).state == TreeState.ranking  # nothing left to review
    service.undelete_message(db, moderator, pending.id, reason="it was fine")
    assert snapshot(db, tree) == before


def test_resume_refuses_when_every_growing_slot_is_taken(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=1)
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db), language="nl")
    add_reply(db, tree, root, make_user(db))
    service.halt_tree(db, moderator, tree.id, reason="check")
    make_tree(db, make_user(db), language="nl")
    with pytest.raises(AppError) as full:
        service.resume_tree(db, moderator, tree.id, reason=None)
    assert (full.value.code, full.value.status) == ("no_growing_slot", 409)
    assert reload(db, tree).state == TreeState.halted


def test_undelete_refuses_what_is_not_the_top_of_a_deletion(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    reply = add_reply(db, tree, root, make_user(db))
    below = add_reply(db, tree, reply, make_user(db))
    with pytest.raises(AppError) as live:
        service.undelete_message(db, moderator, reply.id, reason=None)
    assert live.value.code == "not_deleted"
    service.delete_message(db, moderator, reply.id, reason=None)
    with pytest.raises(AppError) as inner:
        service.undelete_message(db, moderator, below.id, reason=None)
    assert inner.value.code == "not_deleted"
    with pytest.raises(AppError) as twice:
        service.delete_message(db, moderator, reply.id, reason=None)
    assert twice.value.code == "already_deleted"


def test_deleting_actions_the_open_reports(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    reply = add_reply(db, tree, root, make_user(db))
    service.report_message(db, make_user(db), reply.id, reason=ReportReason.offensive, text="")
    service.delete_message(db, moderator, reply.id, reason="offensive")
    report = db.scalars(select(Report)).one()
    assert (report.status, report.resolved_by_id) == (ReportStatus.actioned, moderator.id)


# --- edit ------------------------------------------------------------------------------


def test_an_edit_keeps_a_revision_and_marks_earlier_labels_and_rankings(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    reply = add_reply(db, tree, root, make_user(db))
    sibling = add_reply(db, tree, root, make_user(db))
    reviewer = make_user(db)
    db.add(
        Label(message_id=reply.id, user_id=reviewer.id, values={"spam": 0}, guideline_version="1")
    )
    db.add(
        Ranking(
            parent_message_id=root.id,
            user_id=reviewer.id,
            ordered_message_ids=[reply.id, sibling.id],
        )
    )
    db.flush()
    old_text = reply.text

    revision = service.edit_message(
        db, moderator, reply.id, new_text="A corrected answer.", reason="removed a phone number"
    )
    assert (revision.old_text, revision.new_text, revision.editor_id) == (
        old_text,
        "A corrected answer.",
        moderator.id,
    )
    assert (reload(db, reply).text, reply.edited) == ("A corrected answer.", True)
    assert db.scalars(select(Label.before_edit)).all() == [True]
    assert db.scalars(select(Ranking.before_edit)).all() == [True]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "message.edit")).one()
    assert event.before == {"text": old_text} and event.reason == "removed a phone number"

    with pytest.raises(AppError) as no_reason:
        service.edit_message(db, moderator, reply.id, new_text="Other.", reason="  ")
    assert no_reason.value.code == "reason_required"
    with pytest.raises(AppError) as empty:
        service.edit_message(db, moderator, reply.id, new_text="   ", reason="x")
    assert empty.value.code == "empty_text"


# --- halt and resume -------------------------------------------------------------------


def test_halt_stops_all_work_and_resume_brings_it_back(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    add_reply(db, tree, root, make_user(db), review_state=ReviewState.pending)
    before = snapshot(db, tree)
    service.halt_tree(db, moderator, tree.id, reason="looks like a raid")
    halted = snapshot(db, tree)
    assert halted["tree"]["state"] == TreeState.halted
    assert not any(m["open_for_review"] or m["open_for_reply"] for m in halted["messages"].values())
    with pytest.raises(AppError) as again:
        service.halt_tree(db, moderator, tree.id, reason="twice")
    assert again.value.code == "cannot_halt"
    service.resume_tree(db, moderator, tree.id, reason="calm again")
    assert snapshot(db, tree) == before
    assert audit_actions(db)[-2:] == ["tree.halt", "tree.resume"]
    with pytest.raises(AppError) as not_halted:
        service.resume_tree(db, moderator, tree.id, reason=None)
    assert not_halted.value.code == "not_halted"


# --- users -----------------------------------------------------------------------------


def test_disabling_an_author_withdraws_waiting_prompts_and_ends_open_leases(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    troll = make_user(db)
    waiting, _ = make_tree(db, troll, state=TreeState.lottery_waiting)
    tree, root = make_tree(db, make_user(db))
    task = growth.request_task(db, troll, language="en", kind="reply_assistant", now=START)
    assert reload(db, root).reply_lease_count == 1

    service.disable_user(db, moderator, troll.id, reason="trolling")

    assert reload(db, troll).enabled is False
    assert reload(db, waiting).state == TreeState.halted
    ended = db.get_one(Task, task.id)
    assert (ended.state, ended.holds_slot) == (TaskState.expired, False)
    assert (reload(db, root).reply_lease_count, root.open_for_reply) == (0, True)
    assert reload(db, tree).reply_lease_count == 0
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.disable")).one()
    assert event.after == {"enabled": False, "prompts_withdrawn": 1, "leases_ended": 1}

    service.enable_user(db, moderator, troll.id, reason=None)
    assert reload(db, troll).enabled is True


def test_a_moderator_cannot_disable_another_moderator_or_themselves(db: Session) -> None:
    moderator, other = make_user(db, role=Role.moderator), make_user(db, role=Role.moderator)
    for target in (moderator, other):
        with pytest.raises(AppError):
            service.disable_user(db, moderator, target.id, reason="x")
    admin = make_user(db, role=Role.admin)
    service.disable_user(db, admin, other.id, reason="inactive")
    assert reload(db, other).enabled is False


def test_notes_on_a_user_are_kept_and_audited(db: Session) -> None:
    moderator, user = make_user(db, role=Role.moderator), make_user(db)
    service.add_note(db, moderator, user.id, text="Warned by e-mail.")
    detail = service.user_detail(db, user.id)
    assert [(note.text, author) for note, author in detail.notes] == [
        ("Warned by e-mail.", moderator.username)
    ]
    assert [event.action for event, _ in detail.audit] == ["user.note"]


def test_deleting_a_user_on_request_keeps_contributions_under_a_pseudonym(db: Session) -> None:
    admin = make_user(db, role=Role.admin)
    leaving = make_user(db, username="leaving_person")
    _tree, root = make_tree(db, leaving)
    db.add(
        UserSession(
            user_id=leaving.id, token_hash="0" * 64, expires_at=START + timedelta(days=9999)
        )
    )
    db.flush()
    service.anonymise_user(db, admin, leaving.id, reason="GDPR request #12")

    reload(db, leaving)
    assert leaving.username.startswith("anon-") and leaving.display_name == leaving.username
    assert (leaving.email, leaving.password_hash, leaving.enabled) == (None, None, False)
    assert leaving.deleted_at is not None
    assert reload(db, root).author_id == leaving.id  # the contribution stays
    assert db.scalars(select(UserSession).where(UserSession.user_id == leaving.id)).all() == []
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.anonymise")).one()
    assert "leaving_person" not in str(event.before) + str(event.after) + str(event.reason)
    with pytest.raises(AppError) as twice:
        service.anonymise_user(db, admin, leaving.id, reason="again")
    assert twice.value.code == "already_deleted"


# --- bulk, trollboard, audit -----------------------------------------------------------


def test_bulk_actions_apply_to_each_selected_message_and_report_the_rest(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    first, second = (
        add_reply(db, tree, root, make_user(db)),
        add_reply(db, tree, root, make_user(db)),
    )
    service.delete_message(db, moderator, second.id, reason=None)
    outcomes = service.bulk_action(
        db, moderator, [first.id, second.id, 10**12], action="delete", reason="raid"
    )
    assert outcomes == {first.id: "ok", second.id: "already_deleted", 10**12: "not_found"}
    assert reload(db, first).deleted is True
    with pytest.raises(AppError) as bad_action:
        service.bulk_action(db, moderator, [first.id], action="explode", reason=None)
    assert bad_action.value.code == "invalid_action"


def test_the_trollboard_ranks_users_by_the_documented_score(db: Session) -> None:
    troll, careless, nice = make_user(db), make_user(db), make_user(db)
    tree, root = make_tree(db, make_user(db))
    troll_reply = add_reply(db, tree, root, troll)
    careless_reply = add_reply(db, tree, root, careless)
    add_reply(db, tree, root, nice)
    for _ in range(2):
        db.add(
            Reaction(
                message_id=troll_reply.id, user_id=make_user(db).id, kind=ReactionKind.red_flag
            )
        )
    db.add(
        Label(
            message_id=careless_reply.id,
            user_id=make_user(db).id,
            values={"spam": 1.0, "not_appropriate": 0.0},
            guideline_version="1",
        )
    )
    db.add(
        Reaction(
            message_id=careless_reply.id, user_id=make_user(db).id, kind=ReactionKind.thumbs_down
        )
    )
    db.flush()
    rows = service.trollboard(db, window="day")
    assert [(row.user_id, row.score) for row in rows] == [(troll.id, 6.0), (careless.id, 2.5)]
    assert (rows[1].spam, rows[1].thumbs_down, rows[1].not_appropriate) == (1, 1, 0)
    with pytest.raises(AppError) as window:
        service.trollboard(db, window="year")
    assert window.value.code == "invalid_window"


def test_the_trollboard_sorted_by_reliability_puts_the_least_reliable_reviewer_first(
    db: Session,
) -> None:
    # Troll scores 6.0, 2.0 and 0.5; review records good, none (the prior) and poor.
    flagged, labelled, frowned = make_user(db), make_user(db), make_user(db)
    tree, root = make_tree(db, make_user(db))
    flagged_reply, labelled_reply, frowned_reply = (
        add_reply(db, tree, root, author) for author in (flagged, labelled, frowned)
    )
    for _ in range(2):
        db.add(
            Reaction(
                message_id=flagged_reply.id, user_id=make_user(db).id, kind=ReactionKind.red_flag
            )
        )
    db.add(
        Label(
            message_id=labelled_reply.id,
            user_id=make_user(db).id,
            values={"spam": 1.0},
            guideline_version="1",
        )
    )
    db.add(
        Reaction(
            message_id=frowned_reply.id, user_id=make_user(db).id, kind=ReactionKind.thumbs_down
        )
    )
    db.add_all(
        [
            VolunteerReliability(user_id=flagged.id, reviews_settled=20, reviews_agreed=19),
            VolunteerReliability(user_id=frowned.id, reviews_settled=10, reviews_agreed=2),
            # Unreliable, but nobody complained about them: not on the board.
            VolunteerReliability(user_id=make_user(db).id, reviews_settled=10, reviews_agreed=0),
        ]
    )
    db.flush()

    by_score = service.trollboard(db, window="day")
    assert [row.user_id for row in by_score] == [flagged.id, labelled.id, frowned.id]
    assert service.trollboard(db, window="day", sort="score") == by_score

    by_reliability = service.trollboard(db, window="day", sort="reliability")
    assert [row.user_id for row in by_reliability] == [frowned.id, labelled.id, flagged.id]
    for row in by_reliability:
        record = growth.volunteer_record(db, row.user_id)
        assert row.review_reliability == pytest.approx(record.review_reliability)
        assert (row.reviews_agreed, row.reviews_settled) == (
            record.reviews_agreed,
            record.reviews_settled,
        )
    prior = growth.volunteer_record(db, labelled.id)
    assert (prior.reviews_settled, prior.review_reliability) == (
        0,
        pytest.approx(service.estimate_priors().review_reliability),
    )

    with pytest.raises(AppError) as sort:
        service.trollboard(db, window="day", sort="name")
    assert (sort.value.code, sort.value.status) == ("invalid_sort", 422)


def test_the_user_detail_carries_the_volunteer_record_and_the_priors(db: Session) -> None:
    veteran, newcomer = make_user(db), make_user(db)
    db.add(
        VolunteerReliability(
            user_id=veteran.id,
            reviews_settled=16,
            reviews_agreed=4,
            messages_decided=6,
            messages_accepted=6,
        )
    )
    db.flush()
    detail = service.user_detail(db, veteran.id)
    priors = detail.priors
    assert detail.record == growth.volunteer_record(db, veteran.id)
    assert (detail.record.reviews_agreed, detail.record.reviews_settled) == (4, 16)
    # Beta posterior means: the prior counts as `weight` reviews (messages) of evidence.
    assert detail.record.review_reliability == pytest.approx(
        (4 + priors.review_reliability * priors.review_weight) / (16 + priors.review_weight)
    )
    assert detail.record.author_acceptance == pytest.approx(
        (6 + priors.author_acceptance * priors.author_weight) / (6 + priors.author_weight)
    )
    fresh = service.user_detail(db, newcomer.id).record
    assert (fresh.review_reliability, fresh.author_acceptance) == (
        pytest.approx(detail.priors.review_reliability),
        pytest.approx(detail.priors.author_acceptance),
    )


def test_the_audit_log_filters_by_actor_action_and_target(db: Session) -> None:
    first, second = make_user(db, role=Role.moderator), make_user(db, role=Role.moderator)
    tree, root = make_tree(db, make_user(db))
    reply = add_reply(db, tree, root, make_user(db))
    service.dismiss_reports(db, first, reply.id, reason="fine")
    service.halt_tree(db, second, tree.id, reason="raid")
    rows, _ = service.audit_log(
        db, actor=first.username, action=None, target_type=None, target_id=None, page=1
    )
    assert [event.action for event, _ in rows] == ["report.dismiss"]
    rows, _ = service.audit_log(
        db, actor=None, action="tree.halt", target_type=None, target_id=None, page=1
    )
    assert [(event.target_id, name) for event, name in rows] == [(tree.id, second.username)]
    rows, _ = service.audit_log(
        db, actor=None, action=None, target_type="message", target_id=reply.id, page=1
    )
    assert [event.action for event, _ in rows] == ["report.dismiss"]
    rows, _ = service.audit_log(
        db, actor="nobody-by-that-name", action=None, target_type=None, target_id=None, page=1
    )
    assert rows == []


def test_the_audit_log_is_append_only(db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    service.add_note(db, moderator, make_user(db).id, text="note")
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("UPDATE audit_event SET reason = 'rewritten'"))
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("DELETE FROM audit_event"))
    assert db.scalars(select(AuditEvent.reason)).all() == [None]


def test_status_counts_trees_lottery_leases_and_open_work(db: Session) -> None:
    make_tree(db, make_user(db), state=TreeState.lottery_waiting, language="de")
    _tree, _root = make_tree(db, make_user(db))
    growth.request_task(db, make_user(db), language="en", kind="reply_assistant", now=START)
    status = service.platform_status(db)
    assert ("de", TreeState.lottery_waiting.value, 1) in status.trees
    assert ("en", TreeState.growing.value, 1) in status.trees
    assert status.lottery == [("de", 1, 1)]
    assert status.leases == [("reply_assistant", 1)]
    assert set(status.jobs) >= {"growth.expire_leases", "growth.top_up_lotteries"}
    assert all(run == {} for run in status.jobs.values())
