"""The arena end to end: two serving models answer blind, the vote reveals them, the
leaderboard rates them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.chat.conftest import ChatClient
from tests.inference.model_server import register_serving

SECOND = "hedgerow-chat-b"
SERVING_DEADLINE_SECONDS = 30


def _wait_for_models(url: str, count: int) -> None:
    deadline = time.monotonic() + SERVING_DEADLINE_SECONDS
    while len(httpx.get(f"{url}/models", timeout=30).json()["data"]) != count:
        assert time.monotonic() < deadline, f"the server never served {count} models"
        time.sleep(0.1)  # polling the server's registry refresh, bounded by the deadline


@pytest.fixture
def two_serving(
    engine: Engine, served: tuple[str, int], tiny_models: tuple[Path, Path]
) -> Iterator[int]:
    version_id = register_serving(engine, SECOND, tiny_models[1])
    _wait_for_models(served[0], 2)
    yield version_id
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE model_version SET status = 'ready' WHERE name = :n"), {"n": SECOND}
        )


def _form(chat: ChatClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": chat.headers["X-CSRF-Token"], **fields}


def test_a_battle_hides_the_names_until_the_vote(chat: ChatClient, two_serving: int) -> None:
    page = chat.client.get("/arena").text
    assert 'action="/arena"' in page and 'data-testid="arena-unavailable"' not in page
    started = chat.client.post(
        "/arena", data=_form(chat, prompt="What do wrens do?"), follow_redirects=False
    )
    assert started.status_code == 303, started.text
    battle_url = started.headers["location"]
    blind = chat.client.get(battle_url).text
    assert "What do wrens do?" in blind
    assert 'data-testid="name-a"' not in blind
    assert f"hedgerow-chat@{chat.version_id}" not in blind
    assert f"{SECOND}@{two_serving}" not in blind
    voted = chat.client.post(
        f"{battle_url}/vote", data=_form(chat, choice="a"), follow_redirects=False
    )
    assert voted.status_code == 303
    revealed = chat.client.get(battle_url).text
    assert f"hedgerow-chat@{chat.version_id}" in revealed
    assert f"{SECOND}@{two_serving}" in revealed
    again = chat.client.post(f"{battle_url}/vote", data=_form(chat, choice="b"))
    assert again.status_code == 409
    board = chat.client.get("/arena/leaderboard").text
    assert f"hedgerow-chat@{chat.version_id}" in board and f"{SECOND}@{two_serving}" in board


def test_a_bad_vote_and_a_lone_model_are_refused(chat: ChatClient, served: tuple[str, int]) -> None:
    _wait_for_models(served[0], 1)
    empty = chat.client.post("/arena", data=_form(chat, prompt=" "))
    assert empty.status_code == 400
    lone = chat.client.post(
        "/arena", data=_form(chat, prompt="Hello"), headers={"Accept": "application/json"}
    )
    assert lone.status_code == 409
    assert lone.json()["error"]["code"] == "arena_unavailable"


def test_with_one_serving_model_the_arena_says_so_before_any_prompt(
    chat: ChatClient, served: tuple[str, int]
) -> None:
    _wait_for_models(served[0], 1)
    page = chat.client.get("/arena")
    assert page.status_code == 200
    assert "needs two serving models" in page.text
    assert "only one model is serving" in page.text
    # No prompt to write in vain.
    assert 'action="/arena"' not in page.text and 'name="prompt"' not in page.text
