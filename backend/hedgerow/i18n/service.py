"""Rules about interface languages that forms and the API share."""

from __future__ import annotations

from hedgerow.errors import AppError
from hedgerow.i18n.locales import INTERFACE_LANGUAGES
from hedgerow.i18n.translation import gettext as _


def validate_interface_language(code: str) -> str:
    if code not in INTERFACE_LANGUAGES:
        raise AppError(
            "invalid_interface_language",
            _(
                "Choose one of the interface languages: %(languages)s.",
                languages=", ".join(INTERFACE_LANGUAGES),
            ),
            422,
            details={"field": "interface_language"},
        )
    return code
