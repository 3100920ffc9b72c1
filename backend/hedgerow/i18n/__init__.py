"""The interface in the volunteer's language.

Which language a request is answered in is negotiated once per request
(`negotiation.py`: the user's setting, else the language cookie, else Accept-Language, else
the server default) and held for the request by `translation.py`, whose `gettext` every
template and every user-facing string in Python goes through. Catalogs live in
frontend/locale/<lang>/LC_MESSAGES/messages.po; `make i18n` extracts and updates them and the
install step compiles them.
"""

from hedgerow.i18n.translation import (
    current_locale,
    gettext,
    lazy_gettext,
    ngettext,
    text_direction,
)

__all__ = ["current_locale", "gettext", "lazy_gettext", "ngettext", "text_direction"]
