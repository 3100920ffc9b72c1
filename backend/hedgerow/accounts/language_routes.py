"""The language switcher in every page's header: a plain form, so it works for visitors who
are not signed in and without JavaScript. (Here, not in i18n/: a signed-in user's switch is
their setting, and i18n is infrastructure every domain imports.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import OptionalUser, safe_next
from hedgerow.config import get_settings
from hedgerow.db import SessionDep
from hedgerow.i18n.locales import INTERFACE_LANGUAGES
from hedgerow.i18n.negotiation import LANGUAGE_COOKIE
from hedgerow.i18n.service import validate_interface_language
from hedgerow.i18n.translation import use_language

router = APIRouter(tags=["pages"], include_in_schema=False)

LANGUAGE_COOKIE_DAYS = 365


@router.post("/language")
def switch_language(
    request: Request,
    db: SessionDep,
    user: OptionalUser,
    lang: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    # `lang`, not `language`: pages with a form of their own (sign-up, settings) have a
    # `language` field, and the switcher is on every page.
    code = validate_interface_language(lang)
    if user is not None:
        # A signed-in user's setting beats the cookie, so switching changes the setting.
        user.interface_language = code
        db.flush()
    use_language(code)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        code,
        max_age=LANGUAGE_COOKIE_DAYS * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=get_settings().cookies_secure,
        path="/",
    )
    return response


def switcher_choices() -> list[tuple[str, str]]:
    return list(INTERFACE_LANGUAGES.items())
