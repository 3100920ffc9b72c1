"""The interface languages Hedgerow ships (separate from the languages volunteers write in,
which are configuration: `settings.languages`)."""

from __future__ import annotations

from hedgerow.config import REPO_ROOT

LOCALE_DIR = REPO_ROOT / "frontend" / "locale"
DOMAIN = "messages"

# Each named in its own language, for the switcher. The source strings are English, so "en"
# needs no catalog.
INTERFACE_LANGUAGES = {
    "en": "English",
    "de": "Deutsch",
    "es": "Español",
    "fr": "Français",
    "zh": "简体中文",
    "ar": "العربية",
}
SOURCE_LANGUAGE = "en"
RIGHT_TO_LEFT = frozenset({"ar"})


def is_interface_language(code: str | None) -> bool:
    return code in INTERFACE_LANGUAGES


def direction(code: str) -> str:
    return "rtl" if code in RIGHT_TO_LEFT else "ltr"
