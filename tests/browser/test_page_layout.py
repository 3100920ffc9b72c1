"""How pages look in a real browser, at desktop (1280 px) and phone (375 px) widths:
Markdown spacing, the navigation, the text counter, charts and review scales."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.security import create_user_session
from hedgerow.models import Role, TreeState, User
from tests.browser import crowd
from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.browser.test_scenario import open_task
from tests.factories import make_user
from tests.growth.factories import add_reply, make_tree

pytestmark = pytest.mark.browser

MARKDOWN_TEXT = (
    "A first paragraph about hedgehogs.\n\n"
    "A second paragraph.\n\n"
    "- one item\n- another item\n\n"
    "A closing line."
)

# For each element: the gaps between its children, and between its last child and its
# own bottom edge, beyond the children's own margins. A blank line adds ~25 px; nested
# margins (a list's last item) may add a few.
EXTRA_SPACE_JS = """
(element) => {
  const children = [...element.children];
  const gaps = [];
  for (let i = 1; i < children.length; i++) {
    const before = children[i - 1], after = children[i];
    const margin = Math.max(
      parseFloat(getComputedStyle(before).marginBottom),
      parseFloat(getComputedStyle(after).marginTop));
    gaps.push(after.getBoundingClientRect().top - before.getBoundingClientRect().bottom - margin);
  }
  const last = children[children.length - 1];
  gaps.push(element.getBoundingClientRect().bottom - last.getBoundingClientRect().bottom
            - parseFloat(getComputedStyle(last).marginBottom));
  return gaps;
}
"""


def _tree_with_markdown(live_db: sessionmaker[Session], author_id: int) -> tuple[int, int]:
    with live_db.begin() as db:
        author = db.get(User, author_id)
        assert author is not None
        tree, root = make_tree(db, author, state=TreeState.growing)
        reply = add_reply(db, tree, root, author)
        reply.text = MARKDOWN_TEXT
        return tree.id, reply.id


def test_rendered_markdown_has_no_extra_blank_lines(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    user_id, token = crowd.volunteer(live_db, "marta")
    tree_id, reply_id = _tree_with_markdown(live_db, user_id)
    page = new_page(token)
    page.goto(f"/trees/{tree_id}")
    rendered = page.locator(f"#m{reply_id} .message-text")
    expect(rendered.locator("li")).to_have_count(2)
    screenshot(page, "tree-markdown")

    gaps = rendered.evaluate(EXTRA_SPACE_JS)
    assert len(gaps) == 4
    assert all(abs(gap) < 8 for gap in gaps), f"blank lines between blocks: {gaps}"

    # Plain text (moderation views, ranking previews, logs) keeps its line breaks.
    plain_white_space = page.evaluate(
        """() => {
          const plain = document.createElement("div");
          plain.className = "message-text";
          document.querySelector("main").append(plain);
          return getComputedStyle(plain).whiteSpace;
        }"""
    )
    assert plain_white_space == "pre-wrap"


PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 900}
# The brand and a menu button on one row.
PHONE_HEADER_MAX_HEIGHT = 80
NAV_LINKS = ["Dashboard", "Chat", "My work", "Leaderboard", "Stats", "Guidelines"]


def _screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")


def _nav_link(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_navigation_folds_into_a_menu_on_a_phone(
    live_db: sessionmaker[Session], new_page: Any, javascript: bool
) -> None:
    _user_id, token = crowd.volunteer(live_db, "nina")
    page = new_page(token, javascript=javascript)
    page.set_viewport_size(PHONE)
    page.goto("/dashboard")
    header = page.locator(".site-header")
    assert header.bounding_box()["height"] <= PHONE_HEADER_MAX_HEIGHT
    expect(_nav_link(page, "Leaderboard")).to_be_hidden()
    screenshot(page, f"nav-closed-{'js' if javascript else 'nojs'}")

    page.get_by_text("Menu", exact=True).click()
    for name in NAV_LINKS:
        expect(_nav_link(page, name)).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.set_viewport_size(PHONE)  # screenshot() widens the page; this one is of the phone
    page.screenshot(path=str(_screenshot_path(f"nav-open-{'js' if javascript else 'nojs'}")))
    _nav_link(page, "Leaderboard").click()
    page.wait_for_url("**/leaderboard")


def test_the_navigation_is_one_row_of_links_on_a_desktop(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    # An admin sees the most links.
    with live_db.begin() as db:
        admin = make_user(db, username="oscar.admin", role=Role.admin)
        token = create_user_session(db, admin, "playwright")
    page = new_page(token)
    page.set_viewport_size(DESKTOP)
    page.goto("/dashboard")
    links = [*NAV_LINKS, "Admin", "Datasets", "Users", "Oscar.Admin"]
    for name in links:
        expect(_nav_link(page, name)).to_be_visible()
    expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
    tops = {round(_nav_link(page, name).bounding_box()["y"]) for name in links}
    assert len(tops) == 1, f"the links wrap onto several rows: {tops}"
    screenshot(page, "nav-admin")


def test_pasting_over_the_limit_keeps_the_text_and_shows_the_counter_in_error(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    _user_id, token = crowd.volunteer(live_db, "petra")
    page = new_page(token)
    open_task(page, "write_prompt")
    too_long = "Hedgehogs " * 1_005  # 10,050 characters, the limit is 10,000
    page.focus("#f-text")
    page.keyboard.insert_text(too_long)  # as a paste: the browser's own editing path

    assert page.eval_on_selector("#f-text", "area => area.value.length") == len(too_long)
    counter = page.locator("#text-counter")
    expect(counter).to_contain_text("10050 / 10000 characters")
    expect(counter).to_contain_text("50 over the limit")
    expect(counter).to_have_class(re.compile(r"\bfield-error\b"))
    expect(page.locator("#f-text")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "text-over-the-limit")

    # The server refuses it and gives all of it back.
    page.get_by_test_id("submit").click()
    expect(page.locator("#task-error")).to_have_attribute("data-code", "text_too_long")
    assert page.eval_on_selector("#f-text", "area => area.value") == too_long
    expect(page.locator("#text-counter")).to_contain_text("50 over the limit")


# The rendered size of each chart text: SVG text shrinks with its drawing.
CHART_TEXT_SIZES_JS = """
(figure) => [...figure.querySelectorAll("text, .chart-label, .chart-value")]
  .filter((element) => element.textContent.trim() && element.getClientRects().length)
  .map((element) => {
    const size = parseFloat(getComputedStyle(element).fontSize);
    const scale = element instanceof SVGElement ? element.getScreenCTM().a : 1;
    return [element.textContent.trim(), size * scale];
  })
