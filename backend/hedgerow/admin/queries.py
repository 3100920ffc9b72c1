"""SQL for the admin pages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.models import User


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_users(
    db: Session, *, username_contains: str | None, limit: int, offset: int
) -> list[User]:
    query = select(User).order_by(User.username, User.id)
    if username_contains:
        pattern = f"%{_escape_like(username_contains)}%"
        query = query.where(User.username.ilike(pattern, escape="\\"))
    return list(db.scalars(query.limit(limit).offset(offset)))
