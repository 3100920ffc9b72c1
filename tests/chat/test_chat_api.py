"""Chat through the JSON API against the real model server with the tiny model."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from hedgerow.accounts.security import SESSION_COOKIE
from hedgerow.models import ChatMessage
from tests.chat.conftest import ChatClient, login
from tests.chat.helpers import ask, detail, new_chat, send, stream_events
from tests.growth.factories import override_settings
from tests.live_server import free_port


def _message_count(engine: Engine, chat_id: int) -> int:
    with Session(engine) as db:
        return (
            db.scalar(
                select(func.count()).select_from(ChatMessage).where(ChatMessage.chat_id == chat_id)
            )
            or 0
        )


def test_a_prompt_streams_an_answer_that_is_stored_with_its_version(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    exchange = ask(chat, chat_id, "What do hedgehogs do in winter?")
    kinds = [kind for kind, _ in exchange["events"]]
    deltas = [data["text"] for kind, data in exchange["events"] if kind == "delta"]
    assert kinds[-1] == "done" and len(deltas) >= 2
    done = exchange["events"][-1][1]
    assert done["status"] in {"complete"}
    assert done["text"] == "".join(deltas)
    stored = detail(chat, chat_id)
    assert stored["title"] == "What do hedgehogs do in winter?"
    reply = stored["thread"][-1]
    assert reply["role"] == "assistant" and reply["text"] == "".join(deltas)
    assert reply["model_version"] == f"hedgerow-chat@{chat.version_id}"
    assert reply["sampling"] == {"temperature": 0.0, "top_p": 0.95, "max_tokens": 24}
    # A finished answer streams again as one `done` event, without asking the model.
    assert stream_events(chat, exchange["stream_url"]) == [("done", done)]


def test_regenerate_keeps_the_earlier_answer_as_a_sibling(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    first = ask(chat, chat_id, "What do wrens do?")
    again = chat.client.post(
        f"/api/v1/chats/{chat_id}/messages/{first['reply']['id']}/regenerate",
        json={"temperature": 1.0, "max_tokens": 8},
        headers=chat.headers,
    )
    assert again.status_code == 201, again.text
    stream_events(chat, again.json()["stream_url"])
    newest = detail(chat, chat_id)["thread"]
    assert [e["role"] for e in newest] == ["user", "assistant"]
    second_id = again.json()["reply"]["id"]
    assert newest[1]["id"] == second_id
    assert newest[1]["sibling_ids"] == [first["reply"]["id"], second_id]
    assert newest[1]["position"] == 2
    paged = detail(chat, chat_id, selected=str(first["reply"]["id"]))["thread"]
    assert paged[1]["id"] == first["reply"]["id"] and paged[1]["position"] == 1


def test_editing_a_prompt_branches_the_chat(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    first = ask(chat, chat_id, "What do bees do?")
    follow_up = ask(chat, chat_id, "And in winter?", parent_id=first["reply"]["id"])
    edited = ask(chat, chat_id, "And in spring?", parent_id=first["reply"]["id"])
    thread = detail(chat, chat_id)["thread"]
    assert [e["text"] for e in thread[::2]] == ["What do bees do?", "And in spring?"]
    assert thread[2]["sibling_ids"] == [follow_up["prompt"]["id"], edited["prompt"]["id"]]
    old_branch = detail(chat, chat_id, selected=str(follow_up["prompt"]["id"]))["thread"]
    assert old_branch[2]["text"] == "And in winter?"
    assert old_branch[3]["id"] == follow_up["reply"]["id"]


def test_thumbs_and_reports_are_stored_on_answers_only(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    exchange = ask(chat, chat_id, "What do voles do?")
    base = f"/api/v1/chats/{chat_id}/messages"
    reply_id, prompt_id = exchange["reply"]["id"], exchange["prompt"]["id"]
    down = chat.client.post(f"{base}/{reply_id}/thumbs", json={"value": -1}, headers=chat.headers)
    assert down.status_code == 200 and down.json()["thumbs"] == -1
    reported = chat.client.post(
        f"{base}/{reply_id}/report", json={"reason": "made up facts"}, headers=chat.headers
    )
    assert reported.status_code == 200 and reported.json()["reported"] is True
    assert detail(chat, chat_id)["thread"][1]["thumbs"] == -1
    bad = chat.client.post(f"{base}/{reply_id}/thumbs", json={"value": 5}, headers=chat.headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_thumbs"
    on_prompt = chat.client.post(
        f"{base}/{prompt_id}/thumbs", json={"value": 1}, headers=chat.headers
    )
    assert on_prompt.status_code == 400 and on_prompt.json()["error"]["code"] == "not_an_answer"
    empty = chat.client.post(
        f"{base}/{reply_id}/report", json={"reason": " "}, headers=chat.headers
    )
    assert empty.status_code == 400


@pytest.mark.parametrize(
    ("text", "code"), [("   ", "empty_message"), ("x" * 8_001, "message_too_long")]
)
def test_empty_or_huge_prompts_are_refused_and_nothing_is_stored(
    chat: ChatClient, engine: Engine, text: str, code: str
) -> None:
    chat_id = new_chat(chat)
    response = send(chat, chat_id, text)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert _message_count(engine, chat_id) == 0


def test_bad_sampling_is_refused(chat: ChatClient, engine: Engine) -> None:
    chat_id = new_chat(chat)
    response = send(chat, chat_id, "hello", temperature=5)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_sampling"
    assert _message_count(engine, chat_id) == 0


def test_someone_elses_chat_and_a_deleted_chat_are_not_found(
    chat: ChatClient, engine: Engine
) -> None:
    chat_id = new_chat(chat)
    ask(chat, chat_id, "What do robins do?")
    mine = chat.client.cookies.get(SESSION_COOKIE)
    login(engine, chat.client)  # now someone else
    assert chat.client.get(f"/api/v1/chats/{chat_id}").status_code == 404
    assert send(chat, chat_id, "hijack").status_code in {403, 404}
    chat.client.cookies.set(SESSION_COOKIE, mine or "")
    deleted = chat.client.delete(f"/api/v1/chats/{chat_id}", headers=chat.headers)
    assert deleted.status_code == 204
    assert chat.client.get(f"/api/v1/chats/{chat_id}").status_code == 404
    assert chat_id not in [c["id"] for c in chat.client.get("/api/v1/chats").json()]


def test_rename_hide_and_opt_out(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    changed = chat.client.patch(
        f"/api/v1/chats/{chat_id}",
        json={"title": "Garden birds", "hidden": True, "allow_data_use": False},
        headers=chat.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["allow_data_use"] is False
    assert chat_id not in [c["id"] for c in chat.client.get("/api/v1/chats").json()]
    listed = chat.client.get("/api/v1/chats", params={"include_hidden": True}).json()
    assert [c["title"] for c in listed if c["id"] == chat_id] == ["Garden birds"]
    empty_title = chat.client.patch(
        f"/api/v1/chats/{chat_id}", json={"title": ""}, headers=chat.headers
    )
    assert empty_title.status_code == 400


def test_a_model_server_that_is_down_gives_a_clear_message_and_keeps_the_prompt(
    chat: ChatClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, chat_inference_url=f"http://127.0.0.1:{free_port()}/v1")
    chat_id = new_chat(chat)
    exchange = ask(chat, chat_id, "Anyone there?")
    assert exchange["events"] == [
        (
            "error",
            {
                "code": "model_unavailable",
                "message": "The model server cannot be reached right now; try again later.",
            },
        )
    ]
    thread = detail(chat, chat_id)["thread"]
    assert thread[0]["text"] == "Anyone there?"
    assert thread[1]["status"] == "failed" and "cannot be reached" in thread[1]["error"]


def test_a_slow_model_server_times_out_with_a_clear_message(
    chat: ChatClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that accepts the connection and never answers.
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        override_settings(
            monkeypatch,
            chat_inference_url=f"http://127.0.0.1:{port}/v1",
            chat_inference_timeout_seconds=0.5,
        )
        chat_id = new_chat(chat)
        exchange = ask(chat, chat_id, "Hello?")
    assert exchange["events"][0][0] == "error"
    assert exchange["events"][0][1]["code"] == "model_timeout"


def test_stop_keeps_the_text_so_far(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    sent = send(chat, chat_id, "What do badgers do?", max_tokens=200)
    reply_id = sent.json()["reply"]["id"]
    stop = chat.client.post(
        f"/api/v1/chats/{chat_id}/messages/{reply_id}/stop", headers=chat.headers
    )
    assert stop.status_code == 202
    events = stream_events(chat, sent.json()["stream_url"])
    kind, done = events[-1]
    assert kind == "done" and done["status"] == "stopped"
    # Stopped after the first piece.
    assert len([e for e in events if e[0] == "delta"]) <= 1
    assert detail(chat, chat_id)["thread"][1]["status"] == "stopped"
