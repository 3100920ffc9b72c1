"""Single-use tokens sent by email: verifying an address, resetting a password, signing in
by link. The link carries a random token; the database keeps its sha256, so whoever reads
a backup cannot use it."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hedgerow.accounts.security import sha256_hex, utcnow
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.models import AccountToken, TokenPurpose, User

# Longer than any sane token: a megabyte query string is not hashed.
TOKEN_MAX_LENGTH = 128


def issue_token(
    db: Session, user: User, purpose: TokenPurpose, *, email: str, lifetime: timedelta
) -> str:
    """Store a new token and return it raw, for the link (never stored)."""
    raw = secrets.token_urlsafe(32)
    db.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose.value,
            token_hash=sha256_hex(raw),
            email=email,
            expires_at=utcnow() + lifetime,
        )
    )
    db.flush()
    return raw


def check_token(
    db: Session, raw: str, purpose: TokenPurpose, *, lock: bool = False
) -> tuple[AccountToken, User]:
    """The live token and its account; a clear error for an unknown (mistyped, tampered),
    used or expired one. `lock` holds the row until the transaction ends, so two requests
    racing with one token cannot both use it."""
    found = None
    if raw and len(raw) <= TOKEN_MAX_LENGTH:
        statement = (
            select(AccountToken, User)
            .join(User, User.id == AccountToken.user_id)
            .where(AccountToken.token_hash == sha256_hex(raw))
        )
        if lock:
            statement = statement.with_for_update(of=AccountToken)
        found = db.execute(statement).first()
    if found is None or found[0].purpose != purpose.value:
        raise AppError(
            "token_invalid",
            _(
                "This link is not valid: it may be incomplete. Copy the whole link from the "
                "mail, or ask for a new one."
            ),
            400,
        )
    token, user = found[0], found[1]
    if token.used_at is not None:
        raise AppError(
            "token_used", _("This link was already used; each works once. Ask for a new one."), 400
        )
    if token.expires_at <= utcnow():
        raise AppError("token_expired", _("This link has expired. Ask for a new one."), 400)
    if user.deleted_at is not None or not user.enabled:
        raise AppError("token_invalid", _("The account of this link cannot be used any more."), 400)
    return token, user


def use_token(db: Session, raw: str, purpose: TokenPurpose) -> tuple[AccountToken, User]:
    """Check the token and mark it used, in the caller's transaction."""
    token, user = check_token(db, raw, purpose, lock=True)
    token.used_at = utcnow()
    db.flush()
    return token, user


def delete_unused_tokens(db: Session, user_id: int, purpose: TokenPurpose) -> None:
    """Earlier links of one kind stop working once one was used (a reset ends them all)."""
    db.execute(
        delete(AccountToken).where(
            AccountToken.user_id == user_id,
            AccountToken.purpose == purpose.value,
            AccountToken.used_at.is_(None),
        )
    )


def delete_tokens_of(db: Session, user_id: int) -> None:
    db.execute(delete(AccountToken).where(AccountToken.user_id == user_id))
