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
    """``NotFound("message")`` says "That message does not exist."; a whole sentence
    (``NotFound("This release has no such file.")``) is used as it is."""

    def __init__(self, what: str = "page") -> None:
        is_sentence = what.endswith((".", "!", "?"))
        message = what if is_sentence else f"That {what} does not exist."
        super().__init__("not_found", message, 404)


class Forbidden(AppError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__("forbidden", message or _("You are not allowed to do that."), 403)


class NotAuthenticated(AppError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__("not_authenticated", message or _("Log in or send a valid API key."), 401)
