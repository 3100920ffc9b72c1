"""gettext for the current request's language.

The language lives in a context variable holding one mutable `RequestLanguage` per request:
the middleware sets it from the cookie and Accept-Language before anything runs, and the
authentication dependency updates the same object with the user's setting. (Sync
dependencies run in copies of the request's context, so setting the variable there would not
reach the endpoint; updating the shared object does.)
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

from babel.support import LazyProxy, Translations

from hedgerow.i18n.locales import DOMAIN, LOCALE_DIR, SOURCE_LANGUAGE, direction


@dataclass
class RequestLanguage:
    code: str = SOURCE_LANGUAGE


_current: ContextVar[RequestLanguage | None] = ContextVar("hedgerow_language", default=None)


def begin_request(code: str) -> RequestLanguage:
    """Hold `code` as the language of the request (or job) running in this context."""
    language = RequestLanguage(code)
    _current.set(language)
    return language


@contextmanager
def in_language(code: str) -> Iterator[None]:
    """Speak `code` inside the block, then the language from before again: a mail is
    written in its recipient's language whoever's request (or which job) writes it."""
    token = _current.set(RequestLanguage(code))
    try:
        yield
    finally:
        _current.reset(token)


def use_language(code: str) -> None:
    """Switch the current request to `code` (the user's setting, once known)."""
    language = _current.get()
    if language is None:
        begin_request(code)
    else:
        language.code = code


def current_locale() -> str:
    language = _current.get()
    return language.code if language is not None else SOURCE_LANGUAGE


def text_direction() -> str:
    return direction(current_locale())


@cache
def translations(code: str) -> gettext_module.NullTranslations:
    """The compiled catalog of `code` (English, the source language, needs none)."""
    if code == SOURCE_LANGUAGE:
        return gettext_module.NullTranslations()
    loaded = Translations.load(str(LOCALE_DIR), [code], DOMAIN)
    if not isinstance(loaded, Translations):
        # No compiled catalog: the install step compiles them (`make install`), and
        # tests/i18n/test_catalogs.py fails when one is missing, so this is a broken install.
        raise RuntimeError(
            f"no compiled catalog for {code!r} under {LOCALE_DIR}; run `make i18n-compile`"
        )
    return loaded


def translate(message: str) -> str:
    """The message in the current language, unformatted (Jinja formats it itself)."""
    return translations(current_locale()).gettext(message)


def translate_plural(singular: str, plural: str, n: int) -> str:
    return translations(current_locale()).ngettext(singular, plural, n)


def gettext(message: str, **variables: Any) -> str:
    """`message` in the current language; `%(name)s` placeholders filled from `variables`
    (the translation may move them, so never format before translating)."""
    translated = translate(message)
    return translated % variables if variables else translated


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    """The plural form for `n` in the current language; `%(num)d` is n."""
    return translate_plural(singular, plural, n) % {"num": n, **variables}


def N_(message: str) -> str:
    """Marks a string for the catalog without translating it (it is translated where it is
    shown, with `gettext(message)`): for definitions that must keep their English source."""
    return message


def lazy_gettext(message: str, **variables: Any) -> LazyProxy:
    """For strings defined at import time (labels, choices): translated when used."""
    return LazyProxy(gettext, message, enable_cache=False, **variables)


def use_user_language(user: Any) -> None:
    """Switch the current request to a signed-in user's interface language, if they have
    one (else the cookie's or the browser's stays)."""
    from hedgerow.i18n.negotiation import user_setting

    code = user_setting(user.interface_language, user.language)
    if code is not None:
        use_language(code)
