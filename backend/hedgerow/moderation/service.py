"""Moderation rules: reports, the queue and its actions on messages and trees, the
trollboard, audit log and status. User management is in moderation/users.py and exported
from here, so routes see one API. Every moderator and admin action writes an AuditEvent in
the same transaction.

Tree and message changes (deletes, edits, halts) go through the growth engine's public
service, which keeps counters, open-work flags and tree states exact; this module checks the
request and records the action. Services only flush; the request session commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hedgerow.errors import AppError, NotFound
from hedgerow.growth import service as growth
from hedgerow.growth.service import conversation_path
from hedgerow.i18n import gettext as _
from hedgerow.models import (
    AuditEvent,
    Message,
    MessageRevision,
    Report,
    ReportReason,
    ReportStatus,
    Tree,
    User,
)
from hedgerow.moderation import queries
from hedgerow.moderation.common import clean_reason, get_user, record_action, utcnow
from hedgerow.moderation.users import (
    EstimatePriors,
    UserDetail,
    add_note,
    anonymise_user,
    disable_user,
    enable_user,
    estimate_priors,
    user_detail,
)
from hedgerow.text import normalize_text

__all__ = [
    "EstimatePriors",
    "UserDetail",
    "add_note",
    "anonymise_user",
    "clean_reason",
    "disable_user",
    "enable_user",
    "estimate_priors",
    "user_detail",
]

REPORT_TEXT_MAX_LENGTH = 2000
QUEUE_PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
BULK_MAX_MESSAGES = 100
# Reasons that also count as a red flag from the reporter, so reports feed the same
# auto-moderation as red flags (enough of them delete the message before anyone looks).
RED_FLAG_REASONS = frozenset(
    {
        ReportReason.offensive,
        ReportReason.hate_speech,
        ReportReason.sexual_content,
        ReportReason.personal_information,
        ReportReason.spam,
    }
)
TROLLBOARD_WINDOWS: dict[str, timedelta | None] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}
BULK_ACTIONS = ("dismiss", "delete")


def _message(db: Session, message_id: int) -> Message:
    message = db.get(Message, message_id)
    if message is None:
        raise NotFound(_("That message does not exist."))
    return message


# --- reporting (volunteers) ------------------------------------------------------------


def parse_reason(value: str) -> ReportReason:
    try:
        return ReportReason(value)
    except ValueError:
        raise AppError(
            "invalid_reason",
            _(
                "Choose a reason: %(choices)s.",
                choices=", ".join(reason.value for reason in ReportReason),
            ),
            422,
            details={"field": "reason"},
        ) from None


def report_refusal(db: Session, reporter: User, message: Message) -> AppError | None:
    """Why `reporter` cannot report `message` (their own, or reported already), so the
    report page says so instead of offering a form that would be refused."""
    if message.author_id == reporter.id:
        return AppError("own_message", _("You cannot report your own message."), 409)
    if queries.has_reported(db, message.id, reporter.id):
        return AppError("already_reported", _("You have already reported this message."), 409)
    return None


def report_message(
    db: Session, reporter: User, message_id: int, *, reason: ReportReason, text: str | None
) -> Report:
    """One report per user and message; severe reasons also count as a red flag."""
    body = (text or "").strip()
    if len(body) > REPORT_TEXT_MAX_LENGTH:
        raise AppError(
            "report_text_too_long",
            _(
                "Describe the problem in at most %(limit)s characters.",
                limit=REPORT_TEXT_MAX_LENGTH,
            ),
            422,
            details={"field": "text"},
        )
    if body:
        body = normalize_text(body, REPORT_TEXT_MAX_LENGTH, field="description")
    message = db.get(Message, message_id)
    if message is None or message.deleted:
        raise NotFound(_("That message does not exist."))
    if message.author_id == reporter.id:
        raise AppError("own_message", _("You cannot report your own message."), 409)
    report_id = queries.insert_report(db, message_id, reporter.id, reason, body or None)
    if report_id is None:
        raise AppError("already_reported", _("You have already reported this message."), 409)
    if reason in RED_FLAG_REASONS:
        growth.record_red_flag(db, reporter, message_id)
    report = db.get(Report, report_id)
    assert report is not None
    return report


# --- the queue -------------------------------------------------------------------------


@dataclass
class QueueItem:
    message: Message
    path: list[Message]
    report_count: int
    severity: int
    reasons: list[str]
    reports: list[Report]
    author: User
    history: queries.AuthorHistory
    tree: Tree
    # The tree's messages not deleted.
    tree_message_count: int


def queue_page(db: Session, *, page: int) -> tuple[list[QueueItem], bool]:
    """One page of the queue and whether there is a next one."""
    if page < 1:
        raise AppError("invalid_page", _("Pages start at 1."), 422)
    groups = queries.open_report_groups(
        db, limit=QUEUE_PAGE_SIZE + 1, offset=(page - 1) * QUEUE_PAGE_SIZE
    )
    has_next = len(groups) > QUEUE_PAGE_SIZE
    groups = groups[:QUEUE_PAGE_SIZE]
    reports_by_message: dict[int, list[Report]] = {}
    for report in queries.reports_on(db, [g.message_id for g in groups], only_open=True):
        reports_by_message.setdefault(report.message_id, []).append(report)
    messages = {group.message_id: _message(db, group.message_id) for group in groups}
    sizes = queries.live_message_counts(db, sorted({m.tree_id for m in messages.values()}))
    items = []
    for group in groups:
        message = messages[group.message_id]
        items.append(
            QueueItem(
                message=message,
                path=conversation_path(db, message.id),
                report_count=group.report_count,
                severity=group.severity,
                reasons=group.reasons,
                reports=reports_by_message.get(message.id, []),
                author=get_user(db, message.author_id),
                history=queries.author_history(db, message.author_id),
                tree=db.get_one(Tree, message.tree_id),
                tree_message_count=sizes[message.tree_id],
            )
        )
    return items, has_next


@dataclass
class MessageDetail:
    message: Message
    path: list[Message]
    children: list[Message]
    reports: list[Report]
    revisions: list[MessageRevision]
    author: User
    history: queries.AuthorHistory
    tree: Tree
    tree_message_count: int
    audit: list[tuple[AuditEvent, str | None]]


def message_detail(db: Session, message_id: int) -> MessageDetail:
    message = _message(db, message_id)
    return MessageDetail(
        message=message,
        path=conversation_path(db, message.id),
        children=queries.children_of(db, message.id),
        reports=queries.reports_on(db, [message.id], only_open=False),
        revisions=queries.revisions_of(db, message.id),
        author=get_user(db, message.author_id),
        history=queries.author_history(db, message.author_id),
        tree=db.get_one(Tree, message.tree_id),
        tree_message_count=queries.live_message_counts(db, [message.tree_id])[message.tree_id],
        audit=queries.audit_events(
            db,
            actor_id=None,
            action=None,
            target_type="message",
            target_id=message.id,
            limit=AUDIT_PAGE_SIZE,
            offset=0,
        ),
    )


def _resolve_reports(db: Session, actor: User, message_ids: Sequence[int], status: str) -> int:
    return queries.resolve_open_reports(db, message_ids, status, actor.id, utcnow())


def dismiss_reports(db: Session, actor: User, message_id: int, *, reason: str | None) -> int:
    _message(db, message_id)
    reason = clean_reason(reason)
    dismissed = _resolve_reports(db, actor, [message_id], ReportStatus.dismissed)
    record_action(
        db,
        actor,
        "report.dismiss",
        "message",
        message_id,
        after={"reports_dismissed": dismissed},
        reason=reason,
    )
    db.flush()
    return dismissed


@dataclass
class DeletionPreview:
    """What deleting a message would delete, for the moderator to confirm first."""

    message: Message
    tree: Tree
    # The message and its replies not deleted yet (growth.live_subtree_size).
    count: int

    @property
    def deletes_the_prompt(self) -> bool:
        return self.message.parent_id is None


def deletion_preview(db: Session, message_id: int) -> DeletionPreview:
    message = _message(db, message_id)
    if message.deleted:
        raise AppError("already_deleted", _("This message is already deleted."), 409)
    return DeletionPreview(
        message=message,
        tree=db.get_one(Tree, message.tree_id),
        count=growth.live_subtree_size(db, [message.id]),
    )


def delete_message(
    db: Session,
    actor: User,
    message_id: int,
    *,
    reason: str | None,
    now: datetime | None = None,
    expected_count: int | None = None,
) -> list[int]:
    """Soft-delete the message with its subtree (undelete restores exactly that set).
    With `expected_count`, only if that is still how many messages it deletes
    (``subtree_changed`` otherwise, nothing changed)."""
    now = now or utcnow()
    reason = clean_reason(reason)
    ids = growth.delete_subtree(
        db,
        message_id,
        actor_id=actor.id,
        reason=reason or "moderator",
        now=now,
        expected_count=expected_count,
    )
    _resolve_reports(db, actor, ids, ReportStatus.actioned)
    db.flush()
    return ids


def undelete_message(
    db: Session, actor: User, message_id: int, *, reason: str | None, now: datetime | None = None
) -> list[int]:
    return growth.undelete_subtree(
        db, message_id, actor_id=actor.id, reason=clean_reason(reason), now=now
    )


def edit_message(
    db: Session, actor: User, message_id: int, *, new_text: str, reason: str | None
) -> MessageRevision:
    """Replace a message's text, keeping the old one as a revision; the labels and the
    rankings of its sibling set made so far are marked before_edit (they judged other
    words)."""
    reason = clean_reason(reason, required=True)
    edit = growth.edit_text(db, message_id, new_text)
    message = edit.message
    revision = MessageRevision(
        message_id=message.id,
        editor_id=actor.id,
        old_text=edit.old_text,
        new_text=edit.new_text,
        reason=reason,
    )
    db.add(revision)
    _resolve_reports(db, actor, [message.id], ReportStatus.actioned)
    record_action(
        db,
        actor,
        "message.edit",
        "message",
        message.id,
        before={"text": revision.old_text},
        after={
            "text": edit.new_text,
            "labels_before_edit": edit.labels_before_edit,
            "rankings_before_edit": edit.rankings_before_edit,
        },
        reason=reason,
    )
    db.flush()
    return revision


def halt_tree(db: Session, actor: User, tree_id: int, *, reason: str | None) -> Tree:
    reason = clean_reason(reason, required=True)
    return growth.halt(db, tree_id, reason=reason or "", actor_id=actor.id, now=utcnow())


def resume_tree(db: Session, actor: User, tree_id: int, *, reason: str | None) -> Tree:
    return growth.resume_tree(db, tree_id, actor_id=actor.id, reason=clean_reason(reason))


# --- bulk ------------------------------------------------------------------------------


def _selection(message_ids: Sequence[int]) -> list[int]:
    unique_ids = sorted(set(message_ids))
    if not unique_ids:
        raise AppError("empty_selection", _("Select at least one message."), 422)
    if len(unique_ids) > BULK_MAX_MESSAGES:
        raise AppError(
            "selection_too_large",
            _("Select at most %(limit)s messages at once.", limit=BULK_MAX_MESSAGES),
            422,
        )
    return unique_ids


@dataclass
class BulkDeletionPreview:
    """The selected messages that a bulk delete would delete, with their replies."""

    messages: list[Message]
    # Every message that goes, replies included, each counted once.
    count: int


def bulk_deletion_preview(db: Session, message_ids: Sequence[int]) -> BulkDeletionPreview:
    unique_ids = _selection(message_ids)
    found = (db.get(Message, message_id) for message_id in unique_ids)
    return BulkDeletionPreview(
        messages=[message for message in found if message is not None and not message.deleted],
        count=growth.live_subtree_size(db, unique_ids),
    )


def bulk_action(
    db: Session,
    actor: User,
    message_ids: Sequence[int],
    *,
    action: str,
    reason: str | None,
    expected_count: int | None = None,
) -> dict[int, str]:
    """Apply one action to a selection; returns message id -> outcome ("ok" or an error
    code). Messages already in the wanted state are reported, not failed on: a moderator
    selecting twenty messages should not lose nineteen actions to one stale row.

    A delete with `expected_count` (what the moderator confirmed, bulk_deletion_preview)
    starts only if that is still how many messages it deletes (checked before the first
    deletion, not under the trees' locks: a reply arriving during the deletions goes too).
    """
    if action not in BULK_ACTIONS:
        raise AppError(
            "invalid_action",
            _("Choose an action: %(choices)s.", choices=", ".join(BULK_ACTIONS)),
            422,
        )
    unique_ids = _selection(message_ids)
    reason = clean_reason(reason)
    if action == "delete" and expected_count is not None:
        count = growth.live_subtree_size(db, unique_ids)
        if count != expected_count:
            raise AppError(
                "subtree_changed",
                _(
                    "This now deletes %(count)s messages, not %(expected)s: confirm again.",
                    count=count,
                    expected=expected_count,
                ),
                409,
                details={"count": count},
            )
    outcomes: dict[int, str] = {}
    for message_id in unique_ids:
        try:
            # A savepoint per message: one refused action leaves the others standing.
            with db.begin_nested():
                if action == "dismiss":
                    dismiss_reports(db, actor, message_id, reason=reason)
                else:
                    delete_message(db, actor, message_id, reason=reason)
            outcomes[message_id] = "ok"
        except AppError as error:
            outcomes[message_id] = error.code
    return outcomes


# --- trollboard, audit, status ---------------------------------------------------------


def parse_window(window: str) -> timedelta | None:
    if window not in TROLLBOARD_WINDOWS:
        raise AppError(
            "invalid_window",
            _("Choose a window: %(choices)s.", choices=", ".join(TROLLBOARD_WINDOWS)),
            422,
        )
    return TROLLBOARD_WINDOWS[window]


def parse_trollboard_order(sort: str) -> queries.TrollboardOrder:
    try:
        return queries.TrollboardOrder(sort)
    except ValueError:
        choices = ", ".join(order.value for order in queries.TrollboardOrder)
        raise AppError(
            "invalid_sort", _("Sort the trollboard by one of: %(choices)s.", choices=choices), 422
        ) from None


def trollboard(
    db: Session, *, window: str, sort: str = "score", limit: int = 50
) -> list[queries.TrollRow]:
    """Users with a troll score in the window: highest score first (`score`), or least
    reliable reviewer first (`reliability`)."""
    span = parse_window(window)
    order = parse_trollboard_order(sort)
    since = utcnow() - span if span is not None else None
    return queries.trollboard(db, since=since, order=order, limit=limit)


def audit_log(
    db: Session,
    *,
    actor: str | None,
    action: str | None,
    target_type: str | None,
    target_id: int | None,
    page: int,
) -> tuple[list[tuple[AuditEvent, str | None]], bool]:
    if page < 1:
        raise AppError("invalid_page", _("Pages start at 1."), 422)
    actor_id: int | None = None
    if actor:
        found = queries.user_id_by_username(db, actor.strip())
        if found is None:
            return [], False
        actor_id = found
    rows = queries.audit_events(
        db,
        actor_id=actor_id,
        action=(action or "").strip() or None,
        target_type=(target_type or "").strip() or None,
        target_id=target_id,
        limit=AUDIT_PAGE_SIZE + 1,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )
    return rows[:AUDIT_PAGE_SIZE], len(rows) > AUDIT_PAGE_SIZE


@dataclass
class PlatformStatus:
    trees: list[tuple[str, str, int]]
    lottery: list[tuple[str, int, int]]
    leases: list[tuple[str, int]]
    open_work: list[tuple[str, dict[str, int]]]
    jobs: dict[str, dict[str, Any]]
    open_report_groups: int


def platform_status(db: Session) -> PlatformStatus:
    from hedgerow.ops.job_health import job_runs

    return PlatformStatus(
        trees=queries.trees_per_state_and_language(db),
        lottery=queries.lottery_queues(db),
        leases=queries.open_leases(db),
        open_work=queries.open_work_per_kind(db),
        jobs=job_runs(),
        open_report_groups=queries.count_open_report_groups(db),
    )
