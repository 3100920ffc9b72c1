"""The chat pages without JavaScript: forms post, answers wait pending for the page's script."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from sqlalchemy import Engine

from tests.chat.conftest import ChatClient, login
from tests.chat.helpers import ask, detail, new_chat, stream_events


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


@dataclass
class ShownAnswer:
    message_id: int
    status: str
    stream_url: str | None
    pager: str
    links: dict[str, str]  # rel ("prev", "next") -> href


def _attribute(tag: str, name: str) -> str | None:
    found = re.search(rf'{name}="([^"]*)"', tag)
    return html.unescape(found.group(1)) if found else None


def _shown_answers(page: str) -> list[ShownAnswer]:
    """The answers a chat page shows, top to bottom, with their pager."""
    answers = []
    for article in page.split("<article")[1:]:
        head = article[: article.index(">")]
        if 'data-role="assistant"' not in head:
            continue
        pager = re.search(r'data-testid="pager">([^<]*)<', article)
        answers.append(
            ShownAnswer(
                message_id=int(_attribute(head, "data-message-id") or 0),
                status=_attribute(head, "data-status") or "",
                stream_url=_attribute(head, "data-stream-url"),
                pager=pager.group(1) if pager else "",
                links={
                    rel: html.unescape(href)
                    for href, rel in re.findall(r'<a href="([^"]+)" rel="(prev|next)"', article)
                },
            )
        )
    return answers


def _regenerate(chat: ChatClient, chat_id: int, answer_id: int, page_url: str) -> str:
    """Press Regenerate under `answer_id` on the page at `page_url`; where it leads."""
    page = chat.client.get(page_url).text
    thread = page[page.index('id="thread"') :]
    path = _attribute(thread[: thread.index(">")], "data-path")
    regenerated = chat.client.post(
        f"/chat/{chat_id}/messages/{answer_id}/regenerate",
        data=_form(chat, path=path or ""),
        follow_redirects=False,
    )
    assert regenerated.status_code == 303, regenerated.text
    return str(regenerated.headers["location"])


def test_regenerate_shows_the_new_answer_ready_to_stream(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    first = ask(chat, chat_id, "What do bees do?")["reply"]["id"]
    second_url = _regenerate(chat, chat_id, first, f"/chat/{chat_id}")
    [second] = _shown_answers(chat.client.get(second_url).text)
    assert second.message_id != first
    assert (second.status, second.pager) == ("pending", "2 / 2")
    assert second.stream_url is not None  # chat.js streams it as the page loads
    assert stream_events(chat, second.stream_url)[-1][0] == "done"

    # Regenerating the second answer: the third one shows, not the second.
    third_url = _regenerate(chat, chat_id, second.message_id, second_url)
    [third] = _shown_answers(chat.client.get(third_url).text)
    assert third.message_id not in {first, second.message_id}
    assert (third.status, third.pager) == ("pending", "3 / 3")


def test_the_pager_moves_both_ways(chat: ChatClient) -> None:
    chat_id = new_chat(chat)
    first = ask(chat, chat_id, "What do voles do?")["reply"]["id"]
    url = _regenerate(chat, chat_id, first, f"/chat/{chat_id}")
    url = _regenerate(chat, chat_id, _shown_answers(chat.client.get(url).text)[0].message_id, url)
    shown = _shown_answers(chat.client.get(url).text)[0]
    seen = [shown.pager]
    for rel in ["prev", "prev", "next", "next"]:
        shown = _shown_answers(chat.client.get(f"/chat/{chat_id}{shown.links[rel]}").text)[0]
        seen.append(shown.pager)
    assert seen == ["3 / 3", "2 / 3", "1 / 3", "2 / 3", "3 / 3"]
    assert shown.message_id == detail(chat, chat_id)["thread"][1]["sibling_ids"][-1]
