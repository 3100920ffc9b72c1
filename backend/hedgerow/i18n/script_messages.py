"""The strings our JavaScript shows, translated here so that one catalog holds every string:
base.html puts them on <html data-messages>, and app.js's `hedgerowText(key, english)` reads
them (with the English as its fallback, so a script works before a page has them).

Placeholders are `%(name)s`, filled by the script."""

from __future__ import annotations

from hedgerow.i18n.translation import gettext as _


def script_messages() -> dict[str, str]:
    return {
        "network_error": _("The server could not be reached. Your input is still here; try again."),
        "dismiss": _("Dismiss"),
        "copied": _("Copied"),
        "draft_saved": _("Draft saved %(time)s"),
        "draft_not_saved": _("The draft could not be saved."),
        "reply_position": _("Reply at position %(position)s; arrow keys move it"),
        "moved_to": _("Moved to position %(position)s of %(count)s"),
        "answer_not_started": _("The answer could not be started (%(status)s)."),
        "connection_lost": _("The connection to the server was lost."),
        "chat_unreachable": _(
            "The server could not be reached. Your message is back in the box; try again."
        ),
        "message_not_sent": _("The message could not be sent."),
    }
