"""A corpus grown once per module by the simulated crowd, with real commits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.models import Message, User
from hedgerow.sim.simulate import simulate
from tests.conftest import ALL_TABLES
from tests.growth.factories import override_settings

# User ids far from any other number in a release, so a test can grep for them.
FIRST_USER_ID = 987_650_000_001


@dataclass
class Corpus:
    maker: sessionmaker[Session]
    deleted_user_id: int


def use_small_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    override_settings(
        monkeypatch,
        tree_goal_size=4,
        tree_max_children=2,
        growth_policy="fixed",
        reviews_per_message=1,
        rankings_per_sibling_set=1,
        growing_trees_per_language=4,
    )


@pytest.fixture(scope="module")
def corpus(engine: Engine) -> Iterator[Corpus]:
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_small_trees(monkeypatch)
        with engine.begin() as conn:
            conn.execute(text(f"ALTER SEQUENCE user_id_seq RESTART WITH {FIRST_USER_ID}"))
        report = simulate(maker, volunteers=8, prompts=8, seed=11, max_steps=700)
        assert report.violations == []
        assert report.states.get("ready_for_export", 0) >= 3, report.states
    with maker.begin() as db:
        # The simulated crowd signs its texts with its user ids ("from volunteer 98765...");
        # people do not, and the privacy test looks for those ids in the release.
        db.execute(
            update(Message).values(
                text=func.regexp_replace(Message.text, r"from volunteer \d+", "from a volunteer")
            )
        )
        # Simulated volunteers have no email; real ones do, and it must not leak.
        db.execute(update(User).values(email=User.username + "@example.org"))
        # One author deletes their account: their contributions stay, anonymised.
        deleted_user_id = db.scalars(
            select(Message.author_id).where(Message.depth > 0).order_by(Message.id)
        ).first()
        assert deleted_user_id is not None
        db.execute(
            update(User).where(User.id == deleted_user_id).values(deleted_at=datetime.now(UTC))
        )
    yield Corpus(maker=maker, deleted_user_id=deleted_user_id)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture
def releases_dir(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An empty releases root, and no release rows left from an earlier test."""
    path = tmp_path_factory.mktemp("releases")
    override_settings(monkeypatch, releases_dir=path)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM release"))
    return path
