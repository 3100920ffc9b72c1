"""The accounts JSON API: who am I, my profile, the Terms, my API keys."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hedgerow.accounts import service
from hedgerow.accounts.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, Me, ProfileUpdate
from hedgerow.accounts.security import CurrentUser, SessionUser
from hedgerow.db import SessionDep
from hedgerow.inputs import Id

router = APIRouter(tags=["accounts"])


@router.get("/me")
def read_me(user: CurrentUser) -> Me:
    return Me.of(user)


@router.patch("/me")
def update_me(body: ProfileUpdate, user: CurrentUser, db: SessionDep) -> Me:
    interface_language = None
    if "interface_language" in body.model_fields_set:
        interface_language = body.interface_language or ""
    service.update_profile(
        db,
        user,
        display_name=body.display_name,
        language=body.language,
        interface_language=interface_language,
    )
    return Me.of(user)


@router.post("/me/tos")
def accept_terms(user: CurrentUser, db: SessionDep) -> Me:
    service.accept_tos(db, user)
    return Me.of(user)


@router.get("/me/api-keys")
def list_api_keys(user: CurrentUser, db: SessionDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(key) for key in service.list_api_keys(db, user)]


@router.post("/me/api-keys", status_code=201)
def create_api_key(
    body: ApiKeyCreate, user: SessionUser, db: SessionDep, response: Response
) -> ApiKeyCreated:
    """A new key, for a browser session only: an API key cannot make keys, so revoking a
    leaked key leaves nothing behind that it made."""
    key, raw_key = service.create_api_key(db, user, name=body.name)
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated(**ApiKeyOut.of(key).model_dump(), key=raw_key)


@router.delete("/me/api-keys/{key_id}")
def revoke_api_key(key_id: Id, user: CurrentUser, db: SessionDep) -> ApiKeyOut:
    return ApiKeyOut.of(service.revoke_api_key(db, user, key_id))
