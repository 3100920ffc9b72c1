"""Admin rules: finding users and changing their role (always audited, in accounts). Disabling
and deleting users is moderation/users.py; a user's own account is accounts/."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hedgerow.accounts import service as accounts_service
from hedgerow.admin import queries
from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _
from hedgerow.models import Role, User

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
SEARCH_MAX_LENGTH = 64


def search_users(
    db: Session, *, query: str | None, limit: int = PAGE_SIZE, offset: int = 0
) -> list[User]:
    query = (query or "").strip()
    if len(query) > SEARCH_MAX_LENGTH:
        raise AppError("invalid_search", _("Search for at most 64 characters of a username."), 422)
    if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
        raise AppError(
            "invalid_page", _("limit is 1 to %(max)s, offset at least 0.", max=MAX_PAGE_SIZE), 422
        )
    return queries.search_users(db, username_contains=query or None, limit=limit, offset=offset)


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise AppError(
            "invalid_role",
            _(
                "Choose one of the roles: %(choices)s.",
                choices=", ".join(role.value for role in Role),
            ),
            422,
            details={"field": "role"},
        ) from None


def change_user_role(db: Session, *, user_id: int, role: Role, actor: User) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(_("That user does not exist."))
    return accounts_service.change_role(db, user=user, role=role, actor=actor)
