"""Shapes of the accounts JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from hedgerow.i18n.locales import INTERFACE_LANGUAGES
from hedgerow.inputs import Text, one_of, text_schema
from hedgerow.languages import LanguageCode
from hedgerow.models import ApiKey, User


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    language: str
    # The interface language chosen in the settings; null: the contribution language's
    # when Hedgerow ships it, else the browser's.
    interface_language: str | None
    tos_accepted_at: datetime | None
    # What the ToS gate (ContributorUser) decides, so clients can send people to /tos.
    can_contribute: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> Me:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            role=user.role,
            language=user.language,
            interface_language=user.interface_language,
            tos_accepted_at=user.tos_accepted_at,
            can_contribute=user.tos_accepted_at is not None and user.enabled,
            created_at=user.created_at,
        )


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Text | None = Field(
        default=None,
        max_length=1000,
        json_schema_extra=text_schema(1000, blank=False),
    )
    language: LanguageCode | None = None
    # null or "": the same as the contribution language.
    interface_language: Annotated[str, one_of((*INTERFACE_LANGUAGES, ""))] | None = None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(max_length=1000, json_schema_extra=text_schema(1000, blank=False))


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key. Shown only in this response; store it now.")
