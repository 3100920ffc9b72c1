"""SQL for scores, leaderboards and the site statistics.

Consensus ranks are stored 0 = best (as in the oasst format).

The score of a contribution (see service.SCORE_FORMULA for the words):
  a message accepted by review     10 points, +10 more if its siblings ranked it first,
                                   +4 if second
  a message still under review      1 point (it counts fully once accepted)
  a message rejected or deleted     0 points
  a review (labels)                 2 points
  a ranking                         3 points
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Float,
    Integer,
    Select,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from hedgerow.models import Label, Message, Ranking, ReviewState, Task, TaskState, Tree, User

ACCEPTED_POINTS = 10
FIRST_RANK_BONUS = 10
SECOND_RANK_BONUS = 4
PENDING_POINTS = 1
REVIEW_POINTS = 2
RANKING_POINTS = 3


def _message_points():
    return case(
        (or_(Message.deleted, Message.review_state == ReviewState.rejected), 0),
        (
            Message.review_state == ReviewState.accepted,
            ACCEPTED_POINTS
            + case(
                (Message.consensus_rank == 0, FIRST_RANK_BONUS),
                (Message.consensus_rank == 1, SECOND_RANK_BONUS),
                else_=0,
            ),
        ),
        else_=PENDING_POINTS,
    )


def contributions(since: datetime | None, user_id: int | None = None):
    """Every scored contribution as (user_id, created_at, points), optionally for one user."""
    messages = select(
        Message.author_id.label("user_id"),
        Message.created_at.label("created_at"),
        _message_points().label("points"),
    ).where(Message.synthetic.is_(False))
    labels = select(
        Label.user_id, Label.created_at, literal(REVIEW_POINTS, Integer).label("points")
    )
    rankings = select(
        Ranking.user_id, Ranking.created_at, literal(RANKING_POINTS, Integer).label("points")
    )
    if since is not None:
        messages = messages.where(Message.created_at >= since)
        labels = labels.where(Label.created_at >= since)
        rankings = rankings.where(Ranking.created_at >= since)
    if user_id is not None:
        messages = messages.where(Message.author_id == user_id)
        labels = labels.where(Label.user_id == user_id)
        rankings = rankings.where(Ranking.user_id == user_id)
    return union_all(messages, labels, rankings).subquery("contribution")


def leaderboard_rows(
    db: Session, since: datetime | None, viewer_id: int, limit: int
) -> tuple[list, object | None]:
    """The top `limit` rows (rank, user, score, contributions) and the viewer's own row.

    Users who opted out are left out, except that the viewer always sees their own row.
    """
    contribution = contributions(since)
    totals = (
        select(
            contribution.c.user_id,
            func.sum(contribution.c.points).label("score"),
            func.count().label("contributions"),
        )
        .group_by(contribution.c.user_id)
        .subquery("totals")
    )
    ranked = (
        select(
            func.rank()
            .over(order_by=(totals.c.score.desc(), totals.c.contributions.desc()))
            .label("rank"),
            User.id.label("user_id"),
            User.display_name,
            User.show_on_leaderboard,
            totals.c.score,
            totals.c.contributions,
        )
        .join(User, User.id == totals.c.user_id)
        .where(
            User.deleted_at.is_(None),
            User.enabled.is_(True),
            or_(User.show_on_leaderboard.is_(True), User.id == viewer_id),
        )
        .subquery("ranked")
    )
    top = list(db.execute(select(ranked).order_by(ranked.c.rank, ranked.c.user_id).limit(limit)))
    own = db.execute(select(ranked).where(ranked.c.user_id == viewer_id)).first()
    return top, own


def user_totals(db: Session, user_id: int) -> tuple[int, int]:
    contribution = contributions(None, user_id)
    row = db.execute(select(func.coalesce(func.sum(contribution.c.points), 0), func.count())).one()
    return int(row[0]), int(row[1])


def user_active_days(db: Session, user_id: int, since: datetime) -> list:
    contribution = contributions(since, user_id)
    day = func.date(func.timezone("UTC", contribution.c.created_at))
    return list(db.scalars(select(day).distinct().order_by(day.desc())))


def user_message_counts(db: Session, user_id: int) -> dict[str, int]:
    rows = db.execute(
        select(Message.review_state, func.count())
        .where(Message.author_id == user_id, Message.deleted.is_(False))
        .group_by(Message.review_state)
    )
    return {state: count for state, count in rows}


def recent_tasks(db: Session, user_id: int, limit: int) -> list[Task]:
    return list(
        db.scalars(
            select(Task)
            .where(Task.user_id == user_id, Task.state == TaskState.done)
            .order_by(Task.finished_at.desc())
            .limit(limit)
        )
    )


# --- site statistics ----------------------------------------------------------------


def contributions_per_day(db: Session, since: datetime) -> list:
    contribution = contributions(since)
    day = func.date(func.timezone("UTC", contribution.c.created_at)).label("day")
    return list(db.execute(select(day, func.count()).group_by(day).order_by(day)))


def trees_by_state(db: Session) -> list:
    return list(
        db.execute(select(Tree.state, func.count()).group_by(Tree.state).order_by(Tree.state))
    )


def messages_by_language(db: Session) -> list:
    return list(
        db.execute(
            select(Message.language, func.count())
            .where(Message.deleted.is_(False))
            .group_by(Message.language)
            .order_by(func.count().desc())
        )
    )


def label_means(db: Session) -> list:
    """Per label: how many reviews gave it and the mean value (0..1)."""
    entry = func.jsonb_each_text(Label.values).table_valued("key", "value").alias("entry")
    value = cast(entry.c.value, Float)
    query: Select = (
        select(entry.c.key, func.count(), func.avg(value))
        .select_from(Label)
        .join(entry, text("true"))
        .group_by(entry.c.key)
        .order_by(entry.c.key)
    )
    return list(db.execute(query))


# --- live agreement (read by the periodic job, never in a request) --------------------


def recent_label_values(db: Session, limit: int) -> list[tuple[int, dict]]:
    """(message id, values) of the newest `limit` labels given to a message's current text
    (walks label's primary key backwards)."""
    return [
        (message_id, values)
        for message_id, values in db.execute(
            select(Label.message_id, Label.values)
            .where(~Label.before_edit)
            .order_by(Label.id.desc())
            .limit(limit)
        )
    ]


def recent_rankings(db: Session, limit: int) -> list[tuple]:
    """The newest `limit` rankings as (parent id, language, user id, order, grades,
    not_rankable, before_edit), the positions export.agreement reads after the first."""
    return list(
        db.execute(
            select(
                Ranking.parent_message_id,
                Message.language,
                Ranking.user_id,
                Ranking.ordered_message_ids,
                Ranking.grades,
                Ranking.not_rankable,
                Ranking.before_edit,
            )
            .join(Message, Message.id == Ranking.parent_message_id)
            .order_by(Ranking.id.desc())
            .limit(limit)
        )
    )


def recent_review_counts(db: Session, limit: int) -> list[int]:
    """Reviews that decided each of the newest `limit` decided messages."""
    return list(
        db.scalars(
            select(Message.review_count)
            .where(Message.review_state != ReviewState.pending, ~Message.deleted)
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )
