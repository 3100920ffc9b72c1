"""Markdown for user text and guidelines: markdown-it-py renders, nh3 sanitises. Templates
use it as the ``|markdown`` filter (registered in templating.py).

Raw HTML in the source is not rendered (it shows as text), and the sanitiser removes
anything that slipped through anyway: scripts, event handlers, javascript: links.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table")

ALLOWED_TAGS = {
    "a", "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}


def render_markdown(source: str | None) -> Markup:
    """Safe HTML for a Markdown text; the only place user text becomes markup."""
    html = _markdown.render(source or "")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
    return Markup(cleaned)  # noqa: S704 - sanitised by nh3 just above
