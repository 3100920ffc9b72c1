"""Chat in a real browser against the real model server serving a tiny model: tokens
stream, thumbs are stored, an opted-out chat stays out of the release, a deleted chat
disappears."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.security import SESSION_COOKIE
from hedgerow.export.run import run_export
from hedgerow.models import Chat, ChatMessage
from tests.browser import crowd
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.growth.factories import override_settings
from tests.inference.model_server import build_model, model_server, register_serving
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


@pytest.fixture
def chat_site(
    browser_database_url: str,
    browser_engine: Engine,
    live_db: sessionmaker[Session],
    tmp_path: Path,
) -> Iterator[str]:
    """The model server and a web server pointed at it, both on the browser database."""
    register_serving(browser_engine, "hedgerow-chat", build_model(tmp_path / "model"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    ARTIFACTS.mkdir(exist_ok=True)
    with model_server(
        ARTIFACTS / f"chat-model-server-{worker}.log", DATABASE_URL=browser_database_url
    ) as model_url:
        env = {
            **os.environ,
            "DATABASE_URL": browser_database_url,
            "HEDGEROW_ENVIRONMENT": "test",
            "HEDGEROW_CHAT_INFERENCE_URL": model_url,
        }
        with live_uvicorn(env, ARTIFACTS / f"chat-web-{worker}.log") as base_url:
            yield base_url


@pytest.fixture
def own_browser() -> Iterator[Any]:
    """A browser of this test's own, closed at its end: the session-wide `browser` fixture
    would keep Playwright's event loop running, and test_moderation (next in order) starts
    its own Playwright, which refuses to run inside a running loop."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS, _chromium

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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
    own_browser: Any,
    live_db: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_id, token = crowd.volunteer(live_db, "chatter")
    page = _page(own_browser, chat_site, token)
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
