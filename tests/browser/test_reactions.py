"""Reactions in a real browser: the bar toggles in place with htmx and by a page load
without JavaScript, and reads as text ("+1 1") whether or not an emoji font is there."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.models import User
from tests.browser import crowd
from tests.browser.conftest import screenshot
from tests.growth.factories import add_reply, make_tree

pytestmark = pytest.mark.browser


def shown_text(button: Any) -> str:
    """What the button shows as text, without its emoji and its screen-reader words."""
    return " ".join(
        button.evaluate(
            """(button) => [...button.querySelectorAll(".reaction-name, .reaction-count")]
                 .filter((part) => part.getBoundingClientRect().width > 0)
                 .map((part) => part.textContent)"""
        )
    )


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_reaction_in_the_tree_viewer_toggles_and_reads_as_text(
    live_db: sessionmaker[Session], new_page: Any, javascript: bool
) -> None:
    author_id, _ = crowd.volunteer(live_db, "author")
    _user_id, token = crowd.volunteer(live_db, f"tess{int(javascript)}")
    with live_db.begin() as db:
        author = db.get_one(User, author_id)
        tree, root = make_tree(db, author)
        reply = add_reply(db, tree, root, author)
        tree_id, reply_id = tree.id, reply.id
    page = new_page(token, javascript=javascript)
    page.goto(f"/trees/{tree_id}")

    bar = page.locator(f"#reactions-{reply_id}")
    plus_one = bar.locator("button[value='thumbs_up']")
    expect(plus_one).to_have_attribute("aria-pressed", "false")
    # The name and the count are text, on screen and in the button's name; the emoji
    # beside them is decoration.
    assert shown_text(plus_one) == "+1 0"
    expect(bar.get_by_role("button", name="+1 (thumbs up) 0", exact=True)).to_be_visible()
    plus_one.click()
    plus_one = page.locator(f"#reactions-{reply_id} button[value='thumbs_up']")
    expect(plus_one).to_have_attribute("aria-pressed", "true")
    assert shown_text(plus_one) == "+1 1"
    screenshot(page, f"reactions-{'js' if javascript else 'nojs'}")

    page.locator(f"#reactions-{reply_id} button[value='thumbs_down']").click()
    expect(page.locator(f"#reactions-{reply_id} button[value='thumbs_down']")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator(f"#reactions-{reply_id} button[value='thumbs_up']")).to_have_attribute(
        "aria-pressed", "false"
    )
