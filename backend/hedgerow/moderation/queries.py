"""The moderation domain's SQL: the report queue, author history, trollboard, audit log and
the status page's counts."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from hedgerow.growth.service import review_reliability_expression
from hedgerow.models import (
    AuditEvent,
    Label,
    Message,
    MessageRevision,
    MessageRole,
    Ranking,
    Reaction,
    ReactionKind,
    Report,
    ReportReason,
    ReportStatus,
    ReviewState,
    Task,
    TaskKind,
    TaskState,
    Tree,
    TreeState,
    User,
    UserNote,
    VolunteerReliability,
)

# How urgent a report reason is; the queue shows the most severe first.
REASON_SEVERITY: dict[str, int] = {
    ReportReason.personal_information: 5,
    ReportReason.hate_speech: 5,
    ReportReason.sexual_content: 4,
    ReportReason.offensive: 4,
    ReportReason.spam: 3,
    ReportReason.wrong_language: 2,
    ReportReason.low_quality: 1,
    ReportReason.other: 1,
}


def _severity_expression() -> Any:
    return case(
        *((Report.reason == reason, severity) for reason, severity in REASON_SEVERITY.items()),
        else_=1,
    )


@dataclass(frozen=True)
class QueueRow:
    message_id: int
    report_count: int
    severity: int
    reasons: list[str]
    first_reported_at: datetime


def open_report_groups(db: Session, *, limit: int, offset: int) -> list[QueueRow]:
    """Open reports grouped by message: most severe first, then most reported, oldest."""
    severity = func.max(_severity_expression())
    count = func.count(Report.id)
    first = func.min(Report.created_at)
    rows = db.execute(
        select(
            Report.message_id,
            count.label("report_count"),
            severity.label("severity"),
            func.array_agg(func.distinct(Report.reason)).label("reasons"),
            first.label("first_reported_at"),
        )
        .where(Report.status == ReportStatus.open)
        .group_by(Report.message_id)
        .order_by(severity.desc(), count.desc(), first, Report.message_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        QueueRow(row.message_id, row.report_count, row.severity, sorted(row.reasons), row[4])
        for row in rows
    ]


def count_open_report_groups(db: Session) -> int:
    return (
        db.scalar(
            select(func.count(func.distinct(Report.message_id))).where(
                Report.status == ReportStatus.open
            )
        )
        or 0
    )


def reports_on(db: Session, message_ids: Sequence[int], *, only_open: bool) -> list[Report]:
    query = select(Report).where(Report.message_id.in_(message_ids)).order_by(Report.id)
    if only_open:
        query = query.where(Report.status == ReportStatus.open)
    return list(db.scalars(query))


def children_of(db: Session, parent_id: int) -> list[Message]:
    return list(
        db.scalars(select(Message).where(Message.parent_id == parent_id).order_by(Message.id))
    )


def live_message_counts(db: Session, tree_ids: Sequence[int]) -> dict[int, int]:
    """Messages not deleted per tree (ix_message_tree_id_depth): the size a tree is shown
    with."""
    rows = db.execute(
        select(Message.tree_id, func.count())
        .where(Message.tree_id.in_(tree_ids), ~Message.deleted)
        .group_by(Message.tree_id)
    )
    return {tree_id: 0 for tree_id in tree_ids} | {row[0]: row[1] for row in rows}


@dataclass(frozen=True)
class AuthorHistory:
    messages: int
    accepted: int
    rejected: int
    deleted: int
    reports_received: int
    red_flags_received: int


def author_history(db: Session, user_id: int) -> AuthorHistory:
    counts = db.execute(
        select(
            func.count(Message.id),
            func.count(Message.id).filter(Message.review_state == ReviewState.accepted),
            func.count(Message.id).filter(Message.review_state == ReviewState.rejected),
            func.count(Message.id).filter(Message.deleted),
            func.coalesce(func.sum(Message.red_flag_count), 0),
        ).where(Message.author_id == user_id)
    ).one()
    reports = (
        db.scalar(
            select(func.count(Report.id))
            .join(Message, Message.id == Report.message_id)
            .where(Message.author_id == user_id)
        )
        or 0
    )
    return AuthorHistory(counts[0], counts[1], counts[2], counts[3], reports, int(counts[4]))


def reports_received(db: Session, user_id: int, *, limit: int = 50) -> list[Report]:
    return list(
        db.scalars(
            select(Report)
            .join(Message, Message.id == Report.message_id)
            .where(Message.author_id == user_id)
            .order_by(Report.id.desc())
            .limit(limit)
        )
    )


def recent_messages(db: Session, user_id: int, *, limit: int = 50) -> list[Message]:
    return list(
        db.scalars(
            select(Message)
            .where(Message.author_id == user_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )


def notes_on(db: Session, user_id: int) -> list[tuple[UserNote, str]]:
    """Moderators' notes on a user, newest first, with their authors' usernames."""
    return [
        (row[0], row[1])
        for row in db.execute(
            select(UserNote, User.username)
            .join(User, User.id == UserNote.author_id)
            .where(UserNote.user_id == user_id)
            .order_by(UserNote.id.desc())
        )
    ]


def contribution_stats(db: Session, user_id: int) -> dict[str, int]:
    prompts = db.scalar(select(func.count(Tree.id)).where(Tree.author_id == user_id)) or 0
    replies = (
        db.scalar(
            select(func.count(Message.id)).where(Message.author_id == user_id, Message.depth > 0)
        )
        or 0
    )
    labels = db.scalar(select(func.count(Label.id)).where(Label.user_id == user_id)) or 0
    rankings = db.scalar(select(func.count(Ranking.id)).where(Ranking.user_id == user_id)) or 0
    reports = db.scalar(select(func.count(Report.id)).where(Report.reporter_id == user_id)) or 0
    return {
        "prompts": prompts,
        "replies": replies,
        "reviews": labels,
        "rankings": rankings,
        "reports_filed": reports,
    }


# --- trollboard ------------------------------------------------------------------------

# The troll score: a weighted sum of what other people and the review process said about a
# user's messages in the window. Red flags and "not appropriate" labels are the strongest
# signals of intent; spam labels and rejections also catch careless users, and a thumbs
# down is the weakest (it often just means "not the best answer").
TROLL_WEIGHTS = {
    "red_flags": 3.0,
    "not_appropriate": 2.0,
    "spam": 2.0,
    "rejected": 1.0,
    "thumbs_down": 0.5,
}
# A label counts as "spam" or "not appropriate" when the reviewer gave it at least this.
LABEL_HIT_THRESHOLD = 0.5


class TrollboardOrder(StrEnum):
    """How the trollboard is sorted."""

    # Highest troll score first: who to look at now.
    score = "score"
    # Least reliable reviewer first (the growth engine's estimate), then by score: whose
    # reviews the engine already trusts least among the users others complained about.
    reliability = "reliability"


@dataclass(frozen=True)
class TrollRow:
    user_id: int
    username: str
    enabled: bool
    red_flags: int
    spam: int
    not_appropriate: int
    rejected: int
    thumbs_down: int
    score: float
    # The growth engine's review reliability estimate and the record behind it.
    review_reliability: float
    reviews_settled: int
    reviews_agreed: int


def _in_window(column: Any, since: datetime | None) -> Any:
    return column >= since if since is not None else literal(True)


def _reactions_received(since: datetime | None) -> Any:
    """Red flags and thumbs down on each author's messages, given in the window."""
    author = aliased(Message)
    return (
        select(
            author.author_id.label("user_id"),
            func.count().filter(Reaction.kind == ReactionKind.red_flag).label("red_flags"),
            func.count().filter(Reaction.kind == ReactionKind.thumbs_down).label("thumbs_down"),
        )
        .join(author, author.id == Reaction.message_id)
        .where(_in_window(Reaction.created_at, since))
        .group_by(author.author_id)
        .subquery()
    )


