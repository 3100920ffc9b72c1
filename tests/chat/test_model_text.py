"""What the chat shows of a model's text: whole characters, no control characters (other
than newline and tab) and no U+FFFD, streamed and stored alike, whatever the server sent;
and answers as Markdown, rendered as they stream and on the page."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from sqlalchemy import Engine

from hedgerow.chat.client import printable
from hedgerow.markdown import render_markdown
from tests.chat.conftest import ChatClient
from tests.chat.helpers import detail, send, stream_events
from tests.inference.model_server import register_serving
from tests.inference.scripted_model import (
    MARKDOWN_ANSWER,
    MARKDOWN_SCRIPT,
    SCRIPT,
    SCRIPT_CUT_INSIDE_THE_EMOJI,
    build_scripted_model,
)

SCRIPTED = "scripted"
SCRIPTED_MARKDOWN = "scripted-markdown"
SERVING_DEADLINE_SECONDS = 30
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


@pytest.fixture(scope="module")
def scripted(
    engine: Engine, served: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The scripted models serving beside the tiny one (the module's server goes at its
    end, and the tables are emptied then)."""
    for name, script in [(SCRIPTED, SCRIPT), (SCRIPTED_MARKDOWN, MARKDOWN_SCRIPT)]:
        register_serving(engine, name, build_scripted_model(tmp_path_factory.mktemp(name), script))
    deadline = time.monotonic() + SERVING_DEADLINE_SECONDS
    while len(httpx.get(f"{served[0]}/models", timeout=30).json()["data"]) < 3:
        assert time.monotonic() < deadline, "the scripted models never came up"
        time.sleep(0.1)  # polling the server's registry refresh, bounded by the deadline
    return SCRIPTED


def _chat_with(chat: ChatClient, model: str) -> int:
    created = chat.client.post("/api/v1/chats", json={"model": model}, headers=chat.headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _events(chat: ChatClient, chat_id: int, max_tokens: int) -> list[tuple[str, dict]]:
    sent = send(chat, chat_id, "Say it", max_tokens=max_tokens)
    assert sent.status_code == 201, sent.text
    return stream_events(chat, sent.json()["stream_url"])


def _answer(chat: ChatClient, model: str, max_tokens: int) -> tuple[list[str], str, str]:
    """The streamed pieces, the `done` text and the stored text of one answer."""
    chat_id = _chat_with(chat, model)
    events = _events(chat, chat_id, max_tokens)
    pieces = [data["text"] for name, data in events if name == "delta"]
    done = [data for name, data in events if name == "done"]
    assert len(done) == 1, events
    return pieces, done[0]["text"], detail(chat, chat_id)["thread"][1]["text"]


def test_control_characters_and_invalid_bytes_never_reach_the_chat(
    chat: ChatClient, scripted: str
) -> None:
    # The model writes "Oké€😀!", a CTRL-W, a backspace, the byte 0xFF, then "?".
    pieces, done, stored = _answer(chat, scripted, max_tokens=64)
    assert not [piece for piece in pieces if UNPRINTABLE.search(piece)], pieces
    assert done == stored == "".join(pieces) == "Oké€😀!?"


def test_a_character_cut_off_by_the_token_limit_is_left_out(
    chat: ChatClient, scripted: str
) -> None:
    pieces, done, stored = _answer(chat, scripted, max_tokens=SCRIPT_CUT_INSIDE_THE_EMOJI)
    assert done == stored == "".join(pieces) == "Oké€"


def test_newlines_and_tabs_are_kept_and_a_windows_line_end_becomes_a_newline() -> None:
    assert printable("a\tb\nc\r\nd\x00e\x1bf\x85g\ufffd") == "a\tb\nc\ndefg"


def test_an_answer_streams_as_markdown_block_by_block(chat: ChatClient, scripted: str) -> None:
    chat_id = _chat_with(chat, SCRIPTED_MARKDOWN)
    events = _events(chat, chat_id, max_tokens=64)
    deltas = [data for name, data in events if name == "delta"]
    [done] = [data for name, data in events if name == "done"]
    whole = str(render_markdown(MARKDOWN_ANSWER))
    assert done["text"] == MARKDOWN_ANSWER and done["html"] == whole
    assert "<strong>sleep</strong>" in whole and '<code class="language-python">' in whole
    assert "&lt;b&gt;moss&lt;/b&gt;" in whole and "<b>" not in whole
    # Each piece brings the blocks it settled (each once) and the open tail, which add up
    # to the whole answer; the code block with a blank line inside settles in one piece.
    settled = [d["settled_html"] for d in deltas if d["settled_html"]]
    assert "".join(settled) + deltas[-1]["tail_html"] == whole
    assert settled[0] == "<p>Hedgehogs <strong>sleep</strong> all winter.</p>\n"
    assert [html.count("<pre>") for html in settled] == [0, 1]
    assert deltas[0]["tail_html"] == "<p>Hedgehogs <strong>sleep</strong></p>\n"


def test_the_chat_page_shows_answers_as_markdown_and_prompts_as_text(
    chat: ChatClient, scripted: str
) -> None:
    chat_id = _chat_with(chat, SCRIPTED_MARKDOWN)
    _events(chat, chat_id, max_tokens=64)
    send(chat, chat_id, "Say **it** <b>now</b>", parent_id=detail(chat, chat_id)["thread"][1]["id"])
    page = chat.client.get(f"/chat/{chat_id}").text
    assert str(render_markdown(MARKDOWN_ANSWER)) in page
    assert "Say **it** &lt;b&gt;now&lt;/b&gt;" in page
    # The stream of a finished answer is one `done`, with its HTML.
    reply_id = detail(chat, chat_id)["thread"][1]["id"]
    [(name, data)] = stream_events(chat, f"/api/v1/chats/{chat_id}/messages/{reply_id}/stream")
    assert name == "done" and data["html"] == str(render_markdown(MARKDOWN_ANSWER))
