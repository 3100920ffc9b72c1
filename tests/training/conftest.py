"""A published release grown by the simulated crowd once per module, and settings that
train the tiny model on it in seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.config import get_settings
from hedgerow.export.run import run_export
from hedgerow.export.shapes import MessageIds, split_of
from hedgerow.models import ModelVersion, TrainingRun
from hedgerow.sim.simulate import simulate
from hedgerow.training import runner, service
from tests.conftest import ALL_TABLES
from tests.growth.factories import override_settings

# Small enough to run in seconds on one core; enough steps at a high learning rate for
# the tiny model to memorise its training answers (the tests check that it does).
TINY_TRAINING = {
    "training_base_model": "tiny",
    "training_method": "auto",
    "training_max_steps": 80,
    "training_learning_rate": 3e-3,
    "training_warmup_ratio": 0.0,
    "training_batch_size": 8,
    "training_max_length": 256,
    "training_save_steps": 20,
    "training_min_conversations": 4,
    "training_reference_sample": 4,
    "training_max_new_tokens": 64,
}

# The simulated crowd writes long texts that differ only in serial numbers and random
# digits, and sibling replies answer the same prompt differently. Short sentences from a
# small vocabulary, each reply a function of the text it answers, give every training
# prompt one right answer that the tiny model can memorise in a few dozen steps.
SHORT_TEXTS = """
UPDATE message SET text = CASE WHEN role = 'prompter'
  THEN 'What do '
       || (ARRAY['hedgehogs','wrens','dormice','badgers','robins','voles','bees'])[1 + id % 7]
       || ' do in ' || (ARRAY['spring','summer','autumn','winter'])[1 + (id / 7) % 4] || '?'
  ELSE 'They ' || (ARRAY['sleep','sing','forage','nest','hide','wander','rest'])[1 + parent_id % 7]
       || ' under the '
       || (ARRAY['hawthorn','hazel','holly','blackthorn','elder'])
          [1 + (parent_id % 7 + parent_id / 7) % 5]
       || ' at ' || (ARRAY['dawn','noon','dusk','night'])[1 + (parent_id / 7) % 4] || '.'
  END
"""


def balanced_split_seed(maker: sessionmaker[Session], share: float) -> int:
    """The export's split seed that holds out the expected number of trees, the smallest
    ones (most training conversations). The simulated crowd's trees differ from run to
    run (message ids, lottery draws), and a fixed seed sometimes held out most of them."""
    with maker() as db:
        trees = db.execute(
            text(
                "SELECT root_message_id, accepted_count FROM tree WHERE state = 'ready_for_export'"
            )
        ).all()
    ids = MessageIds(get_settings().secret_key)
    public = {ids.public(root): size for root, size in trees}
    held_out = max(1, round(share * len(public)))
    best: tuple[int, int] | None = None
    for seed in range(1000):
        validation = [
            size for tree, size in public.items() if split_of(tree, seed, share) == "validation"
        ]
        if len(validation) == held_out and (best is None or sum(validation) < best[0]):
            best = (sum(validation), seed)
    assert best is not None, f"no split seed holds out {held_out} of {len(public)} trees"
    return best[1]


VALIDATION_SHARE = 0.3


@dataclass
class Corpus:
    maker: sessionmaker[Session]
    releases_dir: Path
    release_id: int
    release_name: str


def grow_corpus(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, texts_sql: str, prompts: int = 6
) -> Iterator[Corpus]:
    """Grow trees with the simulated crowd, rewrite their texts with `texts_sql`, publish
    a release; truncate everything afterwards."""
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    releases_dir = tmp_path_factory.mktemp("releases")
    with pytest.MonkeyPatch.context() as monkeypatch:
        override_settings(
            monkeypatch,
            tree_goal_size=4,
            tree_max_children=2,
            growth_policy="fixed",
            reviews_per_message=1,
            rankings_per_sibling_set=1,
            growing_trees_per_language=4,
            releases_dir=releases_dir,
            # Enough validation trees for a held-out loss from a handful of trees.
            export_validation_share=VALIDATION_SHARE,
        )
        report = simulate(maker, volunteers=6, prompts=prompts, seed=7, max_steps=500)
        assert report.states.get("ready_for_export", 0) >= 3, report.states
        with maker.begin() as db:
            db.execute(text(texts_sql))
        seed = balanced_split_seed(maker, VALIDATION_SHARE)
        override_settings(monkeypatch, export_split_seed=seed)
        outcome = run_export(maker)
    yield Corpus(maker, releases_dir, outcome.release_id, outcome.name)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="module")
def corpus(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    yield from grow_corpus(engine, tmp_path_factory, SHORT_TEXTS)


@pytest.fixture
def models_dir(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Settings for the tiny model, an empty models root, and no versions left over."""
    path = tmp_path_factory.mktemp("models")
    override_settings(
        monkeypatch, releases_dir=corpus.releases_dir, training_models_dir=path, **TINY_TRAINING
    )
    with corpus.maker.begin() as db:
        db.execute(text("DELETE FROM model_version"))
    return path


# PostgreSQL releases a killed process's advisory lock when its backend notices the
# closed connection, a moment after the kill.
LOCK_RELEASE_SECONDS = 30


def wait_until_interrupted(maker: sessionmaker[Session], version_id: int) -> None:
    """Wait until nobody holds the killed run's lock: a worker may take it over."""
    deadline = time.monotonic() + LOCK_RELEASE_SECONDS
    while runner.interrupted_versions(maker) != [version_id]:
        assert time.monotonic() < deadline, "the killed run's lock was never released"
        time.sleep(0.05)


def queue_version(corpus: Corpus, **overrides: object) -> int:
    """A queued model version on the corpus's release, as the admin's start button makes."""
    with corpus.maker.begin() as db:
        return service.start_run(db, corpus.release_id, requested_by=None, **overrides).id  # type: ignore[arg-type]


def load_version(corpus: Corpus, version_id: int) -> tuple[ModelVersion, TrainingRun]:
    with corpus.maker() as db:
        version = db.get_one(ModelVersion, version_id)
        run = db.scalars(
            select(TrainingRun).where(TrainingRun.model_version_id == version_id)
        ).one()
        return version, run