def _label_hits_received(since: datetime | None) -> Any:
    """Reviews in the window that called each author's messages spam or not appropriate."""
    author = aliased(Message)

    def label_value(name: str) -> Any:
        return func.coalesce(cast(Label.values[name].astext, Float), 0.0)

    return (
        select(
            author.author_id.label("user_id"),
            func.count().filter(label_value("spam") >= LABEL_HIT_THRESHOLD).label("spam"),
            func.count()
            .filter(label_value("not_appropriate") >= LABEL_HIT_THRESHOLD)
            .label("not_appropriate"),
        )
        .join(author, author.id == Label.message_id)
        .where(_in_window(Label.created_at, since))
        .group_by(author.author_id)
        .subquery()
    )


def _rejections(since: datetime | None) -> Any:
    """Each author's messages rejected in the window."""
    return (
        select(Message.author_id.label("user_id"), func.count().label("rejected"))
        .where(
            Message.review_state == ReviewState.rejected,
            _in_window(func.coalesce(Message.reviewed_at, Message.created_at), since),
        )
        .group_by(Message.author_id)
        .subquery()
    )


def _troll_score(signals: dict[str, Any]) -> Any:
    """TROLL_WEIGHTS applied to the signal counts, as SQL."""
    terms = [signals[name] * weight for name, weight in TROLL_WEIGHTS.items()]
    return functools.reduce(operator.add, terms)


