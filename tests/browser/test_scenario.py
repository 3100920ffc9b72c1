"""A tree's whole life through the browser: a new volunteer signs up and writes a prompt;
volunteers review, reply and rank, some in the browser, some through the service; the
tree viewer shows the ranked tree."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.models import Message, Ranking, Tree, TreeState
from tests.browser import crowd
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

TASK_URL = re.compile(r".*/tasks/\d+.*")
SAVED = "Thank you, that was saved"


def open_task(page: Any, kind: str) -> None:
    """Start a task of `kind` from the dashboard, skipping a task of another kind still
    held (one task at a time: asking again resumes the one you hold)."""
    page.goto("/dashboard")
    page.click(f"button[data-kind='{kind}']")
    page.wait_for_url(TASK_URL)
    panel = page.locator("#task-panel")
    held = panel.get_attribute("data-task-kind")
    if held != kind:
        # Skipping asks for the next task of the kind wanted, in place.
        page.get_by_role("button", name="Skip", exact=True).click()
        expect(panel).not_to_have_attribute("data-task-kind", held)
    expect(panel).to_have_attribute("data-task-kind", kind)


def submitted(page: Any) -> None:
    expect(page.get_by_test_id("notice")).to_contain_text(SAVED)


def review_in_browser(page: Any, kind: str) -> None:
    open_task(page, kind)
    screenshot(page, kind)
    for radio in page.locator("fieldset.kind-yes_no input[value='0']").all():
        radio.check()
    # The number keys answer the first unanswered scale: quality, the required one.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("4")
    expect(page.locator("input[name='label.quality'][value='3']")).to_be_checked()
    page.keyboard.press("Control+Enter")
    submitted(page)


def write_in_browser(page: Any, kind: str, text: str) -> None:
    open_task(page, kind)
    page.fill("#f-text", text)
    expect(page.locator("#text-counter")).to_contain_text(f"{len(text)} / ")
    screenshot(page, kind)
    page.get_by_test_id("submit").click()
    submitted(page)


def test_a_tree_from_sign_up_to_ready_for_export(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    # A new volunteer signs up, accepts the Terms and writes a prompt.
    alice = new_page()
    alice.goto("/signup")
    alice.fill("#f-username", "alice")
    alice.fill("#f-password", "a long enough password 123")
    alice.get_by_role("button", name="Sign up").click()
    alice.get_by_role("button", name="I accept the Terms of Service").click()
    alice.goto("/dashboard")
    screenshot(alice, "dashboard")
    open_task(alice, "write_prompt")
    alice.select_option("#f-category", "open_qa")
    alice.fill("#f-text", "How do hedgehogs **prepare** for winter, and how can I help them?")
    alice.get_by_role("button", name="Preview").click()
    expect(alice.locator("#preview strong")).to_have_text("prepare")
    screenshot(alice, "write_prompt")
    alice.get_by_test_id("submit").click()
    submitted(alice)

    with live_db() as db:
        tree = db.scalars(select(Tree)).one()
        tree_id, root_id = tree.id, tree.root_message_id
    assert crowd.tree_state(live_db, tree_id) == TreeState.prompt_review

    bob_id, bob_token = crowd.volunteer(live_db, "bob")
    _carol_id, carol_token = crowd.volunteer(live_db, "carol")
    dave_id, dave_token = crowd.volunteer(live_db, "dave")
    bob, carol, dave = new_page(bob_token), new_page(carol_token), new_page(dave_token)

    # Bob reviews the prompt in the browser; it enters the lottery and, a growing slot
    # being free, is drawn at once.
    review_in_browser(bob, "review_prompt")
    assert crowd.tree_state(live_db, tree_id) == TreeState.growing

    # Replies as the assistant: Bob through the service, Carol in the browser.
    bob_reply = crowd.reply(
        live_db, bob_id, "reply_assistant", "Leave a wild corner with leaves and logs."
    )
    review_in_browser(alice, "review_assistant_reply")
    write_in_browser(carol, "reply_assistant", "Put out water and meaty cat food, never milk.")
    crowd.review(live_db, dave_id, "review_assistant_reply")

    # Alice continues as the prompter; Bob reviews that in the browser.
    write_in_browser(alice, "reply_prompter", "What if I find one awake in December?")
    review_in_browser(bob, "review_prompter_reply")
    assert crowd.tree_state(live_db, tree_id) == TreeState.ranking

    # Dave ranks the two assistant replies in the browser, with the buttons.
    open_task(dave, "rank_assistant_replies")
    screenshot(dave, "rank_assistant_replies")
    first = dave.locator(".rank-item").nth(0)
    moved_id = int(first.get_attribute("data-message-id"))
    first.locator(".rank-down").click()
    expect(dave.locator(".rank-item").nth(1)).to_have_attribute("data-message-id", str(moved_id))
    dave.get_by_test_id("submit").click()
    submitted(dave)

    assert crowd.tree_state(live_db, tree_id) == TreeState.ready_for_export
    with live_db() as db:
        ranking = db.scalars(select(Ranking)).one()
        assert ranking.ordered_message_ids[-1] == moved_id
        winner = db.scalar(
            select(Message.id).where(Message.parent_id == root_id, Message.consensus_rank == 0)
        )
        assert winner == ranking.ordered_message_ids[0]
        assert bob_reply in ranking.ordered_message_ids

    # The tree viewer shows the ranked tree, the winner first.
    alice.goto(f"/trees/{tree_id}?message={winner}")
    expect(alice.get_by_test_id("tree-state")).to_have_text("ready for export")
    expect(alice.locator(f"#m{winner} .badge.rank").first).to_have_text("rank 1")
    expect(alice.locator(".tree-root > li > details > ol > li").first).to_have_attribute(
        "data-message-id", str(winner)
    )
    expect(alice.locator(".tree-node")).to_have_count(4)
    screenshot(alice, "tree")
    alice.goto("/leaderboard?period=all")
    expect(alice.locator("tr.viewer")).to_contain_text("(you)")
    screenshot(alice, "leaderboard")
    alice.goto("/stats")
    expect(alice.locator("figure.chart [role=img]")).to_have_count(4)  # four charts drawn
    screenshot(alice, "stats")
