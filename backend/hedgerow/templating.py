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
from hedgerow.i18n import formatting, translation
from hedgerow.i18n.locales import INTERFACE_LANGUAGES
from hedgerow.i18n.script_messages import script_messages
from hedgerow.markdown import render_markdown

TEMPLATE_DIR = REPO_ROOT / "frontend" / "templates"
STATIC_DIR = REPO_ROOT / "frontend" / "static"
VENDOR_DIR = REPO_ROOT / "frontend" / "node_modules"

templates = Jinja2Blocks(directory=str(TEMPLATE_DIR))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.globals["settings"] = get_settings
templates.env.filters["markdown"] = render_markdown
# `{{ _("...") }}`, `{% trans %}` and `ngettext` in the current request's language; new
# style: Jinja fills `%(name)s` itself, after translating, and escapes the variables.
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    translation.translate, translation.translate_plural, newstyle=True
)
templates.env.globals["current_locale"] = translation.current_locale
templates.env.globals["text_direction"] = translation.text_direction
templates.env.globals["interface_languages"] = INTERFACE_LANGUAGES
templates.env.globals["script_messages"] = script_messages
templates.env.filters["number"] = formatting.format_number
templates.env.filters["datetime"] = formatting.format_datetime
templates.env.filters["relative_time"] = formatting.format_relative


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
