"""A thumbed-down answer's prompt can be sent by its author to the prompt lottery."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hedgerow.models import Message, Tree
from tests.chat.conftest import ChatClient
from tests.chat.helpers import ask, new_chat


def test_a_thumbed_down_prompt_becomes_a_prompt_in_review(chat: ChatClient, engine: Engine) -> None:
    chat_id = new_chat(chat)
    exchange = ask(chat, chat_id, "Which hedgerow plants flower first in spring?")
    base = f"/api/v1/chats/{chat_id}/messages/{exchange['reply']['id']}"
    too_soon = chat.client.post(f"{base}/to-lottery", headers=chat.headers)
    assert too_soon.status_code == 400
    assert too_soon.json()["error"]["code"] == "not_thumbed_down"
    chat.client.post(f"{base}/thumbs", json={"value": -1}, headers=chat.headers)
    sent = chat.client.post(f"{base}/to-lottery", headers=chat.headers)
    assert sent.status_code == 201, sent.text
    with Session(engine) as db:
        tree = db.get(Tree, sent.json()["tree_id"])
        assert tree is not None
        assert tree.state == "prompt_review" and tree.author_id == chat.user.id
        root = db.scalars(select(Message).where(Message.id == tree.root_message_id)).one()
        assert root.text == "Which hedgerow plants flower first in spring?"
    again = chat.client.post(f"{base}/to-lottery", headers=chat.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_text"
