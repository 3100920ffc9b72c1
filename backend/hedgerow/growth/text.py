"""Volunteer messages: their hash and duplicate detection (normalisation is hedgerow.text)."""

from __future__ import annotations

import hashlib

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.models import Message


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def refuse_duplicate(db: Session, sha256: str) -> None:
    """The same text stored twice adds nothing to the dataset (and is usually spam)."""
    if db.scalar(select(exists().where(Message.text_sha256 == sha256))):
        raise AppError(
            "duplicate_text",
            _("This exact text has already been submitted; please write your own."),
            409,
        )
