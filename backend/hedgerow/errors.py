"""Domain errors are values: a machine code, a human message and an HTTP status.

Plain exceptions with no web framework in sight, so the growth engine, jobs and the CLI
raise them freely; error_handlers.py turns them into responses.
"""

from __future__ import annotations

from typing import Any

from hedgerow.i18n.translation import gettext as _


class AppError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}
        self.headers = headers or {}


class NotFound(AppError):
    """``NotFound(_("That message does not exist."))``: the caller passes the whole
    translated sentence (composing "That %s does not exist." would leave the noun in
    English); without one it says that the page does not exist."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__("not_found", message or _("That page does not exist."), 404)


class Forbidden(AppError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__("forbidden", message or _("You are not allowed to do that."), 403)


class NotAuthenticated(AppError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__("not_authenticated", message or _("Log in or send a valid API key."), 401)
