"""The answer's text as the server streams it: whole characters only, however the
tokenizer cuts them, and nothing lost where a character is cut off at the token limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from hedgerow.config import Settings
from hedgerow.db import get_sessionmaker
from hedgerow.inference.app import create_inference_app
from hedgerow.inference.registry import ServingRegistry
from tests.conftest import ALL_TABLES
from tests.inference.model_server import register_serving
from tests.inference.scripted_model import (
    SCRIPT,
    SCRIPT_CUT_INSIDE_THE_EMOJI,
    build_scripted_model,
)

SCRIPTED = "scripted"


@pytest.fixture(scope="module")
def scripted_server(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The model server in this process, serving the scripted model."""
    register_serving(engine, SCRIPTED, build_scripted_model(tmp_path_factory.mktemp("scripted")))
    registry = ServingRegistry(get_sessionmaker(), refresh_seconds=0)
    with TestClient(create_inference_app(Settings(), registry)) as client:
        yield client
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


def _stream(client: TestClient, max_tokens: int) -> tuple[list[str], dict[str, Any]]:
    request = {
        "model": SCRIPTED,
        "messages": [{"role": "user", "content": "Say it"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        chunks = [
            json.loads(line.removeprefix("data: "))
            for line in response.iter_lines()
            if line.startswith("data: {")
        ]
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks]
    return [p for p in pieces if p], chunks[-1]


def test_characters_split_over_tokens_stream_whole(scripted_server: TestClient) -> None:
    pieces, _ = _stream(scripted_server, max_tokens=len(SCRIPT) + 1)
    # é, € and the emoji are 2, 3 and 4 tokens each, and each comes as one piece.
    assert pieces[:5] == ["O", "k", "é", "€", "😀"]
    assert "".join(pieces) == SCRIPT.decode(errors="replace")


@pytest.mark.parametrize("max_tokens", [3, SCRIPT_CUT_INSIDE_THE_EMOJI])
def test_a_character_cut_off_by_the_token_limit_is_not_sent(
    scripted_server: TestClient, max_tokens: int
) -> None:
    pieces, last = _stream(scripted_server, max_tokens=max_tokens)
    whole = SCRIPT[:max_tokens].decode(errors="ignore")
    assert "".join(pieces) == whole
    assert "\ufffd" not in "".join(pieces)
    assert last["choices"][0]["finish_reason"] == "length"
    answer = scripted_server.post(
        "/v1/chat/completions",
        json={
            "model": SCRIPTED,
            "messages": [{"role": "user", "content": "Say it"}],
            "max_tokens": max_tokens,
            "temperature": 0,
        },
    ).json()
    assert answer["choices"][0]["message"]["content"] == whole
