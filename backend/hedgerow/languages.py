"""The languages volunteers write in: which ones a server offers is configuration
(``settings.languages``); what each is called, for people, is here.

Every page that names a language (the language pickers, the task and dashboard pages, the
language-check warning) asks this module.
"""

from __future__ import annotations

from typing import Annotated

from hedgerow.config import get_settings
from hedgerow.inputs import one_of

# Each in its own language; a code without a name here is shown as the code.
LANGUAGE_NAMES = {
    "en": "English",
    "de": "Deutsch",
    "es": "Español",
    "fr": "Français",
    "it": "Italiano",
    "pt": "Português",
    "ru": "Русский",
    "zh": "中文",
    "ja": "日本語",
    "uk": "Українська",
}


# A language code a client sends; the services check it (invalid_language), the schema
# lists the choices.
LanguageCode = Annotated[str, one_of(lambda: get_settings().languages)]


def language_name(code: str | None) -> str | None:
    """The name to show for a language code: its name, else the code itself."""
    return LANGUAGE_NAMES.get(code or "", code)


def language_choices() -> list[tuple[str, str]]:
    """(code, name) for every language this server offers, in the configured order."""
    return [(code, LANGUAGE_NAMES.get(code, code)) for code in get_settings().languages]
