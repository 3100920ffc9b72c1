"""Scores, levels, streaks, leaderboards and the site statistics.

Computed from the contributions themselves (messages, labels, rankings), so a review that
later rejects a message, or a ranking that puts a reply first, changes its author's score
without any bookkeeping.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.export.agreement import AgreementTally, agreement_report
from hedgerow.export.card import label_levels
from hedgerow.i18n import gettext as _
from hedgerow.i18n import lazy_gettext
from hedgerow.models import User
from hedgerow.redis_client import get_redis
from hedgerow.stats import queries

Period = Literal["day", "week", "month", "all"]
PERIODS = {
    "day": lazy_gettext("Today"),
    "week": lazy_gettext("This week"),
    "month": lazy_gettext("This month"),
    "all": lazy_gettext("All time"),
}

SCORE_FORMULA = (
    (lazy_gettext("A message (prompt or reply) accepted by review"), queries.ACCEPTED_POINTS),
    (lazy_gettext("… and ranked first among its siblings"), queries.FIRST_RANK_BONUS),
    (lazy_gettext("… or ranked second"), queries.SECOND_RANK_BONUS),
    (lazy_gettext("A message still under review"), queries.PENDING_POINTS),
    (lazy_gettext("A message rejected by review or deleted"), 0),
    (lazy_gettext("A review"), queries.REVIEW_POINTS),
    (lazy_gettext("A ranking"), queries.RANKING_POINTS),
)
# Level n needs 10·n² points: early levels come quickly, later ones need sustained good
# work rather than a burst of volume.
POINTS_PER_LEVEL_UNIT = 10
STREAK_LOOKBACK_DAYS = 366
RECENT_ACTIVITY = 8


@dataclass
class LeaderboardRow:
    rank: int
    user_id: int
    display_name: str
    score: int
    contributions: int
    is_viewer: bool
    hidden_from_others: bool


@dataclass
class Leaderboard:
    period: str
    rows: list[LeaderboardRow]
    viewer_row: LeaderboardRow | None
    viewer_in_top: bool


@dataclass
class UserSummary:
    score: int
    contributions: int
    level: int
    points_to_next_level: int
    streak_days: int
    accepted: int
    pending: int
    rejected: int
    recent: list = field(default_factory=list)


def period_start(period: str, now: datetime | None = None) -> datetime | None:
    now = now or datetime.now(UTC)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=today.weekday())
    if period == "month":
        return today.replace(day=1)
    if period == "all":
        return None
    raise AppError("invalid_period", _("The period must be day, week, month or all."), 422)


def level_for(score: int) -> int:
    return 1 + math.isqrt(max(score, 0) // POINTS_PER_LEVEL_UNIT)


def points_for_level(level: int) -> int:
    return POINTS_PER_LEVEL_UNIT * (level - 1) ** 2


def streak(days: list[date], today: date) -> int:
    """Consecutive days with a contribution, ending today (or yesterday: today's not over)."""
    active = set(days)
    current = today if today in active else today - timedelta(days=1)
    count = 0
    while current in active:
        count += 1
        current -= timedelta(days=1)
    return count


def _row(row: object, viewer_id: int) -> LeaderboardRow:
    return LeaderboardRow(
        rank=row.rank,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        display_name=row.display_name,  # type: ignore[attr-defined]
        score=int(row.score),  # type: ignore[attr-defined]
        contributions=int(row.contributions),  # type: ignore[attr-defined]
        is_viewer=row.user_id == viewer_id,  # type: ignore[attr-defined]
        hidden_from_others=not row.show_on_leaderboard,  # type: ignore[attr-defined]
    )


def leaderboard(db: Session, viewer: User, *, period: str = "week", limit: int = 20) -> Leaderboard:
    since = period_start(period)
    top, own = queries.leaderboard_rows(db, since, viewer.id, limit)
    rows = [_row(row, viewer.id) for row in top]
    viewer_row = _row(own, viewer.id) if own is not None else None
    return Leaderboard(
        period=period,
        rows=rows,
        viewer_row=viewer_row,
        viewer_in_top=any(row.is_viewer for row in rows),
    )


# Every dashboard view shows today's top contributors; they are computed at most this
# often, not on every page load (the aggregate reads all of today's contributions).
TOP_CONTRIBUTORS_CACHE_SECONDS = 60


@dataclass(frozen=True)
class TopContributor:
    user_id: int
    display_name: str
    score: int


def top_contributors(db: Session, *, period: str = "day", limit: int = 5) -> list[TopContributor]:
    """The public top of a period (opted-out users left out), cached briefly in Redis."""
    key = f"hedgerow:stats:top:{period}:{limit}"
    cached = get_redis().get(key)
    if cached is not None:
        return [TopContributor(**row) for row in json.loads(str(cached))]
    top, _own = queries.leaderboard_rows(db, period_start(period), viewer_id=0, limit=limit)
    rows = [TopContributor(row.user_id, row.display_name, int(row.score)) for row in top]
    get_redis().set(
        key,
        json.dumps([row.__dict__ for row in rows]),
        ex=TOP_CONTRIBUTORS_CACHE_SECONDS,
    )
    return rows


def user_summary(db: Session, user: User, now: datetime | None = None) -> UserSummary:
    now = now or datetime.now(UTC)
    score, count = queries.user_totals(db, user.id)
    days = queries.user_active_days(db, user.id, now - timedelta(days=STREAK_LOOKBACK_DAYS))
    states = queries.user_message_counts(db, user.id)
    level = level_for(score)
    return UserSummary(
        score=score,
        contributions=count,
        level=level,
        points_to_next_level=points_for_level(level + 1) - score,
        streak_days=streak(days, now.date()),
        accepted=states.get("accepted", 0),
        pending=states.get("pending", 0),
        rejected=states.get("rejected", 0),
        recent=queries.recent_tasks(db, user.id, RECENT_ACTIVITY),
    )


def set_leaderboard_visibility(db: Session, user: User, visible: bool) -> None:
    user.show_on_leaderboard = visible
    db.flush()


@dataclass
class SiteStats:
    per_day: list[tuple[str, int]]
    trees_by_state: list[tuple[str, int]]
    languages: list[tuple[str, int]]
    labels: list[tuple[str, int, float]]

    @property
    def label_means(self) -> list[tuple[str, float]]:
        return [(name, mean) for name, _count, mean in self.labels]


def site_stats(db: Session, *, days: int = 30, now: datetime | None = None) -> SiteStats:
    now = now or datetime.now(UTC)
    first = now.date() - timedelta(days=days - 1)
    counted = {
        day: count
        for day, count in queries.contributions_per_day(
            db, datetime(first.year, first.month, first.day, tzinfo=UTC)
        )
    }
    per_day = [
        ((first + timedelta(days=n)).isoformat(), int(counted.get(first + timedelta(days=n), 0)))
        for n in range(days)
    ]
    return SiteStats(
        per_day=per_day,
        trees_by_state=[(state, int(count)) for state, count in queries.trees_by_state(db)],
        languages=[(language, int(count)) for language, count in queries.messages_by_language(db)],
        labels=[(name, int(count), float(mean)) for name, count, mean in queries.label_means(db)],
    )


# --- live agreement -----------------------------------------------------------------------

# The newest labels, rankings and decided messages the live figures are measured on: enough
# for stable figures, few enough that the job stays a few hundred milliseconds at any size.
LIVE_AGREEMENT_WINDOW = 20_000
LIVE_AGREEMENT_KEY = "stats:agreement"


def measure_live_agreement(db: Session, *, window: int = LIVE_AGREEMENT_WINDOW) -> dict[str, Any]:
    """The release agreement figures (Krippendorff's alpha per label, Kendall's W per
    language, reviewers per message) over the newest work, by the export's own tally."""
    tally = AgreementTally()
    per_message: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for message_id, values in queries.recent_label_values(db, window):
        for name, value in values.items():
            per_message[message_id][name].append(float(value))
    for labels in per_message.values():
        for name, given in labels.items():
            tally.add_label_unit(name, given)
    per_set: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
    for parent_id, language, *ranking in queries.recent_rankings(db, window):
        per_set[parent_id, language].append(tuple(ranking))
    for (_parent_id, language), rankings in per_set.items():
        tally.add_sibling_set(language, rankings)
    tally.reviews_per_message.update(queries.recent_review_counts(db, window))
    return {
        **agreement_report(tally, label_levels()),
        "window": window,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def refresh_live_agreement(db: Session) -> dict[str, Any]:
    figures = measure_live_agreement(db)
    get_redis().set(LIVE_AGREEMENT_KEY, json.dumps(figures))
    return figures


def live_agreement() -> dict[str, Any] | None:
    """The figures the periodic job measured last (None before its first run)."""
    cached = get_redis().get(LIVE_AGREEMENT_KEY)
    return None if cached is None else json.loads(str(cached))
