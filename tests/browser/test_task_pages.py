"""Task pages in a real browser: drafts survive a reload, late work is kept, ranking by
keyboard only, user text is never run as script."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.growth.flags import refresh_open_flags
from hedgerow.models import Message, Ranking, Report, Tree, TreeState, User
from tests.browser import crowd
from tests.browser.conftest import screenshot
from tests.browser.test_scenario import SAVED, open_task
from tests.growth.factories import add_reply, make_tree

pytestmark = pytest.mark.browser


def test_a_draft_survives_a_page_reload(live_db: sessionmaker[Session], new_page: Any) -> None:
    _user_id, token = crowd.volunteer(live_db, "erin")
    page = new_page(token)
    open_task(page, "write_prompt")
    page.fill("#f-text", "A thought I do not want to lose about hedgehog houses")
    page.select_option("#f-category", "brainstorming")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")

    page.reload()

    expect(page.locator("#f-text")).to_have_value(
        "A thought I do not want to lose about hedgehog houses"
    )
    expect(page.locator("#f-category")).to_have_value("brainstorming")


def test_errors_and_a_late_submission_keep_the_text(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    user_id, token = crowd.volunteer(live_db, "frank")
    with live_db.begin() as db:
        author = db.get(User, user_id)
        assert author is not None
        _tree, root = make_tree(db, author, state=TreeState.prompt_review)
        taken_text = root.text
    page = new_page(token)
    open_task(page, "write_prompt")

    # A duplicate is refused; the text stays on screen with the error next to it.
    page.fill("#f-text", taken_text)
    page.get_by_test_id("submit").click()
    expect(page.locator("#task-error")).to_have_attribute("data-code", "duplicate_text")
    expect(page.locator("#f-text")).to_have_value(taken_text)

    # The lease runs out while the volunteer is still writing; the work is still accepted.
    late_text = "Written slowly: what do hedgehogs dream about in winter?"
    page.fill("#f-text", late_text)
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    with live_db.begin() as db:
        db.execute(
            text(
                "UPDATE task SET lease_expires_at = now() - interval '1 minute' "
                "WHERE user_id = :user_id AND state = 'leased'"
            ),
            {"user_id": user_id},
        )
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("notice")).to_contain_text(SAVED)
    with live_db() as db:
        assert db.scalar(select(Message.id).where(Message.text == late_text)) is not None


def _ranking_tree(live_db: sessionmaker[Session], reply_texts: list[str]) -> list[int]:
    with live_db.begin() as db:
        author = db.scalars(select(User)).first()
        assert author is not None
        tree, root = make_tree(db, author, state=TreeState.growing, rankings_per_sibling_set=1)
        replies = [add_reply(db, tree, root, author) for _ in reply_texts]
        for reply, reply_text in zip(replies, reply_texts, strict=True):
            reply.text = reply_text
        tree.state = TreeState.ranking
        tree.open_ranking_sets = 1
        refresh_open_flags(root, tree)
        db.flush()
        return [reply.id for reply in replies]


def test_ranking_with_the_keyboard_only(live_db: sessionmaker[Session], new_page: Any) -> None:
    crowd.volunteer(live_db, "author")
    _user_id, token = crowd.volunteer(live_db, "grace")
    _ranking_tree(live_db, ["First reply.", "Second reply.", "Third reply."])
    page = new_page(token)
    page.goto("/dashboard")
    page.focus("button[data-kind='rank_assistant_replies']")
    page.keyboard.press("Enter")
    expect(page.locator("#task-panel")).to_have_attribute(
        "data-task-kind", "rank_assistant_replies"
    )
    shown = [
        int(item.get_attribute("data-message-id")) for item in page.locator(".rank-item").all()
    ]

    # Tab to the first reply, then move it to the bottom with the arrow keys.
    for _ in range(40):
        if page.evaluate("document.activeElement.classList.contains('rank-item')"):
            break
        page.keyboard.press("Tab")
    focused = int(page.evaluate("document.activeElement.dataset.messageId"))
    assert focused == shown[0]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator(".rank-item").nth(2)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("notice")).to_contain_text(SAVED)

    with live_db() as db:
        ranking = db.scalars(select(Ranking)).one()
    assert ranking.ordered_message_ids == [shown[1], shown[0], shown[2]]


def test_a_reply_containing_script_renders_as_text(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    crowd.volunteer(live_db, "author")
    _user_id, token = crowd.volunteer(live_db, "heidi")
    hostile = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
    ids = _ranking_tree(live_db, [hostile, "A harmless reply."])
    page = new_page(token)

    open_task(page, "rank_assistant_replies")
    expect(page.locator(f".rank-item[data-message-id='{ids[0]}']")).to_contain_text(
        "<script>window.__pwned = 1</script>"
    )
    assert page.evaluate("window.__pwned") is None

    with live_db() as db:
        tree_id = db.scalar(select(Tree.id))
    page.goto(f"/trees/{tree_id}")
    expect(page.locator(f"#m{ids[0]} .message-text")).to_contain_text("<img src=x onerror=")
    assert page.evaluate("window.__pwned") is None
    assert page.locator(f"#m{ids[0]} script, #m{ids[0]} img").count() == 0


def test_tasks_work_without_javascript(live_db: sessionmaker[Session], new_page: Any) -> None:
    crowd.volunteer(live_db, "author")
    _user_id, token = crowd.volunteer(live_db, "ivan")
    ids = _ranking_tree(live_db, ["Reply one.", "Reply two."])
    page = new_page(token, javascript=False)

    open_task(page, "rank_assistant_replies")
    # Without JavaScript the order is chosen from each reply's position list.
    page.select_option(f"#pos-{ids[0]}", "2")
    page.select_option(f"#pos-{ids[1]}", "1")
    page.select_option("#grade-1", "much_better")
    page.get_by_test_id("submit").click()
    page.wait_for_url("**/dashboard?empty=rank_assistant_replies")

    with live_db() as db:
        ranking = db.scalars(select(Ranking)).one()
    assert ranking.ordered_message_ids == [ids[1], ids[0]]
    assert ranking.grades == ["much_better"]


def test_asking_for_another_kind_while_holding_a_task_offers_to_finish_or_skip_it(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    crowd.volunteer(live_db, "author")
    _user_id, token = crowd.volunteer(live_db, "judith")
    _ranking_tree(live_db, ["Reply one.", "Reply two."])
    page = new_page(token, javascript=False)
    page.goto("/dashboard")
    page.click("button[data-kind='rank_assistant_replies']")
    expect(page.locator("#task-panel")).to_have_attribute(
        "data-task-kind", "rank_assistant_replies"
    )

    page.goto("/dashboard")
    page.click("button[data-kind='write_prompt']")
    notice = page.get_by_test_id("task-in-progress")
    expect(notice).to_contain_text("You have a task in progress: “Rank assistant replies”")
    expect(notice).to_contain_text("Write a prompt")
    screenshot(page, "task-in-progress")

    page.get_by_test_id("skip-to-asked").click()
    expect(page.locator("#task-panel")).to_have_attribute("data-task-kind", "write_prompt")
    expect(page.get_by_test_id("task-in-progress")).to_have_count(0)


# The lines of a label's own text (its text nodes, not its checkbox) and its checkbox.
LABEL_LINES_JS = """
(label) => {
  const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
  const tops = new Map();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const rect of range.getClientRects()) {
      if (rect.width > 0) tops.set(Math.round(rect.top), [rect.top, rect.bottom, rect.left]);
    }
  }
  const box = label.querySelector("input").getBoundingClientRect();
  return {
    lines: [...tops.values()].sort((a, b) => a[0] - b[0]),
    box: [box.top, box.bottom, box.right],
  };
}
"""


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_none_acceptable_choice_reads_as_one_label_on_a_phone(
    live_db: sessionmaker[Session], new_page: Any, javascript: bool
) -> None:
    """At 375 px the checkbox sits on the first line of its label, and the label takes at
    most two lines beside it."""
    crowd.volunteer(live_db, "author")
    _user_id, token = crowd.volunteer(live_db, f"pia{int(javascript)}")
    _ranking_tree(live_db, ["Reply one.", "Reply two."])
    page = new_page(token, javascript=javascript)
    page.set_viewport_size({"width": 375, "height": 800})
    open_task(page, "rank_assistant_replies")

    label = page.locator("label", has_text="None of these replies is acceptable")
    measured = label.evaluate(LABEL_LINES_JS)
    lines, (box_top, box_bottom, box_right) = measured["lines"], measured["box"]
    assert 1 <= len(lines) <= 2, f"the label wraps to {len(lines)} lines: {measured}"
    first_top, first_bottom, first_left = lines[0]
    middle = (box_top + box_bottom) / 2
    assert first_top <= middle <= first_bottom, f"checkbox off the first line: {measured}"
    assert box_right <= first_left, f"checkbox not beside the text: {measured}"
    label.click()
    expect(label.locator("input")).to_be_checked()


def test_report_opens_next_to_a_message_in_a_task_and_keeps_the_typed_text(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    author_id, _ = crowd.volunteer(live_db, "author")
    _user_id, token = crowd.volunteer(live_db, "rosa")
    with live_db.begin() as db:
        author = db.get_one(User, author_id)
        _tree, root = make_tree(db, author)
        root_id = root.id
    page = new_page(token)
    open_task(page, "reply_assistant")
    page.locator("#f-text").fill("My half-written reply")

    page.locator(f".chat-message[data-message-id='{root_id}']").get_by_role(
        "link", name="Report"
    ).click()
    slot = page.locator(f"#report-slot-{root_id}")
    slot.get_by_label("Reason").select_option("spam")
    slot.get_by_label("What is wrong?").fill("An advert.")
    # Ctrl+Enter in the report's text is not the task's submit.
    slot.get_by_label("What is wrong?").press("Control+Enter")
    slot.get_by_role("button", name="Send report").click()
    expect(slot.get_by_role("status")).to_contain_text("reported to the moderators")
    expect(page.locator("#f-text")).to_have_value("My half-written reply")
    with live_db() as db:
        report = db.scalars(select(Report)).one()
    assert (report.message_id, report.reason, report.text) == (root_id, "spam", "An advert.")
