from __future__ import annotations

import json
from typing import Any

from tests.chat.conftest import ChatClient


def new_chat(chat: ChatClient) -> int:
    response = chat.client.post("/api/v1/chats", json={}, headers=chat.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def send(chat: ChatClient, chat_id: int, text: str, parent_id: int | None = None, **sampling: Any):
    return chat.client.post(
        f"/api/v1/chats/{chat_id}/messages",
        json={"text": text, "parent_id": parent_id, "temperature": 0, "max_tokens": 24, **sampling},
        headers=chat.headers,
    )


def stream_events(chat: ChatClient, url: str) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    with chat.client.stream("GET", url) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event = "message"
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, json.loads(line.removeprefix("data: "))))
    return events


def ask(chat: ChatClient, chat_id: int, text: str, parent_id: int | None = None) -> dict[str, Any]:
    """Send a prompt and stream its answer; the exchange and the events."""
    sent = send(chat, chat_id, text, parent_id)
    assert sent.status_code == 201, sent.text
    body = sent.json()
    body["events"] = stream_events(chat, body["stream_url"])
    return body


def detail(chat: ChatClient, chat_id: int, selected: str = "") -> dict[str, Any]:
    response = chat.client.get(f"/api/v1/chats/{chat_id}", params={"selected": selected})
    assert response.status_code == 200, response.text
    return response.json()
