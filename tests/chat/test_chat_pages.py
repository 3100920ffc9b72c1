"""The chat pages without JavaScript: forms post, answers wait pending for the page's script."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.chat.conftest import ChatClient, login
from tests.chat.helpers import ask, detail, new_chat


def _form(chat: ChatClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": chat.headers["X-CSRF-Token"], **fields}


def test_the_chat_page_shows_the_thread_with_escaped_text(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    ask(chat, chat_id, "<b>What</b> do wrens do?")
    page = chat.client.get(f"/chat/{chat_id}")
    assert page.status_code == 200
    assert "&lt;b&gt;What&lt;/b&gt; do wrens do?" in page.text
    assert "<b>What</b>" not in page.text
    listing = chat.client.get("/chat")
    assert f'href="/chat/{chat_id}"' in listing.text


def test_forms_send_a_prompt_regenerate_thumb_and_delete(chat: ChatClient) -> None:
    created = chat.client.post("/chat", data=_form(chat), follow_redirects=False)
    assert created.status_code == 303
    chat_id = int(created.headers["location"].rsplit("/", 1)[1])
    sent = chat.client.post(
        f"/chat/{chat_id}/messages",
        data=_form(chat, text="What do bees do?", temperature="0", top_p="1", max_tokens="8"),
        follow_redirects=False,
    )
    assert sent.status_code == 303
    page = chat.client.get(sent.headers["location"])
    assert "data-stream-url=" in page.text  # the script streams it when the page loads
    reply_id = detail(chat, chat_id)["thread"][1]["id"]
    thumbed = chat.client.post(
        f"/chat/{chat_id}/messages/{reply_id}/thumbs",
        data=_form(chat, value="1"),
        follow_redirects=False,
    )
    assert thumbed.status_code == 303
    assert detail(chat, chat_id)["thread"][1]["thumbs"] == 1
    regenerated = chat.client.post(
        f"/chat/{chat_id}/messages/{reply_id}/regenerate", data=_form(chat), follow_redirects=False
    )
    assert regenerated.status_code == 303
    assert len(detail(chat, chat_id)["thread"][1]["sibling_ids"]) == 2
    opted_out = chat.client.post(
        f"/chat/{chat_id}/settings", data=_form(chat, title="Bees"), follow_redirects=False
    )
    assert opted_out.status_code == 303
    assert detail(chat, chat_id)["allow_data_use"] is False
    deleted = chat.client.post(f"/chat/{chat_id}/delete", data=_form(chat), follow_redirects=False)
    assert deleted.status_code == 303
    assert chat.client.get(f"/chat/{chat_id}").status_code == 404


def test_an_empty_prompt_from_the_form_is_refused(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    refused = chat.client.post(
        f"/chat/{chat_id}/messages", data=_form(chat, text="  "), follow_redirects=False
    )
    assert refused.status_code == 400
    assert detail(chat, chat_id)["thread"] == []


def test_someone_elses_chat_page_is_not_found(chat: ChatClient, engine: Engine) -> None:
    chat_id = new_chat(chat)
    login(engine, chat.client)
    assert chat.client.get(f"/chat/{chat_id}").status_code == 404
