"""Text that people type: one normalisation and validation for every domain."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from annotated_types import MaxLen
from pydantic import AfterValidator, Field
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
    # Windows line endings are not an error, just a different spelling of a newline; so is
    # a lone carriage return (old Mac files).
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n").replace("\r", "\n")
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


# Control characters (Unicode category Cc) other than tab, newline and carriage return: the
# same rule as normalize_text's, as a pattern the OpenAPI document carries for every Text.
_CONTROL_RANGES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
CONTROL_CHARACTERS = re.compile(f"[{_CONTROL_RANGES}]")
NO_CONTROL_CHARACTERS = f"^[^{_CONTROL_RANGES}]*$"
# The same, with at least one character that is not whitespace (a text that says something).
NOT_BLANK = f"^[^{_CONTROL_RANGES}]*[^\\s{_CONTROL_RANGES}][^{_CONTROL_RANGES}]*$"


def _check_storable(value: str) -> str:
    """NFC-normalise a string and refuse what PostgreSQL or UTF-8 cannot hold."""
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


def _check_text(value: str) -> str:
    """The storable rules, and no control characters but tab, newline and carriage return."""
    value = _check_storable(value)
    if (control := CONTROL_CHARACTERS.search(value)) is not None:
        raise PydanticCustomError(
            "text_contains_control_character",
            "The text contains a control character (U+{code}) at position {position}; only "
            "newlines and tabs are allowed.",
            {"code": f"{ord(control.group()):04X}", "position": control.start()},
        )
    return value


# Text a person typed or a client sent: NFC, no NUL or other control characters (but tab,
# newline and carriage return), no lone surrogates, bounded length.
Text = Annotated[
    str,
    MaxLen(MAX_TEXT_LENGTH),
    AfterValidator(_check_text),
    Field(json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}),
]


def _check_json_strings(value: Any) -> Any:
    """Every string in a JSON value (keys too) can be stored."""
    if isinstance(value, str):
        return _check_storable(value)
    if isinstance(value, list):
        return [_check_json_strings(item) for item in value]
    if isinstance(value, dict):
        return {_check_storable(key): _check_json_strings(item) for key, item in value.items()}
    return value


# A free-form JSON object a client stores with us (a draft): its strings can be stored
# (no NUL, no lone surrogates); a draft keeps whatever else was typed, as it was typed.
JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json_strings)]
