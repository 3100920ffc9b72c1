"""Jinja2 templates with named blocks rendered whole or as htmx fragments.

Every filter and global the templates use is registered here, so a page renders the same
whichever modules happen to be imported.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2_fragments.fastapi import Jinja2Blocks

from hedgerow.config import REPO_ROOT, get_settings
from hedgerow.markdown import render_markdown

TEMPLATE_DIR = REPO_ROOT / "frontend" / "templates"
STATIC_DIR = REPO_ROOT / "frontend" / "static"
VENDOR_DIR = REPO_ROOT / "frontend" / "node_modules"

templates = Jinja2Blocks(directory=str(TEMPLATE_DIR))
templates.env.globals["settings"] = get_settings
templates.env.filters["markdown"] = render_markdown


def _sign_in_providers() -> list[Any]:
    # Imported when a page asks: accounts imports this module.
    from hedgerow.accounts.oauth import sign_in_providers

    return list(sign_in_providers())


templates.env.globals["sign_in_providers"] = _sign_in_providers


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> Response:
    """Render a page; for an htmx request naming `block`, only that block."""
    context = dict(context or {})
    if block and is_htmx(request):
        return templates.TemplateResponse(
            request, template, context, block_name=block, status_code=status_code
        )
    return templates.TemplateResponse(request, template, context, status_code=status_code)
