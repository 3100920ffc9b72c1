"""Text that people type: one normalisation and validation for every domain."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from annotated_types import MaxLen
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _

# Newline and tab are how people format text; every other control character is either
# invisible garbage or an attempt to confuse a reader (or a downstream tokenizer).
ALLOWED_CONTROL_CHARACTERS = frozenset("\n\t")

# "Empty" in whole sentences per field, so translations need not glue a noun in.
_EMPTY = {
    "text": lambda: _("The text is empty."),
    "context": lambda: _("The context is empty."),
    "note": lambda: _("The note is empty."),
    "description": lambda: _("The description is empty."),
}


def normalize_text(raw: str, max_length: int, *, field: str = "text") -> str:
    """NFC-normalise and validate a text; raise an AppError naming what is wrong."""
    # Windows line endings are not an error, just a different spelling of a newline.
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n")
    if not text.strip():
        raise AppError("empty_text", _EMPTY.get(field, _EMPTY["text"])(), 422)
    if len(text) > max_length:
        raise AppError(
            "text_too_long",
            _("The text has %(length)s characters; the limit is %(limit)s.")
            % {"length": len(text), "limit": max_length},
            422,
            details={"length": len(text), "max_length": max_length},
        )
    for position, character in enumerate(text):
        if character in ALLOWED_CONTROL_CHARACTERS:
            continue
        if unicodedata.category(character) == "Cc":
            raise AppError(
                "invalid_text",
                _(
                    "The text contains a control character (%(character)s) at position "
                    "%(position)s; only newlines and tabs are allowed."
                )
                % {"character": f"U+{ord(character):04X}", "position": position},
                422,
            )
    return text


# The most any single text field may hold; fields with a tighter rule say so with
# Field(max_length=...) / Form(max_length=...).
MAX_TEXT_LENGTH = 100_000


def _check_text(value: str) -> str:
    """NFC-normalise a text and refuse what PostgreSQL or UTF-8 cannot hold."""
    if "\x00" in value:
        raise PydanticCustomError(
            "text_contains_nul", "The text contains a NUL character (U+0000)."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise PydanticCustomError(
            "text_not_unicode",
            "The text contains a lone surrogate at position {position}; it is not Unicode text.",
            {"position": error.start},
        ) from None
    return unicodedata.normalize("NFC", value)


# Text a person typed or a client sent: NFC, no NUL, no lone surrogates, bounded length.
Text = Annotated[str, MaxLen(MAX_TEXT_LENGTH), AfterValidator(_check_text)]


def _check_json_strings(value: Any) -> Any:
    """Every string in a JSON value (keys too) follows the Text rules."""
    if isinstance(value, str):
        return _check_text(value)
    if isinstance(value, list):
        return [_check_json_strings(item) for item in value]
    if isinstance(value, dict):
        return {_check_text(key): _check_json_strings(item) for key, item in value.items()}
    return value


# A free-form JSON object a client stores with us (a draft): its strings follow Text.
JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json_strings)]
