"""Fifty volunteers at once: the limits hold exactly and nobody sees a server error.

Each thread is a volunteer with its own connection, requesting and submitting tasks through
the real service in separate transactions, as the API does. Other threads run the lottery
job at the same time, as the worker would.
"""

from __future__ import annotations

import random
import threading
import traceback
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.db import make_engine
from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.growth.schemas import Submission, TaskView
from hedgerow.models import GrowthPolicy, Message, Task, TaskState, Tree, TreeState, User
from hedgerow.sim.invariants import check_invariants
from tests.factories import make_user
from tests.growth.factories import make_tree, override_settings

VOLUNTEERS = 50
CYCLES_PER_VOLUNTEER = 6
# Codes a volunteer may legitimately meet when many compete for little work.
EXPECTED_CODES = {"no_task_available", "lease_expired_slot_taken", "tree_not_accepting"}


@pytest.fixture
def wide_engine(database_url: str) -> Iterator[Engine]:
    # One connection per thread, so the threads really run their transactions at once.
    engine = make_engine(database_url, pool_size=VOLUNTEERS + 4, max_overflow=0)
    yield engine
    engine.dispose()


def _answer(task: TaskView, serial: str, rng: random.Random) -> Submission:
    """Reviewers and rankers disagree now and then, so that the adaptive policy asks for
    more reviews and rankings where they do."""
    if task.kind == "write_prompt":
        return Submission(text=f"Concurrent prompt {serial}", category="open_qa")
    if task.kind.startswith("reply_"):
        return Submission(text=f"Concurrent reply {serial}")
    if task.kind.startswith("review_"):
        spam = float(rng.random() < 0.15)
        return Submission(labels={"spam": spam, "lang_mismatch": 0.0, "quality": 0.5}, mode="quick")
    order = [reply.id for reply in task.replies]
    if rng.random() < 0.3:
        order.reverse()
    return Submission(ranking=order)