"""
MIN_CHART_TEXT_PX = 11


def _overlapping(boxes: list[dict[str, float]]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], start=i + 1)
        if a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
def test_chart_labels_are_readable_and_dates_do_not_overlap(
    live_db: sessionmaker[Session], new_page: Any, viewport: dict[str, int]
) -> None:
    user_id, token = crowd.volunteer(live_db, f"quinn{viewport['width']}")
    with live_db.begin() as db:
        author = db.get(User, user_id)
        assert author is not None
        for state in (TreeState.growing, TreeState.prompt_review, TreeState.ready_for_export):
            make_tree(db, author, state=state)
    page = new_page(token)
    page.set_viewport_size(viewport)
    page.goto("/stats")
    if viewport == DESKTOP:
        screenshot(page, "stats")

    for figure in page.locator("figure.chart").all():
        if figure.get_by_text("No data yet.").count():
            continue
        sizes = figure.evaluate(CHART_TEXT_SIZES_JS)
        assert sizes, "a chart without labels"
        small = [(label, round(size, 1)) for label, size in sizes if size < MIN_CHART_TEXT_PX]
        assert not small, f"chart text under {MIN_CHART_TEXT_PX} px: {small}"

    dates = page.locator("#chart-per-day .chart-label")
    assert dates.count() >= 3  # the axis is labelled, first to last day
    boxes = [dates.nth(i).bounding_box() for i in range(dates.count())]
    assert not _overlapping(boxes), f"date labels overlap: {boxes}"
    chart = page.locator("#chart-per-day").bounding_box()
    assert all(
        chart["x"] <= b["x"] and b["x"] + b["width"] <= chart["x"] + chart["width"] + 1
        for b in boxes
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
def test_review_scales_line_up_with_each_other(
    live_db: sessionmaker[Session], new_page: Any, viewport: dict[str, int]
) -> None:
    author_id, _ = crowd.volunteer(live_db, f"rosa{viewport['width']}")
    _user_id, token = crowd.volunteer(live_db, f"sven{viewport['width']}")
    with live_db.begin() as db:
        author = db.get(User, author_id)
        assert author is not None
        make_tree(db, author, state=TreeState.prompt_review)
    page = new_page(token)
    page.set_viewport_size(viewport)
    open_task(page, "review_prompt")
    page.set_viewport_size(viewport)
    scales = page.locator(".scale").all()
    assert len(scales) >= 3

    # The k-th point of every scale sits at the same place, and so do the end labels.
    columns = [
        [round(box["x"] + box["width"] / 2) for box in (p.bounding_box() for p in points)]
        for points in (scale.locator("input[type=radio]").all() for scale in scales)
    ]
    assert all(len(points) == 5 for points in columns)
    for k in range(5):
        at = {points[k] for points in columns}
        assert max(at) - min(at) <= 1, f"point {k + 1} of the scales is at x = {sorted(at)}"
    ends = [[round(e.bounding_box()["x"]) for e in s.locator(".scale-end").all()] for s in scales]
    assert len({tuple(end) for end in ends}) == 1, f"scale ends at {ends}"
    # Nothing sticks out of the task panel.
    panel = page.locator(".task-work").bounding_box()
    for scale in scales:
        box = scale.bounding_box()
        assert box["x"] + box["width"] <= panel["x"] + panel["width"]
    page.locator(".scale").first.scroll_into_view_if_needed()
    page.screenshot(path=_screenshot_path(f"review-scales-{viewport['width']}"))


def test_sign_up_errors_all_show_and_a_404_keeps_the_users_navigation(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    page = new_page()
    page.goto("/signup")
    page.fill("#f-username", "ab")
    page.fill("#f-password", "short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".field-error")).to_have_count(2)
    expect(page.locator("#f-username-error")).to_contain_text("3 to 32 characters")
    expect(page.locator("#f-password-error")).to_contain_text("8 to 256 characters")
    expect(page.get_by_role("alert")).to_contain_text("2 problems")
    screenshot(page, "signup-errors")

    _user_id, token = crowd.volunteer(live_db, "tilda")
    page = new_page(token)
    page.goto("/no/such/page")
    expect(_nav_link(page, "Dashboard")).to_be_visible()
    expect(_nav_link(page, "Log in")).to_have_count(0)
    screenshot(page, "not-found")
