"""The built-in OpenAI-compatible server, as a real process serving the tiny model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from hedgerow.config import Settings
from hedgerow.db import get_sessionmaker
from hedgerow.inference.app import create_inference_app
from hedgerow.inference.limits import GenerationQueue
from hedgerow.inference.registry import ServingRegistry
from tests.inference.model_server import register_serving

SWAP_DEADLINE_SECONDS = 30


def _events(response: httpx.Response) -> list[dict | str]:
    events: list[dict | str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_lists_the_serving_model(served: tuple[str, int]) -> None:
    url, version_id = served
    models = httpx.get(f"{url}/models", timeout=30).json()
    assert [(m["id"], m["version_id"]) for m in models["data"]] == [("hedgerow-chat", version_id)]


def test_completion_answers_with_usage_and_the_version(served: tuple[str, int]) -> None:
    url, version_id = served
    response = httpx.post(
        f"{url}/chat/completions",
        json={
            "model": "hedgerow-chat",
            "messages": [{"role": "user", "content": "What do wrens do?"}],
            "max_tokens": 8,
            "temperature": 0,
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["system_fingerprint"] == f"hedgerow-chat@{version_id}"
    assert 1 <= body["usage"]["completion_tokens"] <= 8
    assert body["choices"][0]["message"]["role"] == "assistant"


def test_stream_sends_pieces_as_server_sent_events(served: tuple[str, int]) -> None:
    url, _ = served
    request = {
        "model": "hedgerow-chat",
        "messages": [{"role": "user", "content": "What do hedgehogs do in winter?"}],
        "max_tokens": 24,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{url}/chat/completions", json=request, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks[1:-1]]
    # Token by token: the answer comes in several pieces, and greedy decoding repeats it.
    assert len([p for p in pieces if p]) >= 2
    full = httpx.post(
        f"{url}/chat/completions", json={**request, "stream": False}, timeout=60
    ).json()
    assert "".join(pieces) == full["choices"][0]["message"]["content"]


def test_include_usage_ends_the_stream_with_a_usage_chunk_as_openai_does(
    served: tuple[str, int],
) -> None:
    url, _ = served
    request = {
        "model": "hedgerow-chat",
        "messages": [{"role": "user", "content": "What do robins do?"}],
        "max_tokens": 6,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{url}/chat/completions", json=request, timeout=60) as response:
        assert response.status_code == 200
        events = _events(response)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    *answer, last = chunks
    assert last["choices"] == []
    usage = last["usage"]
    full = httpx.post(
        f"{url}/chat/completions",
        json={k: v for k, v in request.items() if k not in {"stream", "stream_options"}},
        timeout=60,
    ).json()
    assert usage == full["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 1 <= usage["completion_tokens"] <= 6
    # The other chunks say there is no usage yet, and carry the answer.
    assert all(c["usage"] is None and len(c["choices"]) == 1 for c in answer)
    assert answer[-1]["choices"][0]["finish_reason"] in {"stop", "length"}


def test_without_include_usage_no_chunk_carries_usage(served: tuple[str, int]) -> None:
    url, _ = served
    request = {
        "model": "hedgerow-chat",
        "messages": [{"role": "user", "content": "What do robins do?"}],
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": False},
    }
    for body in (request, {k: v for k, v in request.items() if k != "stream_options"}):
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=60) as response:
            chunks = [e for e in _events(response) if isinstance(e, dict)]
        assert chunks and all("usage" not in c and len(c["choices"]) == 1 for c in chunks)


def test_stream_options_without_a_stream_are_refused(served: tuple[str, int]) -> None:
    url, _ = served
    refused = httpx.post(
        f"{url}/chat/completions",
        json={
            "model": "hedgerow-chat",
            "messages": [{"role": "user", "content": "hi"}],
            "stream_options": {"include_usage": True},
        },
        timeout=30,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_request"
    assert "stream_options" in refused.json()["error"]["message"]


def test_bad_requests_get_openai_shaped_errors(served: tuple[str, int]) -> None:
    url, _ = served
    empty = httpx.post(
        f"{url}/chat/completions", json={"model": "hedgerow-chat", "messages": []}, timeout=30
    )
    assert empty.status_code == 400
    assert empty.json()["error"]["code"] == "invalid_request"
    unknown = httpx.post(
        f"{url}/chat/completions",
        json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"


def test_promoting_a_new_version_swaps_it_in_without_a_restart(
    served: tuple[str, int], engine: Engine, tiny_models: tuple[Path, Path]
) -> None:
    url, first_version = served
    second_version = register_serving(engine, "hedgerow-chat", tiny_models[1])
    try:
        deadline = time.monotonic() + SWAP_DEADLINE_SECONDS
        while True:
            models = httpx.get(f"{url}/models", timeout=30).json()["data"]
            if models and models[0]["version_id"] == second_version:
                break
            assert time.monotonic() < deadline, models
            time.sleep(0.1)  # polling the server, bounded by the deadline
        answer = httpx.post(
            f"{url}/chat/completions",
            json={
                "model": "hedgerow-chat",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 2,
            },
            timeout=60,
        ).json()
        assert answer["system_fingerprint"] == f"hedgerow-chat@{second_version}"
    finally:
        register_serving(engine, "hedgerow-chat", tiny_models[0])
        assert first_version != second_version


def _in_process(served: tuple[str, int], **overrides: object) -> TestClient:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    registry = ServingRegistry(get_sessionmaker(), refresh_seconds=0)
    return TestClient(create_inference_app(settings, registry))


def test_a_full_queue_answers_503_with_retry_after(served: tuple[str, int]) -> None:
    client = _in_process(served, inference_concurrency=1, inference_queue_size=0)
    queue: GenerationQueue = client.app.state.queue  # type: ignore[attr-defined]
    queue.admit()  # a generation in progress fills the only place
    response = client.post(
        "/v1/chat/completions",
        json={"model": "hedgerow-chat", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "server_busy"
    assert int(response.headers["retry-after"]) > 0
    queue.release()
    ok = client.post(
        "/v1/chat/completions",
        json={
            "model": "hedgerow-chat",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 1,
        },
    )
    assert ok.status_code == 200
    assert queue.admitted == 0


def test_each_user_is_rate_limited_separately(served: tuple[str, int]) -> None:
    client = _in_process(served, inference_requests_per_minute=2)

    def ask(user: str) -> httpx.Response:
        return client.post(
            "/v1/chat/completions",
            json={
                "model": "hedgerow-chat",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 1,
                "user": user,
            },
        )

    assert [ask("alice").status_code for _ in range(2)] == [200, 200]
    limited = ask("alice")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert ask("bob").status_code == 200


@pytest.mark.parametrize("key", ["secret-key-123"])
def test_an_api_key_when_configured_is_required(served: tuple[str, int], key: str) -> None:
    client = _in_process(served, inference_api_key=key)
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
