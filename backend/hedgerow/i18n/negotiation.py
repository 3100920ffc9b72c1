"""Which interface language a request gets: the user's setting, else the language cookie
(set by the switcher, so it works for visitors and without JavaScript), else the browser's
Accept-Language, else the server default, else English."""

from __future__ import annotations

from hedgerow.i18n.locales import INTERFACE_LANGUAGES, SOURCE_LANGUAGE, is_interface_language

LANGUAGE_COOKIE = "hedgerow_lang"
# A header longer than this is not from a browser; its tail is ignored, not parsed.
_MAX_HEADER = 512
_MAX_RANGES = 32


def accepted_languages(header: str | None) -> list[str]:
    """The language ranges of an Accept-Language header, most preferred first; malformed
    parts are skipped (a bad header only means falling back, never an error)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "")[:_MAX_HEADER].split(",")[:_MAX_RANGES]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*" or not all(c.isalnum() or c == "-" for c in tag):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
        if 0 < quality <= 1:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def match(tag: str | None) -> str | None:
    """The shipped interface language for a language tag ('es-MX' -> 'es', 'zh-Hans-CN' ->
    'zh'), or None."""
    if not tag:
        return None
    primary = tag.replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in INTERFACE_LANGUAGES else None


def negotiate(
    *,
    user_setting: str | None = None,
    cookie: str | None = None,
    accept_language: str | None = None,
    default: str | None = None,
) -> str:
    for candidate in (user_setting, cookie):
        if is_interface_language(candidate):
            assert candidate is not None
            return candidate
    for tag in accepted_languages(accept_language):
        found = match(tag)
        if found:
            return found
    return match(default) or SOURCE_LANGUAGE


def user_setting(interface_language: str | None, contribution_language: str | None) -> str | None:
    """A user's interface language: their setting, else the language they contribute in when
    the interface ships it, else None (the cookie and the browser decide)."""
    for candidate in (interface_language, contribution_language):
        if is_interface_language(candidate):
            return candidate
    return None
