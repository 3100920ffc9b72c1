"""Admin pages: the moderator/admin landing, the users list with search and role changes,
and deleting (anonymising) a user on request."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import AdminUser, ModeratorUser
from hedgerow.admin import service
from hedgerow.db import SessionDep
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.i18n import lazy_gettext
from hedgerow.inputs import Id, PageNumber, Text
from hedgerow.models import Role, User
from hedgerow.moderation import service as moderation_service
from hedgerow.templating import is_htmx, render

router = APIRouter(prefix="/admin", include_in_schema=False)

# The roles as people read them (the same words as the users page's role menu).
ROLE_LABELS = {
    Role.volunteer.value: lazy_gettext("volunteer"),
    Role.moderator.value: lazy_gettext("moderator"),
    Role.admin.value: lazy_gettext("admin"),
    Role.researcher.value: lazy_gettext("researcher"),
}


def _role_notice(user: User) -> str:
    role = ROLE_LABELS.get(user.role, user.role)
    return _("%(username)s is now %(role)s.", username=user.username, role=str(role))


def _users_page(
    request: Request,
    db: SessionDep,
    *,
    query: str,
    page: int,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    page = max(page, 1)
    # One extra row tells whether there is a next page without counting the table.
    users = service.search_users(
        db, query=query, limit=service.PAGE_SIZE + 1, offset=(page - 1) * service.PAGE_SIZE
    )
    context = {
        "users": users[: service.PAGE_SIZE],
        "has_next": len(users) > service.PAGE_SIZE,
        "page": page,
        "q": query,
        "roles": [role.value for role in Role],
        **extra,
    }
    return render(request, "admin/users.html", context, block="results", status_code=status_code)


@router.get("/users")
def users_page(
    request: Request,
    admin: AdminUser,
    db: SessionDep,
    q: Text = "",
    page: PageNumber = 1,
    changed: int | None = None,
) -> Response:
    # The notice after a no-JavaScript role change names the user from the database, never
    # from the query string, so a crafted link cannot put words on this page.
    changed_user = db.get(User, changed) if changed is not None else None
    notice = _role_notice(changed_user) if changed_user else None
    return _users_page(request, db, query=q, page=page, notice=notice)


@router.post("/users/{user_id}/role")
def change_role(
    request: Request,
    user_id: Id,
    admin: AdminUser,
    db: SessionDep,
    role: Annotated[Text, Form()] = "",
    q: Annotated[Text, Form()] = "",
    page: Annotated[PageNumber, Form()] = 1,
) -> Response:
    try:
        user = service.change_user_role(
            db, user_id=user_id, role=service.parse_role(role), actor=admin
        )
    except AppError as error:
        if error.status == 404:
            raise
        return _users_page(
            request,
            db,
            query=q,
            page=page,
            status_code=error.status,
            error=error.message,
            error_code=error.code,
            error_user_id=user_id,
        )
    notice = _role_notice(user)
    if is_htmx(request):
        return _users_page(request, db, query=q, page=page, notice=notice)
    return RedirectResponse(
        "/admin/users?" + urlencode({"q": q, "page": page, "changed": user.id}),
        status_code=303,
    )


@router.get("")
def admin_home(request: Request, user: ModeratorUser, db: SessionDep) -> Response:
    """The moderators' and admins' landing: where the queue, boards and logs are."""
    return render(
        request,
        "admin/home.html",
        {
            "open_report_groups": moderation_service.queries.count_open_report_groups(db),
            "is_admin": user.has_role(Role.admin),
        },
    )


@router.post("/users/{user_id}/anonymise")
def anonymise(
    user_id: Id,
    admin: AdminUser,
    db: SessionDep,
    reason: Annotated[Text, Form()] = "",
) -> Response:
    moderation_service.anonymise_user(db, admin, user_id, reason=reason)
    return RedirectResponse(f"/moderation/users/{user_id}", status_code=303)
