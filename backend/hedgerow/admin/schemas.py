"""Shapes of the admin JSON API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from hedgerow.inputs import Text, text_schema
from hedgerow.models import Role, User


class AdminUserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    enabled: bool
    language: str
    tos_accepted_at: datetime | None
    created_at: datetime
    last_seen_at: datetime | None

    @classmethod
    def of(cls, user: User) -> AdminUserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            enabled=user.enabled,
            language=user.language,
            tos_accepted_at=user.tos_accepted_at,
            created_at=user.created_at,
            last_seen_at=user.last_seen_at,
        )


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class AnonymiseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(max_length=500, json_schema_extra=text_schema(500, blank=False))