def trollboard(
    db: Session, *, since: datetime | None, order: TrollboardOrder, limit: int
) -> list[TrollRow]:
    """Users with a troll score over the messages and signals since `since`, with their
    review reliability, in the given order."""
    reactions, labels, rejected = (
        _reactions_received(since),
        _label_hits_received(since),
        _rejections(since),
    )
    signals = {
        "red_flags": func.coalesce(reactions.c.red_flags, 0),
        "spam": func.coalesce(labels.c.spam, 0),
        "not_appropriate": func.coalesce(labels.c.not_appropriate, 0),
        "rejected": func.coalesce(rejected.c.rejected, 0),
        "thumbs_down": func.coalesce(reactions.c.thumbs_down, 0),
    }
    score = _troll_score(signals)
    reliability = review_reliability_expression()
    ordering = {
        TrollboardOrder.score: (score.desc(), User.id),
        TrollboardOrder.reliability: (reliability.asc(), score.desc(), User.id),
    }
    rows = db.execute(
        select(
            User.id.label("user_id"),
            User.username,
            User.enabled,
            *(value.label(name) for name, value in signals.items()),
            score.label("score"),
            reliability.label("review_reliability"),
            func.coalesce(VolunteerReliability.reviews_settled, 0).label("reviews_settled"),
            func.coalesce(VolunteerReliability.reviews_agreed, 0).label("reviews_agreed"),
        )
        .outerjoin(reactions, reactions.c.user_id == User.id)
        .outerjoin(labels, labels.c.user_id == User.id)
        .outerjoin(rejected, rejected.c.user_id == User.id)
        .outerjoin(VolunteerReliability, VolunteerReliability.user_id == User.id)
        .where(score > 0)
        .order_by(*ordering[order])
        .limit(limit)
    ).all()
    return [TrollRow(**{**row._mapping, "score": float(row.score)}) for row in rows]


# --- audit log -------------------------------------------------------------------------


def audit_events(
    db: Session,
    *,
    actor_id: int | None,
    action: str | None,
    target_type: str | None,
    target_id: int | None,
    limit: int,
    offset: int,
) -> list[tuple[AuditEvent, str | None]]:
    """Newest first, with the actor's username (None for the system)."""
    query = (
        select(AuditEvent, User.username)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.id.desc())
    )
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if target_type:
        query = query.where(AuditEvent.target_type == target_type)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == target_id)
    return [(row[0], row[1]) for row in db.execute(query.limit(limit).offset(offset))]


