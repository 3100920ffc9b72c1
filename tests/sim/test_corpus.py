"""The synthetic corpus the benchmarks run on looks like a corpus the rules would leave."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.config import get_settings
from hedgerow.models import Tree, TreeState
from hedgerow.sim.corpus import LANGUAGES, seed


def test_the_seed_fills_each_languages_growing_slots_and_no_more(
    committing_sessionmaker: sessionmaker[Session], database_url: str
) -> None:
    seed(database_url, messages=3_000, users=200, seed_value=5)
    with committing_sessionmaker() as db:
        growing = dict(
            db.execute(
                select(Tree.language, func.count())
                .where(Tree.state == TreeState.growing)
                .group_by(Tree.language)
            ).all()
        )
    limit = get_settings().growing_trees_per_language
    assert growing == {language: limit for language in LANGUAGES}
