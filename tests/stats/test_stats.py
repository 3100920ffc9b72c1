"""Scores, leaderboard, dashboard figures and the statistics page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.export.agreement import AgreementTally, krippendorff_alpha
from hedgerow.models import Label, Ranking, ReviewState, TreeState
from hedgerow.stats import service
from tests.factories import csrf_token, make_user
from tests.growth.factories import add_reply, make_tree
from tests.page_helpers import log_in_as


def test_accepted_and_top_ranked_work_outscores_volume(db: Session) -> None:
    careful, prolific = make_user(db), make_user(db)
    tree, root = make_tree(db, make_user(db))
    best = add_reply(db, tree, root, careful)
    best.consensus_rank = 0  # the best of its siblings
    for _ in range(5):
        add_reply(db, tree, root, prolific, review_state=ReviewState.rejected)
    add_reply(db, tree, root, prolific, review_state=ReviewState.pending)
    db.flush()

    board = service.leaderboard(db, careful, period="all")
    scores = {row.user_id: row.score for row in board.rows}

    assert scores[careful.id] == 20  # accepted 10 + first rank 10
    assert scores[prolific.id] == 1  # five rejected (0) and one pending (1)
    assert board.rows[0].user_id != prolific.id


def test_reviews_and_rankings_score_and_periods_filter(db: Session) -> None:
    reviewer = make_user(db)
    _tree, root = make_tree(db, make_user(db))
    db.add(
        Label(message_id=root.id, user_id=reviewer.id, values={"spam": 0.0}, guideline_version="x")
    )
    old = Ranking(parent_message_id=root.id, user_id=reviewer.id, ordered_message_ids=[])
    old.created_at = datetime.now(UTC) - timedelta(days=40)
    db.add(old)
    db.flush()

    week = service.leaderboard(db, reviewer, period="week")
    all_time = service.leaderboard(db, reviewer, period="all")

    assert week.viewer_row is not None and week.viewer_row.score == 2
    assert all_time.viewer_row is not None and all_time.viewer_row.score == 5


def test_opted_out_users_are_hidden_from_others_but_see_their_own_row(
    db: Session, client: TestClient
) -> None:
    shy, other = make_user(db), make_user(db)
    _tree, _root = make_tree(db, shy)
    shy.show_on_leaderboard = False
    db.flush()

    assert shy.id not in {row.user_id for row in service.leaderboard(db, other, period="all").rows}
    own = service.leaderboard(db, shy, period="all")
    assert own.viewer_row is not None and own.viewer_row.hidden_from_others

    log_in_as(client, db, shy)
    page = client.get("/leaderboard?period=all")
    assert f"{shy.display_name}</span> (you)" in page.text
    response = client.post(
        "/leaderboard/visibility",
        data={"csrf_token": csrf_token(client), "visible": "1", "period": "all"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    db.refresh(shy)
    assert shy.show_on_leaderboard


def test_bad_period_is_a_422(db: Session, client: TestClient) -> None:
    log_in_as(client, db, make_user(db))
    response = client.get("/leaderboard?period=decade", headers={"Accept": "text/html"})
    assert response.status_code == 422


def test_streaks_and_levels() -> None:
    today = date(2026, 11, 22)
    days = [today, today - timedelta(days=1), today - timedelta(days=2), today - timedelta(days=4)]
    assert service.streak(days, today) == 3
    assert service.streak(days[1:], today) == 2  # today is not over yet
    assert service.streak([today - timedelta(days=2)], today) == 0
    assert [service.level_for(points) for points in (0, 9, 10, 39, 40, 90)] == [1, 1, 2, 2, 3, 4]


def test_dashboard_and_stats_pages_show_the_numbers(db: Session, client: TestClient) -> None:
    user = make_user(db)
    _tree, root = make_tree(db, user, state=TreeState.ready_for_export)
    db.add(
        Label(
            message_id=root.id,
            user_id=make_user(db).id,
            values={"spam": 0.0, "quality": 0.5},
            guideline_version="x",
        )
    )
    db.flush()
    log_in_as(client, db, user)

    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200
    assert 'data-testid="score">10<' in dashboard.text

    stats = client.get("/stats")
    assert stats.status_code == 200
    # All four charts are drawn (each is one image), none is empty.
    assert stats.text.count('role="img"') == 4 and "No data yet" not in stats.text
    assert ">ready for export<" in stats.text
    assert ">Quality<" in stats.text and ">0.50<" in stats.text


def test_my_contributions_lists_my_messages(db: Session, client: TestClient) -> None:
    user = make_user(db)
    tree, root = make_tree(db, user)
    log_in_as(client, db, user)
    page = client.get("/me/contributions")
    assert f"/trees/{tree.id}?message={root.id}" in page.text


def test_todays_top_contributors_leave_out_opted_out_users_and_are_cached(db: Session) -> None:
    shown, hidden = make_user(db), make_user(db)
    make_tree(db, shown)
    make_tree(db, hidden)
    hidden.show_on_leaderboard = False
    db.flush()

    top = service.top_contributors(db, period="day")
    assert [row.user_id for row in top] == [shown.id]

    make_tree(db, make_user(db))  # within the cache period the same answer comes back
    assert service.top_contributors(db, period="day") == top


def test_live_agreement_is_measured_by_the_job_with_the_exports_figures(
    db: Session, client: TestClient
) -> None:
    """The /stats figures come from the export's own tally (alpha per label, W per language,
    reviews per message) over the newest work; the page says when none were measured."""
    viewer = make_user(db)
    log_in_as(client, db, viewer)
    assert "Not measured yet" in client.get("/stats").text

    reviewers = [make_user(db) for _ in range(3)]
    tree, root = make_tree(db, make_user(db))
    first = add_reply(db, tree, root, make_user(db))
    second = add_reply(db, tree, root, make_user(db))
    # Spam: the reviewers agree on the root and split on the first reply.
    given = {root.id: (0.0, 0.0, 0.0), first.id: (0.0, 1.0, 0.0)}
    for message_id, values in given.items():
        for reviewer, value in zip(reviewers, values, strict=True):
            db.add(
                Label(
                    message_id=message_id,
                    user_id=reviewer.id,
                    values={"spam": value},
                    guideline_version="x",
                )
            )
    for ranker in reviewers[:2]:
        db.add(
            Ranking(
                parent_message_id=root.id,
                user_id=ranker.id,
                ordered_message_ids=[second.id, first.id],
                not_rankable=False,
            )
        )
    db.flush()

    figures = service.refresh_live_agreement(db)
    tally = AgreementTally()
    tally.add_label_unit("spam", [0.0, 0.0, 0.0])
    tally.add_label_unit("spam", [0.0, 1.0, 0.0])
    expected_alpha = krippendorff_alpha(tally.coincidences["spam"], "nominal")
    assert figures["labels"]["spam"]["alpha"] == pytest.approx(expected_alpha)
    assert figures["labels"]["spam"]["units"] == 2
    assert figures["rankings"]["by_language"]["en"] == {"mean_w": 1.0, "sibling_sets": 1}
    assert figures["reviewers_per_message"]["mean"] is not None

    page = client.get("/stats").text
    assert "Not measured yet" not in page
    assert f"{expected_alpha:.2f}" in page
    assert service.live_agreement() == figures
