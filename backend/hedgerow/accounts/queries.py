"""SQL for accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hedgerow.accounts.auth_cache import NEUTRAL_OPTION
from hedgerow.models import AccountToken, ApiKey, MailMessage, User, UserIdentity, UserSession


def user_by_username(db: Session, username: str) -> User | None:
    # Matches the unique index on lower(username), so this is an index lookup.
    return db.scalar(select(User).where(func.lower(User.username) == username.lower()))


def username_exists(db: Session, username: str) -> bool:
    return (
        db.scalar(select(User.id).where(func.lower(User.username) == username.lower())) is not None
    )


def api_keys_of(db: Session, user_id: int) -> list[ApiKey]:
    return list(
        db.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == user_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def api_key_of(db: Session, user_id: int, key_id: int) -> ApiKey | None:
    return db.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))


def session_by_token_hash(db: Session, token_hash: str) -> UserSession | None:
    return db.scalar(select(UserSession).where(UserSession.token_hash == token_hash))


def live_session_with_user(
    db: Session, token_hash: str, now: datetime
) -> tuple[UserSession, User] | None:
    row = db.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash, UserSession.expires_at > now)
    ).first()
    return (row[0], row[1]) if row is not None else None


def api_key_with_owner(db: Session, prefix: str) -> tuple[ApiKey, User] | None:
    # The key and its owner in one round trip: this runs on every API request.
    row = db.execute(
        select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == prefix)
    ).first()
    return (row[0], row[1]) if row is not None else None


def touch_api_key(db: Session, key_id: int, now: datetime) -> None:
    db.execute(
        update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now),
        # Only the last-use time: nothing the auth cache holds (auth_cache.py).
        execution_options={NEUTRAL_OPTION: True},
    )


def delete_expired_sessions(db: Session, user_id: int) -> None:
    db.execute(
        delete(UserSession).where(
            UserSession.user_id == user_id, UserSession.expires_at <= func.now()
        )
    )


def delete_sessions_of(db: Session, user_id: int) -> None:
    db.execute(delete(UserSession).where(UserSession.user_id == user_id))


def delete_other_sessions(db: Session, user_id: int, keep_token_hash: str | None) -> int:
    """Delete the user's sessions but the one with `keep_token_hash`; returns how many."""
    statement = delete(UserSession).where(UserSession.user_id == user_id)
    if keep_token_hash is not None:
        statement = statement.where(UserSession.token_hash != keep_token_hash)
    return len(db.execute(statement.returning(UserSession.id)).all())


def live_sessions_of(db: Session, user_id: int, now: datetime) -> list[UserSession]:
    """The user's sessions that still log them in, newest first (ix_user_session_user_id)."""
    return list(
        db.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.expires_at > now)
            .order_by(UserSession.created_at.desc(), UserSession.id.desc())
        )
    )


def delete_api_keys_of(db: Session, user_id: int) -> None:
    db.execute(delete(ApiKey).where(ApiKey.user_id == user_id))


def delete_sign_in_rows_of(db: Session, user_id: int) -> None:
    """The account's provider identities, emailed tokens and mail log."""
    for model in (UserIdentity, AccountToken, MailMessage):
        db.execute(delete(model).where(model.user_id == user_id))