# (settings, tree parameters) per policy: the fixed policy's exact numbers, and the adaptive
# policy's minimums and maximums.
POLICIES = {
    "fixed": (
        {"growth_policy": "fixed", "reviews_per_message": 2, "rankings_per_sibling_set": 2},
        {"reviews_per_message": 2, "rankings_per_sibling_set": 2},
    ),
    "adaptive": (
        {
            "growth_policy": "adaptive",
            "min_reviews_per_message": 2,
            "max_reviews_per_message": 4,
            "min_rankings_per_sibling_set": 2,
            "max_rankings_per_sibling_set": 3,
        },
        {
            "growth_policy": GrowthPolicy.adaptive,
            "reviews_per_message": 4,
            "min_reviews_per_message": 2,
            "rankings_per_sibling_set": 3,
            "min_rankings_per_sibling_set": 2,
        },
    ),
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_fifty_concurrent_volunteers_keep_every_limit(
    committing_sessionmaker: sessionmaker[Session],
    wide_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
) -> None:
    settings, tree_parameters = POLICIES[policy]
    override_settings(monkeypatch, growing_trees_per_language=3, tree_goal_size=8, **settings)
    with committing_sessionmaker.begin() as db:
        authors = [make_user(db) for _ in range(4)]
        for author in authors[:3]:
            make_tree(db, author, goal_size=8, **tree_parameters)
        for author in authors:
            for _ in range(3):
                make_tree(
                    db, author, state=TreeState.lottery_waiting, goal_size=8, **tree_parameters
                )
            make_tree(db, author, state=TreeState.prompt_review, goal_size=8, **tree_parameters)
        volunteer_ids = [make_user(db).id for _ in range(VOLUNTEERS)]
        # The factory marks seeded prompts reviewed without label rows; count labels only
        # for messages written during the test.
        seeded_up_to = db.scalar(select(func.max(Message.id)))

    maker = sessionmaker(bind=wide_engine, expire_on_commit=False)
    start = threading.Barrier(VOLUNTEERS + 1)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def record(outcome: str) -> None:
        with lock:
            outcomes[outcome] += 1

    def volunteer(index: int) -> None:
        rng = random.Random(index)
        start.wait()
        for cycle in range(CYCLES_PER_VOLUNTEER):
            try:
                with maker.begin() as db:
                    user = db.get_one(User, volunteer_ids[index])
                    task = service.request_task(db, user, language="en", rng=rng)
                with maker.begin() as db:
                    user = db.get_one(User, volunteer_ids[index])
                    service.submit_task(
                        db, user, task.id, _answer(task, f"{index}-{cycle}", rng), rng=rng
                    )
                record(f"done:{task.kind}")
            except AppError as error:
                if error.code not in EXPECTED_CODES:
                    failures.append(f"volunteer {index}: unexpected {error.code}: {error}")
                record(f"error:{error.code}")
            except Exception:  # a 500 would reach the user
                failures.append(f"volunteer {index}:\n{traceback.format_exc()}")

    def lottery_job() -> None:
        rng = random.Random(99)
        start.wait()
        for _ in range(CYCLES_PER_VOLUNTEER * 2):
            try:
                with maker.begin() as db:
                    service.top_up_lotteries(db, rng=rng)
            except Exception:
                failures.append(f"lottery job:\n{traceback.format_exc()}")

    threads = [threading.Thread(target=volunteer, args=(i,)) for i in range(VOLUNTEERS)]
    threads.append(threading.Thread(target=lottery_job))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"

    assert failures == [], "\n".join(failures[:5])
    done = sum(count for outcome, count in outcomes.items() if outcome.startswith("done"))
    assert done >= VOLUNTEERS, outcomes  # real work happened, not only refusals

    with maker() as db:
        assert check_invariants(db) == []
        growing = db.scalar(
            select(func.count()).where(Tree.state == TreeState.growing, Tree.language == "en")
        )
        assert growing is not None and growing <= 3
        # Nobody holds two live tasks, and no slot is held twice: the counters match the
        # tasks that hold them.
        assert db.scalar(select(func.count()).where(Task.state == TaskState.leased)) == db.scalar(
            select(func.count(func.distinct(Task.user_id))).where(Task.state == TaskState.leased)
        )
        mismatched = db.execute(
            text("""
            SELECT m.id FROM message m
            WHERE m.review_lease_count <> (SELECT count(*) FROM task t WHERE
                    t.target_message_id = m.id AND t.holds_slot AND t.kind LIKE 'review%')
               OR m.reply_lease_count <> (SELECT count(*) FROM task t WHERE
                    t.target_message_id = m.id AND t.holds_slot AND t.kind LIKE 'reply%')
               OR m.ranking_lease_count <> (SELECT count(*) FROM task t WHERE
                    t.target_message_id = m.id AND t.holds_slot AND t.kind LIKE 'rank%')
               OR (m.id > :seeded AND m.review_count <> (
                    SELECT count(*) FROM label l WHERE l.message_id = m.id))
               OR m.ranking_count <> (SELECT count(*) FROM ranking r
                                      WHERE r.parent_message_id = m.id)
        """),
            {"seeded": seeded_up_to},
        ).all()
        assert mismatched == []
        trees_over_goal = db.execute(
            text("""
            SELECT t.id FROM tree t WHERE t.accepted_count + t.pending_count > t.goal_size
               OR t.reply_lease_count <> (SELECT count(*) FROM task k JOIN message m
                    ON m.id = k.target_message_id WHERE m.tree_id = t.id AND k.holds_slot
                    AND k.kind LIKE 'reply%')
        """)
        ).all()
        assert trees_over_goal == []
        if policy == "adaptive":
            # Disagreement asked for more than the minimum somewhere, never past the maximum.
            most_reviews = db.scalar(
                select(func.max(Message.review_count)).where(Message.id > seeded_up_to)
            )
            assert most_reviews is not None and 2 < most_reviews <= 4
