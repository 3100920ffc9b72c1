"""Admin JSON API (mounted at /api/v1): list users, change a role, anonymise a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hedgerow.accounts.security import AdminUser
from hedgerow.admin import service
from hedgerow.admin.schemas import AdminUserOut, AnonymiseRequest, RoleChange
from hedgerow.db import SessionDep
from hedgerow.inputs import Id, Offset, Text
from hedgerow.moderation import service as moderation_service
from hedgerow.openapi import error_responses

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users")
def list_users(
    admin: AdminUser,
    db: SessionDep,
    q: Annotated[
        Text | None, Query(json_schema_extra={"maxLength": service.SEARCH_MAX_LENGTH})
    ] = None,
    # The service refuses other limits (invalid_page); the schema states the range.
    limit: Annotated[
        int, Query(json_schema_extra={"minimum": 1, "maximum": service.MAX_PAGE_SIZE})
    ] = service.PAGE_SIZE,
    offset: Offset = 0,
) -> list[AdminUserOut]:
    users = service.search_users(db, query=q, limit=limit, offset=offset)
    return [AdminUserOut.of(user) for user in users]


@router.post("/users/{user_id}/role", responses=error_responses(409))
def change_role(user_id: Id, body: RoleChange, admin: AdminUser, db: SessionDep) -> AdminUserOut:
    user = service.change_user_role(db, user_id=user_id, role=body.role, actor=admin)
    return AdminUserOut.of(user)


@router.post("/users/{user_id}/anonymise", responses=error_responses(409))
def anonymise(
    user_id: Id, body: AnonymiseRequest, admin: AdminUser, db: SessionDep
) -> AdminUserOut:
    """Delete a user on request: name removed, contributions kept under a pseudonym."""
    user = moderation_service.anonymise_user(db, admin, user_id, reason=body.reason)
    return AdminUserOut.of(user)
