"""How pages look in a real browser, at desktop (1280 px) and phone (375 px) widths:
Markdown spacing, the navigation, the text counter, charts and review scales."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.models import TreeState, User
from tests.browser import crowd
from tests.browser.conftest import screenshot
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
