"""In a real browser: a volunteer reports an offensive reply, a moderator deletes it from the
queue, the tree viewer stops showing it to volunteers, the audit log names the moderator,
and undelete brings the reply back. A moderator reads track records on the trollboard and
the user page, at desktop and phone widths, with and without JavaScript.

Runs against a live uvicorn on 127.0.0.1 with its own committed, migrated database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from hedgerow.models import Reaction, ReactionKind, Role, VolunteerReliability
from tests.browser.conftest import screenshot
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.growth.factories import add_reply, make_tree
from tests.live_server import live_uvicorn
from tests.ops import databases
from tests.servers import redis_url_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium"),
]

OFFENSIVE = "Only an idiot would ask that, you worthless clown."


@dataclass
class Site:
    base_url: str
    database_url: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from hedgerow import migrate

    database_url = databases.create_empty_database("browser_moderation")
    migrate.upgrade(database_url)
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        # A Redis db of its own, away from the in-process tests' flushes.
        "REDIS_URL": redis_url_for((int(os.environ.get("HEDGEROW_TEST_REDIS_DB", "1")) + 8) % 16),
        "HEDGEROW_ENVIRONMENT": "test",
    }
    try:
        with live_uvicorn(env, log_path) as base_url:
            yield Site(base_url, database_url)
    finally:
        databases.drop_database("browser_moderation")


@dataclass
class Story:
    tree_id: int
    reply_id: int
    volunteer: str
    moderator: str


@pytest.fixture
def story(site: Site) -> Story:
    from hedgerow.db import make_engine

    engine = make_engine(site.database_url)
    with Session(engine) as db, db.begin():
        author = make_user(db, username="prompt_author")
        volunteer = make_user(db, username="vera_volunteer")
        moderator = make_user(db, username="mona_moderator", role=Role.moderator)
        tree, root = make_tree(db, author)
        reply = add_reply(db, tree, root, make_user(db, username="rude_replier"))
        reply.text = OFFENSIVE
        story = Story(tree.id, reply.id, volunteer.username, moderator.username)
    engine.dispose()
    return story


def log_in(site: Site, page: Any, username: str) -> None:
    page.goto(f"{site.base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_a_reported_reply_is_deleted_by_a_moderator_and_undeleted(
    site: Site, story: Story, browser: Any
) -> None:
    from playwright.sync_api import expect

    tree_url = f"{site.base_url}/trees/{story.tree_id}"
    try:
        volunteer = browser.new_context().new_page()
        moderator = browser.new_context().new_page()
        log_in(site, volunteer, story.volunteer)
        log_in(site, moderator, story.moderator)

        # The volunteer sees the reply and reports it.
        volunteer.goto(tree_url)
        expect(volunteer.get_by_text(OFFENSIVE)).to_be_visible()
        volunteer.goto(
            f"{site.base_url}/messages/{story.reply_id}/report?next=/trees/{story.tree_id}"
        )
        volunteer.get_by_label("Reason").select_option("offensive")
        volunteer.get_by_label("What is wrong?").fill("Insults the prompter.")
        volunteer.get_by_role("button", name="Send report").click()
        expect(volunteer.get_by_role("status")).to_contain_text("reported to the moderators")

        # The moderator finds it in the queue and deletes it.
        moderator.goto(f"{site.base_url}/moderation/queue")
        item = moderator.locator(f"#queue-{story.reply_id}")
        expect(item).to_contain_text(OFFENSIVE)
        expect(item).to_contain_text("offensive")
        item.get_by_label(f"Reason for deleting #{story.reply_id}").fill("insults")
        item.get_by_role("button", name="Delete with replies").click()
        expect(moderator.get_by_test_id("delete-count")).to_contain_text("This deletes 1 message")
        moderator.get_by_role("button", name="Delete 1 message").click()
        expect(moderator.get_by_text("No open reports")).to_be_visible()

        # Volunteers no longer see it in the tree viewer.
        volunteer.goto(tree_url)
        expect(volunteer.get_by_text(OFFENSIVE)).to_have_count(0)

        # The audit log says who deleted it.
        moderator.goto(f"{site.base_url}/moderation/audit?action=message.delete_subtree")
        row = moderator.locator("tr.audit-event").first
        expect(row).to_contain_text(story.moderator)
        expect(row).to_contain_text(f"message #{story.reply_id}")
        expect(row).to_contain_text("insults")

        # Undelete brings it back for volunteers.
        moderator.goto(f"{site.base_url}/moderation/messages/{story.reply_id}")
        moderator.get_by_role("button", name="Undelete").click()
        expect(moderator.locator("tr.audit-event").first).to_contain_text(
            "message.undelete_subtree"
        )
        volunteer.goto(tree_url)
        expect(volunteer.get_by_text(OFFENSIVE)).to_be_visible()
    finally:
        # The session's browser stays open for the next tests; this test's pages go.
        for context in browser.contexts:
            context.close()


@dataclass
class Board:
    moderator: str
    troll_id: int
    careless_id: int


@pytest.fixture(scope="module")
def board(site: Site) -> Board:
    """Two users on the trollboard: the higher score with a good review record, the lower
    score with a poor one."""
    from hedgerow.db import make_engine

    engine = make_engine(site.database_url)
    with Session(engine) as db, db.begin():
        moderator = make_user(db, username="max_moderator", role=Role.moderator)
        troll = make_user(db, username="a_very_long_username_of_a_troll")
        careless = make_user(db, username="careless_carl")
        tree, root = make_tree(db, make_user(db))
        for author, kind in ((troll, ReactionKind.red_flag), (careless, ReactionKind.thumbs_down)):
            reply = add_reply(db, tree, root, author)
            db.add(Reaction(message_id=reply.id, user_id=make_user(db).id, kind=kind))
        db.add_all(
            [
                VolunteerReliability(
                    user_id=troll.id,
                    reviews_settled=30,
                    reviews_agreed=29,
                    messages_decided=8,
                    messages_accepted=3,
                ),
                VolunteerReliability(user_id=careless.id, reviews_settled=12, reviews_agreed=3),
            ]
        )
        db.flush()
        result = Board(moderator.username, troll.id, careless.id)
    engine.dispose()
    return result


def board_order(page: Any, board: Board) -> list[int]:
    """The order of the board's two users on the page (other tests' users may be there)."""
    rows = page.locator("tr[data-user-id]").all()
    ids = [int(row.get_attribute("data-user-id")) for row in rows]
    return [user_id for user_id in ids if user_id in (board.troll_id, board.careless_id)]


def fits_the_viewport(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no_javascript"])
def test_a_moderator_sorts_the_trollboard_by_reliability_and_reads_a_track_record(
    site: Site, board: Board, javascript: bool, browser: Any
) -> None:
    from playwright.sync_api import expect

    try:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
        )
        page = context.new_page()
        log_in(site, page, board.moderator)
        page.goto(f"{site.base_url}/moderation/trollboard?window=all")
        assert board_order(page, board) == [board.troll_id, board.careless_id]

        # The column header sorts and keeps the window.
        page.get_by_role("link", name="Reliability").click()
        page.wait_for_url(lambda url: "sort=reliability" in url)
        assert "window=all" in page.url
        assert board_order(page, board) == [board.careless_id, board.troll_id]
        careless_row = page.locator(f'tr[data-user-id="{board.careless_id}"]')
        expect(careless_row.locator("td.reliability")).to_contain_text("(3 of 12)")
        if javascript:
            screenshot(page, "moderation-trollboard")

        # On a phone the header is hidden; the Order select sorts instead.
        page.set_viewport_size({"width": 375, "height": 800})
        assert fits_the_viewport(page)
        page.get_by_label("Order").select_option("score")
        if not javascript:
            page.get_by_role("button", name="Show").click()
        expect(page.locator("#board caption")).to_contain_text("highest score first")
        assert board_order(page, board) == [board.troll_id, board.careless_id]

        page.goto(f"{site.base_url}/moderation/users/{board.troll_id}")
        expect(page.locator("#review-reliability")).to_contain_text(
            "29 of 30 reviews agreed with the decision"
        )
        expect(page.locator("#author-acceptance")).to_contain_text("3 of 8 messages accepted")
        assert fits_the_viewport(page)
        if javascript:
            screenshot(page, "moderation-user")
        context.close()
    finally:
        # The session's browser stays open for the next tests; this test's pages go.
        for context in browser.contexts:
            context.close()
