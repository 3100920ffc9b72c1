"""Volunteer text: normalisation, validation and duplicate detection."""

from __future__ import annotations

import hashlib
import unicodedata

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.models import Message

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


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def refuse_duplicate(db: Session, sha256: str) -> None:
    """The same text stored twice adds nothing to the dataset (and is usually spam)."""
    if db.scalar(select(exists().where(Message.text_sha256 == sha256))):
        raise AppError(
            "duplicate_text",
            "This exact text has already been submitted; please write your own.",
            409,
        )
