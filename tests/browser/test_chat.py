"""Chat in a real browser against the real model server serving a tiny model: tokens
stream, thumbs are stored, an opted-out chat stays out of the release, a deleted chat
disappears."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.security import SESSION_COOKIE
from hedgerow.export.run import run_export
from hedgerow.models import Chat, ChatMessage
from tests.browser import crowd
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.growth.factories import override_settings
from tests.inference.model_server import build_model, model_server, register_serving
from tests.inference.scripted_model import MARKDOWN_SCRIPT, build_scripted_model
from tests.live_server import live_uvicorn

pytestmark = pytest.mark.browser

ANSWER_TIMEOUT_MS = 60_000
# Records every text the answer bubble shows while it streams.
WATCH_STREAM = """
window.seenTexts = [];
new MutationObserver(() => {
  const text = document.querySelector('[data-status="streaming"] .bubble-text');
  if (text && text.textContent && window.seenTexts.at(-1) !== text.textContent) {
    window.seenTexts.push(text.textContent);
  }
}).observe(document.getElementById("main"), {subtree: true, childList: true, characterData: true});
"""


@contextmanager
def _chat_servers(database_url: str, name: str) -> Iterator[str]:
    """The model server and a web server pointed at it, on the browser database; the
    models must be registered already."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    ARTIFACTS.mkdir(exist_ok=True)
    with model_server(
        ARTIFACTS / f"{name}-model-server-{worker}.log", DATABASE_URL=database_url
    ) as model_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HEDGEROW_ENVIRONMENT": "test",
            "HEDGEROW_CHAT_INFERENCE_URL": model_url,
        }
        with live_uvicorn(env, ARTIFACTS / f"{name}-web-{worker}.log") as base_url:
            yield base_url


@pytest.fixture
def chat_site(
    browser_database_url: str,
    browser_engine: Engine,
    live_db: sessionmaker[Session],
    tmp_path: Path,
) -> Iterator[str]:
    """The model server and a web server pointed at it, both on the browser database."""
    register_serving(browser_engine, "hedgerow-chat", build_model(tmp_path / "model"))
    with _chat_servers(browser_database_url, "chat") as base_url:
        yield base_url


def _page(browser: Any, base_url: str, token: str) -> Any:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": base_url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    return page


def _ask(page: Any, prompt: str) -> None:
    page.get_by_test_id("prompt").fill(prompt)
    page.get_by_test_id("send").click()
    # Generous: the model server loads the model on its first request, and CI is busy.
    expect(page.get_by_test_id("thumbs-up")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_test_id("prompt")).to_have_value("")


