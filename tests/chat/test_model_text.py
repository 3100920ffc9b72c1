"""What the chat shows of a model's text: whole characters, no control characters (other
than newline and tab) and no U+FFFD, streamed and stored alike, whatever the server sent."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from sqlalchemy import Engine

from hedgerow.chat.client import printable
from tests.chat.conftest import ChatClient
from tests.chat.helpers import detail, send, stream_events
from tests.inference.model_server import register_serving
from tests.inference.scripted_model import SCRIPT_CUT_INSIDE_THE_EMOJI, build_scripted_model

SCRIPTED = "scripted"
SERVING_DEADLINE_SECONDS = 30
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


@pytest.fixture(scope="module")
def scripted(
    engine: Engine, served: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The scripted model serving beside the tiny one (the module's server goes at its
    end, and the tables are emptied then)."""
    register_serving(engine, SCRIPTED, build_scripted_model(tmp_path_factory.mktemp("scripted")))
    deadline = time.monotonic() + SERVING_DEADLINE_SECONDS
    while SCRIPTED not in [
        m["id"] for m in httpx.get(f"{served[0]}/models", timeout=30).json()["data"]
    ]:
        assert time.monotonic() < deadline, "the scripted model never came up"
        time.sleep(0.1)  # polling the server's registry refresh, bounded by the deadline
    return SCRIPTED


def _answer(chat: ChatClient, model: str, max_tokens: int) -> tuple[list[str], str, str]:
    """The streamed pieces, the `done` text and the stored text of one answer."""
    created = chat.client.post("/api/v1/chats", json={"model": model}, headers=chat.headers)
    chat_id = created.json()["id"]
    sent = send(chat, chat_id, "Say it", max_tokens=max_tokens)
    assert sent.status_code == 201, sent.text
    events = stream_events(chat, sent.json()["stream_url"])
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
