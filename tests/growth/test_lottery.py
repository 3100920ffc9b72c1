"""The prompt lottery: fair per author, never past the growing limit."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.growth import service
from hedgerow.growth.lottery import count_growing, draw_lottery
from hedgerow.models import Message, Tree, TreeState
from tests.factories import make_user
from tests.growth.factories import make_tree, override_settings, reload


def test_a_draw_fills_the_free_growing_slots_and_no_more(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=3)
    author = make_user(db)
    make_tree(db, author, state=TreeState.growing)
    waiting = [make_tree(db, make_user(db), state=TreeState.lottery_waiting) for _ in range(4)]
    drawn = draw_lottery(db, "en", rng=random.Random(1))
    assert len(drawn) == 2
    assert count_growing(db, "en") == 3
    assert draw_lottery(db, "en", rng=random.Random(2)) == []
    for tree_id in drawn:
        tree = db.get(Tree, tree_id)
        assert tree is not None and tree.drawn_at is not None
        root = db.get(Message, tree.root_message_id)
        assert root is not None and root.open_for_reply  # a drawn tree takes replies at once
    still_waiting = [t for t, _ in waiting if reload(db, t).state == TreeState.lottery_waiting]
    assert len(still_waiting) == 2


def test_languages_are_drawn_separately(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    override_settings(monkeypatch, growing_trees_per_language=1)
    english, _ = make_tree(db, make_user(db), state=TreeState.lottery_waiting)
    german, _ = make_tree(db, make_user(db), state=TreeState.lottery_waiting, language="de")
    assert service.top_up_lotteries(db, rng=random.Random(1)) == {
        "de": [german.id],
        "en": [english.id],
    }
    assert reload(db, english).state == reload(db, german).state == TreeState.growing


def test_an_authors_oldest_waiting_prompt_goes_first(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=1)
    author = make_user(db)
    now = datetime.now(UTC)
    newer, _ = make_tree(db, author, state=TreeState.lottery_waiting, entered_lottery_at=now)
    older, _ = make_tree(
        db, author, state=TreeState.lottery_waiting, entered_lottery_at=now - timedelta(days=1)
    )
    assert draw_lottery(db, "en", rng=random.Random(1)) == [older.id]
    assert reload(db, newer).state == TreeState.lottery_waiting


def test_each_author_has_the_same_chance_whatever_their_number_of_prompts(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=1)
    prolific, occasional = make_user(db), make_user(db)
    for _ in range(200):
        make_tree(db, prolific, state=TreeState.lottery_waiting)
    make_tree(db, occasional, state=TreeState.lottery_waiting)
    rng = random.Random(2026)
    draws = 400
    wins_by_occasional = 0
    for _ in range(draws):
        (tree_id,) = draw_lottery(db, "en", rng=rng)
        tree = db.get(Tree, tree_id)
        assert tree is not None
        wins_by_occasional += tree.author_id == occasional.id
        tree.state = TreeState.lottery_waiting  # put it back for the next draw
        db.flush()
    # Per author: ~200 of 400 (binomial sd 10). Drawing per prompt would give ~2.
    assert 160 <= wins_by_occasional <= 240


def test_disabled_authors_are_not_drawn_and_can_be_withdrawn(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=5)
    troll = make_user(db)
    trolls_trees = [make_tree(db, troll, state=TreeState.lottery_waiting)[0] for _ in range(2)]
    troll.enabled = False
    db.flush()
    assert draw_lottery(db, "en", rng=random.Random(1)) == []

    assert service.withdraw_waiting_prompts(db, troll.id) == 2
    for tree in trolls_trees:
        assert (reload(db, tree).state, tree.halted_from_state) == (
            TreeState.halted,
            TreeState.lottery_waiting,
        )


def test_a_tree_leaving_growing_draws_the_next_prompt_in_the_same_transaction(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=1, skips_to_halt=1)
    growing, _root = make_tree(db, make_user(db), state=TreeState.growing)
    waiting, _ = make_tree(db, make_user(db), state=TreeState.lottery_waiting)
    volunteer = make_user(db)
    task = service.request_task(db, volunteer, language="en", kind="reply_assistant")
    service.skip_task(db, volunteer, task.id, "offensive")  # one skip halts, by the override
    assert reload(db, growing).state == TreeState.halted
    assert reload(db, waiting).state == TreeState.growing


def _wait_for_lock_waiter(maker: sessionmaker[Session], deadline_seconds: float = 10) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with maker() as probe:
            waiting = probe.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the second draw never waited for the lottery lock")


def test_two_concurrent_draws_never_exceed_the_limit(
    committing_sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, growing_trees_per_language=2)
    maker = committing_sessionmaker
    with maker.begin() as setup:
        for _ in range(6):
            make_tree(setup, make_user(setup), state=TreeState.lottery_waiting)

    first = maker()
    first.begin()
    assert len(draw_lottery(first, "en", rng=random.Random(1))) == 2
    second_result: list[list[int]] = []

    def second_draw() -> None:
        with maker.begin() as second:
            second_result.append(draw_lottery(second, "en", rng=random.Random(2)))

    thread = threading.Thread(target=second_draw)
    thread.start()
    _wait_for_lock_waiter(maker)
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert second_result == [[]]
    with maker() as check:
        growing = check.scalar(
            select(func.count()).select_from(Tree).where(Tree.state == TreeState.growing)
        )
    assert growing == 2
