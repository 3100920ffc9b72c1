"""Text that people type: one normalisation and validation for every domain."""

from __future__ import annotations

import unicodedata

from hedgerow.errors import AppError

# Newline and tab are how people format text; every other control character is either
# invisible garbage or an attempt to confuse a reader (or a downstream tokenizer).
ALLOWED_CONTROL_CHARACTERS = frozenset("\n\t")


def normalize_text(raw: str, max_length: int, *, field: str = "text") -> str:
    """NFC-normalise and validate a text; raise an AppError naming what is wrong."""
    # Windows line endings are not an error, just a different spelling of a newline.
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n")
    if not text.strip():
        raise AppError("empty_text", f"The {field} is empty.", 422)
    if len(text) > max_length:
        raise AppError(
            "text_too_long",
            f"The {field} has {len(text)} characters; the limit is {max_length}.",
            422,
            details={"length": len(text), "max_length": max_length},
        )
    for position, character in enumerate(text):
        if character in ALLOWED_CONTROL_CHARACTERS:
            continue
        if unicodedata.category(character) == "Cc":
            raise AppError(
                "invalid_text",
                f"The {field} contains a control character (U+{ord(character):04X}) at "
                f"position {position}; only newlines and tabs are allowed.",
                422,
            )
    return text