def audit_actions(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


# --- status ----------------------------------------------------------------------------


def trees_per_state_and_language(db: Session) -> list[tuple[str, str, int]]:
    return [
        (row[0], row[1], row[2])
        for row in db.execute(
            select(Tree.language, Tree.state, func.count())
            .group_by(Tree.language, Tree.state)
            .order_by(Tree.language, Tree.state)
        )
    ]


def lottery_queues(db: Session) -> list[tuple[str, int, int]]:
    """(language, waiting prompts, distinct waiting authors)."""
    return [
        (row[0], row[1], row[2])
        for row in db.execute(
            select(Tree.language, func.count(), func.count(func.distinct(Tree.author_id)))
            .where(Tree.state == TreeState.lottery_waiting)
            .group_by(Tree.language)
            .order_by(Tree.language)
        )
    ]


def open_leases(db: Session) -> list[tuple[str, int]]:
    return [
        (row[0], row[1])
        for row in db.execute(
            select(Task.kind, func.count())
            .where(Task.state == TaskState.leased)
            .group_by(Task.kind)
            .order_by(Task.kind)
        )
    ]


def open_work_per_kind(db: Session) -> list[tuple[str, dict[str, int]]]:
    """(language, {task kind: items open for it}), read through the partial indexes that
    hold only open items (the same flags the hand-out reads)."""
    prompter = Message.role == MessageRole.prompter
    assistant = Message.role == MessageRole.assistant
    kinds = {
        TaskKind.review_prompt: Message.open_for_review & (Message.depth == 0),
        TaskKind.review_prompter_reply: Message.open_for_review & prompter & (Message.depth > 0),
        TaskKind.review_assistant_reply: Message.open_for_review & assistant,
        TaskKind.reply_assistant: Message.open_for_reply & prompter,
        TaskKind.reply_prompter: Message.open_for_reply & assistant,
        TaskKind.rank_assistant_replies: Message.open_for_ranking & prompter,
        TaskKind.rank_prompter_replies: Message.open_for_ranking & assistant,
    }
    rows = db.execute(
        select(
            Message.language,
            *(func.count().filter(condition) for condition in kinds.values()),
        )
        .where(Message.open_for_review | Message.open_for_reply | Message.open_for_ranking)
        .group_by(Message.language)
        .order_by(Message.language)
    )
    return [(row[0], {kind.value: int(row[i + 1]) for i, kind in enumerate(kinds)}) for row in rows]


# --- reports, revisions, actors -------------------------------------------------------


def insert_report(
    db: Session, message_id: int, reporter_id: int, reason: str, text: str | None
) -> int | None:
    """The new report's id; None when this reporter already reported the message (the
    unique (message_id, reporter_id) index)."""
    return db.scalar(
        insert(Report)
        .values(message_id=message_id, reporter_id=reporter_id, reason=reason, text=text)
        .on_conflict_do_nothing(index_elements=[Report.message_id, Report.reporter_id])
        .returning(Report.id)
    )


def has_reported(db: Session, message_id: int, reporter_id: int) -> bool:
    return (
        db.scalar(
            select(Report.id).where(
                Report.message_id == message_id, Report.reporter_id == reporter_id
            )
        )
        is not None
    )


def resolve_open_reports(
    db: Session, message_ids: Sequence[int], status: str, resolved_by_id: int, at: datetime
) -> int:
    """Close the open reports on these messages; returns how many."""
    result = db.execute(
        update(Report)
        .where(Report.message_id.in_(message_ids), Report.status == ReportStatus.open)
        .values(status=status, resolved_by_id=resolved_by_id, resolved_at=at)
        .returning(Report.id)
    )
    return len(result.all())


def revisions_of(db: Session, message_id: int) -> list[MessageRevision]:
    return list(
        db.scalars(
            select(MessageRevision)
            .where(MessageRevision.message_id == message_id)
            .order_by(MessageRevision.id)
        )
    )


def user_id_by_username(db: Session, username: str) -> int | None:
    """Case-insensitive, as moderators type names."""
    return db.scalar(select(User.id).where(User.username.ilike(username)))
