"""SQL for accounts."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.models import ApiKey, User


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


def search_users(
    db: Session, *, username_contains: str | None, limit: int, offset: int
) -> list[User]:
    query = select(User).order_by(User.username)
    if username_contains:
        escaped = username_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(User.username.ilike(f"%{escaped}%", escape="\\"))
    return list(db.scalars(query.limit(limit).offset(offset)))
