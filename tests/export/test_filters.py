"""Filters choose the trees and messages of a release, and are recorded in its manifest."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Select, delete, func, select

from hedgerow.export import queries
from hedgerow.export.run import run_export
from hedgerow.export.schemas import ExportFilters
from hedgerow.models import Label, Message, Ranking, ReviewState, Tree, TreeState, User
from tests.export.conftest import Corpus
from tests.factories import make_user


def _rows(directory: Path) -> list[dict]:
    return pq.read_table(directory / "messages.parquet").to_pylist()


def test_including_spam_and_deleted_exports_every_message_of_ready_trees(
    corpus: Corpus, releases_dir: Path
) -> None:
    filters = ExportFilters(include_spam=True, include_deleted=True)
    rows = _rows(run_export(corpus.maker, filters=filters).directory)
    with corpus.maker() as db:
        in_ready_trees = select(Message).join(Tree, Tree.id == Message.tree_id)
        in_ready_trees = in_ready_trees.where(Tree.state == TreeState.ready_for_export)
        total = db.scalar(select(func.count()).select_from(in_ready_trees.subquery()))
        rejected = db.scalar(
            select(func.count()).select_from(
                in_ready_trees.where(Message.review_state == ReviewState.rejected).subquery()
            )
        )
    assert rejected, "the simulated trolls' spam was rejected in some ready tree"
    assert len(rows) == total
    assert sum(row["review_result"] is False for row in rows) == rejected


def test_states_filter_exports_only_those_trees(corpus: Corpus, releases_dir: Path) -> None:
    states = [TreeState.growing.value, TreeState.ranking.value, TreeState.ready_for_export.value]
    outcome = run_export(corpus.maker, filters=ExportFilters(states=states))
    rows = _rows(outcome.directory)
    with corpus.maker() as db:
        trees = db.scalar(select(func.count()).where(Tree.state.in_(states)))
    assert {row["tree_state"] for row in rows} <= set(states)
    assert len({row["message_tree_id"] for row in rows}) == trees
    # A message still under review has no decision, and so no confidence in one.
    pending = [row for row in rows if row["review_result"] is None]
    assert all(row["review_confidence"] is None for row in pending)
    manifest = json.loads((outcome.directory / "manifest.json").read_text())
    assert manifest["filters"]["states"] == states


def test_date_range_selects_trees_by_creation_time(corpus: Corpus, releases_dir: Path) -> None:
    with corpus.maker() as db:
        first = db.scalar(select(func.min(Tree.created_at)))
    assert first is not None
    before_any = ExportFilters(created_until=first)
    assert run_export(corpus.maker, filters=before_any).stats.trees == 0
    from_first = ExportFilters(created_from=first, created_until=first + timedelta(days=1))
    everything = run_export(corpus.maker).stats.trees
    assert run_export(corpus.maker, filters=from_first).stats.trees == everything > 0


@pytest.mark.parametrize(
    "filters",
    [
        ExportFilters(),
        ExportFilters(
            states=[state.value for state in TreeState],
            include_deleted=True,
            include_spam=True,
            include_synthetic=True,
        ),
    ],
    ids=["default", "everything"],
)
def test_contributors_are_the_authors_reviewers_and_rankers_of_exported_messages(
    corpus: Corpus, filters: ExportFilters
) -> None:
    with corpus.maker.begin() as db:
        # Someone who only reviewed, and someone who only ranked, an exported prompt.
        prompt = db.scalars(
            select(Message)
            .join(Tree, Tree.id == Message.tree_id)
            .where(Tree.state == TreeState.ready_for_export, Message.parent_id.is_(None))
        ).first()
        assert prompt is not None
        reviewer, ranker = make_user(db), make_user(db)
        db.flush()
        db.add(Label(message_id=prompt.id, user_id=reviewer.id, values={}, guideline_version="1"))
        db.add(Ranking(parent_message_id=prompt.id, user_id=ranker.id, ordered_message_ids=[]))
        added = (reviewer.id, ranker.id)
    try:
        with corpus.maker() as db:
            exported = {message.id: message.author_id for message in db.scalars(_exported(filters))}
            people = set(exported.values())
            for model, column in ((Label, Label.message_id), (Ranking, Ranking.parent_message_id)):
                people |= {
                    user_id
                    for user_id, message_id in db.execute(select(model.user_id, column))
                    if message_id in exported
                }
            counted = queries.count_contributors(db.connection(), filters)
    finally:
        with corpus.maker.begin() as db:
            db.execute(delete(Label).where(Label.user_id.in_(added)))
            db.execute(delete(Ranking).where(Ranking.user_id.in_(added)))
            db.execute(delete(User).where(User.id.in_(added)))
    assert set(added) <= people
    assert counted == len(people)


def _exported(filters: ExportFilters) -> Select[tuple[Message]]:
    """The messages the filters select in SQL (before orphans are dropped)."""
    query = select(Message).join(Tree, Tree.id == Message.tree_id)
    query = query.where(Tree.state.in_(filters.states))
    if not filters.include_deleted:
        query = query.where(Message.deleted.is_(False))
    if not filters.include_spam:
        query = query.where(Message.review_state != ReviewState.rejected)
    if not filters.include_synthetic:
        query = query.where(Message.synthetic.is_(False))
    return query