def test_chat_in_the_browser(
    chat_site: str,
    browser: Any,
    live_db: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_id, token = crowd.volunteer(live_db, "chatter")
    page = _page(browser, chat_site, token)
    page.goto("/chat")
    page.get_by_test_id("new-chat").click()
    page.wait_for_url("**/chat/*")
    page.locator("summary", has_text="Model settings").click()
    page.get_by_role("button", name="Precise").click()
    page.locator("input[name=max_tokens]").fill("48")
    page.evaluate(WATCH_STREAM)

    # An empty prompt is refused and nothing is sent.
    page.get_by_test_id("send").click()
    expect(page.locator("#composer-error")).to_contain_text("Write a message first")

    _ask(page, "What do hedgehogs do in winter?")
    # The answer was on screen while it streamed. (That it arrives in several pieces is
    # checked on the API, test_chat_api: a busy browser may read a short stream in one
    # chunk and show it in one step.)
    seen = page.evaluate("window.seenTexts")
    assert any(text.strip() for text in seen), f"no text shown while it streamed: {seen}"
    final = page.locator(".bubble-assistant .bubble-text").last.text_content()
    assert seen[-1] in final
    screenshot(page, "chat")

    page.get_by_test_id("thumbs-up").click()
    expect(page.get_by_test_id("thumbs-up")).to_have_attribute("aria-pressed", "true")
    with live_db() as db:
        answer = db.scalars(
            select(ChatMessage).where(ChatMessage.role == "assistant").order_by(ChatMessage.id)
        ).one()
        assert answer.thumbs == 1 and answer.status == "complete"
        assert answer.text == final.strip() or final.strip() in answer.text
    private_url = page.url.split("?")[0]

    # This one stays out of the datasets.
    page.get_by_test_id("allow-data-use").uncheck()
    page.get_by_test_id("save-settings").click()
    expect(page.get_by_test_id("allow-data-use")).not_to_be_checked()

    # A second chat is shared, answered, then deleted: it disappears.
    page.goto("/chat")
    page.get_by_test_id("new-chat").click()
    page.wait_for_url("**/chat/*")
    _ask(page, "What do wrens do in spring?")
    shared_url = page.url.split("?")[0]
    page.goto("/chat")
    page.get_by_test_id("new-chat").click()
    page.wait_for_url("**/chat/*")
    _ask(page, "A chat I regret")
    doomed_url = page.url.split("?")[0]
    page.get_by_test_id("delete-chat").click()
    page.wait_for_url("**/chat")
    expect(page.get_by_test_id("chat-list")).not_to_contain_text("A chat I regret")
    expect(page.get_by_test_id("chat-list")).to_contain_text("What do wrens do in spring?")
    assert page.goto(doomed_url).status == 404
    assert page.goto(private_url).status == 200
    assert page.goto(shared_url).status == 200

    override_settings(monkeypatch, releases_dir=tmp_path / "releases")
    outcome = run_export(live_db)
    chats = [
        json.loads(line) for line in (outcome.directory / "chats.jsonl").read_text().splitlines()
    ]
    prompts = [chat["messages"][0]["text"] for chat in chats]
    assert prompts == ["What do wrens do in spring?"]
    assert chats[0]["messages"][1]["synthetic"] is True
    with live_db() as db:
        assert (
            db.scalar(select(Chat.allow_data_use).where(Chat.title.like("What do hedgehogs%")))
            is False
        )
    assert user_id
    assert not page.js_errors, page.js_errors
    page.context.close()


# What follows runs against a model that answers in known Markdown (tests/inference/
# scripted_model.py), served with the tiny one by one pair of servers for the module.
SCRIPTED_MARKDOWN = "scripted-markdown"
# Records how the streaming answer changes: whether a block the server settled (the first
# paragraph, once the code block after it shows) is ever taken off the page again.
WATCH_SETTLED = """
window.settled = {first: null, removed: false};
new MutationObserver((records) => {
  const body = document.querySelector('[data-status="streaming"] .bubble-text');
  if (!body) return;
  for (const record of records) {
    for (const node of record.removedNodes) {
      if (node === window.settled.first) window.settled.removed = true;
    }
  }
  if (!window.settled.first && body.querySelector("pre")) {
    window.settled.first = body.firstElementChild;
  }
}).observe(document.getElementById("main"), {subtree: true, childList: true});
"""
# Notes the prompt box's content at the moment a prompt is posted.
WATCH_SENDS = """
window.promptsAtSend = [];
const originalFetch = window.fetch;
window.fetch = function (url, options) {
  if (options && options.method === "POST" && String(url).endsWith("/messages")) {
    window.promptsAtSend.push(document.getElementById("prompt").value);
  }
  return originalFetch.apply(this, arguments);
};
"""


@pytest.fixture(scope="module")
def scripted_site(
    browser_database_url: str, browser_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """The servers with the scripted Markdown model serving beside the tiny one; the
    tables are emptied at the end of the module."""
    root = tmp_path_factory.mktemp("chat-models")
    register_serving(browser_engine, "hedgerow-chat", build_model(root / "tiny"))
    register_serving(
        browser_engine, SCRIPTED_MARKDOWN, build_scripted_model(root / "md", MARKDOWN_SCRIPT)
    )
    maker = sessionmaker(bind=browser_engine, expire_on_commit=False)
    try:
        with _chat_servers(browser_database_url, "chat-scripted") as base_url:
            yield base_url, maker
    finally:
        with browser_engine.begin() as conn:
            tables = conn.scalars(
                text(
                    "SELECT quote_ident(tablename) FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ).all()
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


def _scripted_chat(browser: Any, site: tuple[str, sessionmaker[Session]], username: str) -> Any:
    """A new chat with the scripted Markdown model, open in a page."""
    base_url, maker = site
    _, token = crowd.volunteer(maker, username)
    page = _page(browser, base_url, token)
    page.goto("/chat")
    page.get_by_test_id("new-chat").click()
    page.wait_for_url("**/chat/*")
    page.locator("input[name=model]").fill(SCRIPTED_MARKDOWN)
    page.get_by_test_id("save-settings").click()
    expect(page.locator("input[name=model]")).to_have_value(SCRIPTED_MARKDOWN)
    return page


def test_an_answer_shows_as_markdown_as_it_streams(
    scripted_site: tuple[str, sessionmaker[Session]], browser: Any
) -> None:
    page = _scripted_chat(browser, scripted_site, "markdown-reader")
    page.evaluate(WATCH_SETTLED)
    _ask(page, "How do hedgehogs spend the winter?")
    answer = page.locator(".bubble-assistant .bubble-text").last
    expect(answer.locator("strong")).to_have_text("sleep")
    expect(answer.locator("pre code.language-python")).to_contain_text("return 'zzz'")
    expect(answer.locator("li")).to_have_text(["leaves", "<b>moss</b>"])
    assert "**" not in (answer.text_content() or "")
    # No block the server settled was rebuilt while the answer streamed.
    settled = page.evaluate("window.settled.first && window.settled.first.outerHTML")
    assert settled is not None and settled.startswith("<p>Hedgehogs")
    assert page.evaluate("window.settled.removed") is False
    screenshot(page, "chat-markdown")
    assert not page.js_errors, page.js_errors
    page.context.close()


def test_regenerate_shows_and_streams_the_new_answer_at_once(
    scripted_site: tuple[str, sessionmaker[Session]], browser: Any
) -> None:
    page = _scripted_chat(browser, scripted_site, "regenerator")
    _ask(page, "And in spring?")
    first = page.locator(".bubble-assistant").last.get_attribute("data-message-id")
    page.get_by_test_id("regenerate").click()
    expect(page.get_by_test_id("pager")).to_have_text("2 / 2")
    answer = page.locator(".bubble-assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=ANSWER_TIMEOUT_MS)
    assert answer.get_attribute("data-message-id") != first
    expect(answer.locator("strong")).to_have_text("sleep")
    # And back to the first one.
    page.get_by_role("link", name="Previous alternative").click()
    expect(page.get_by_test_id("pager")).to_have_text("1 / 2")
    expect(page.locator(".bubble-assistant").last).to_have_attribute("data-message-id", first)
    assert not page.js_errors, page.js_errors
    page.context.close()


def test_the_prompt_leaves_the_box_on_send_and_comes_back_if_sending_fails(
    scripted_site: tuple[str, sessionmaker[Session]], browser: Any
) -> None:
    page = _scripted_chat(browser, scripted_site, "double-sender")
    page.evaluate(WATCH_SENDS)
    prompt = page.get_by_test_id("prompt")

    # The server cannot be reached: the prompt is back in the box, with the reason.
    page.route("**/api/v1/chats/*/messages", lambda route: route.abort())
    prompt.fill("A prompt that gets lost")
    page.get_by_test_id("send").click()
    expect(page.locator("#composer-error")).to_contain_text("could not be reached")
    expect(prompt).to_have_value("A prompt that gets lost")
    page.unroute("**/api/v1/chats/*/messages")

    # Sent: the box is empty as it goes, so a double click sends it once.
    prompt.fill("What do badgers do?")
    page.get_by_test_id("send").dblclick()
    expect(page.get_by_test_id("thumbs-up")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    # Two posts (the lost one, then this one, once), each with the box already empty.
    assert page.evaluate("window.promptsAtSend") == ["", ""]
    expect(page.locator(".bubble-user")).to_have_count(1)
    # Nothing left to stop.
    expect(page.get_by_test_id("stop")).to_be_hidden()
    with scripted_site[1]() as db:
        prompts = db.scalars(
            select(ChatMessage.text).where(ChatMessage.text == "What do badgers do?")
        ).all()
    assert prompts == ["What do badgers do?"]
    assert not page.js_errors, page.js_errors
    page.context.close()


def test_the_sidebar_and_the_thumbs_read_well_without_emoji_fonts(
    scripted_site: tuple[str, sessionmaker[Session]], browser: Any
) -> None:
    page = _scripted_chat(browser, scripted_site, "thumber")
    _ask(page, "Anything else?")
    for name, test_id in [("Good", "thumbs-up"), ("Bad", "thumbs-down")]:
        button = page.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        expect(button).to_have_attribute("data-testid", test_id)
        assert not re.search("[\U0001f000-\U0001faff]", button.text_content() or "")
        icon = button.locator("svg").bounding_box()
        assert icon is not None and icon["width"] > 0 and icon["height"] > 0
    page.get_by_role("button", name="Bad", exact=True).click()
    expect(page.get_by_test_id("thumbs-down")).to_have_attribute("aria-pressed", "true")

    # The Save button sits under the checkboxes, not inside a label's text.
    save = page.get_by_test_id("save-settings").bounding_box()
    for label in ["Hide from my list", "Share this chat in the open dataset"]:
        box = page.locator(".chat-side label", has_text=label).bounding_box()
        assert box is not None and save is not None
        assert box["y"] + box["height"] <= save["y"], (label, box, save)
    screenshot(page, "chat-sidebar")
    assert not page.js_errors, page.js_errors
    page.context.close()
