"""Shapes of the moderation JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from hedgerow.inputs import Id, Text, one_of, text_schema
from hedgerow.models import AuditEvent, Report, ReportReason
from hedgerow.moderation.service import BULK_ACTIONS
from hedgerow.text import MAX_TEXT_LENGTH


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ReportReason
    text: Text | None = Field(default=None, max_length=2000)


class ReportOut(BaseModel):
    id: int
    message_id: int
    reason: str
    text: str | None
    status: str
    created_at: datetime

    @classmethod
    def of(cls, report: Report) -> ReportOut:
        return cls(
            id=report.id,
            message_id=report.message_id,
            reason=report.reason,
            text=report.text,
            status=report.status,
            created_at=report.created_at,
        )


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text | None = Field(default=None, max_length=500)


class RequiredReasonRequest(BaseModel):
    """For the actions whose reason is required (halt a tree, disable an account)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(max_length=500, json_schema_extra=text_schema(500, blank=False))


class EditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(json_schema_extra=text_schema(MAX_TEXT_LENGTH, blank=False))
    reason: Text = Field(max_length=500, json_schema_extra=text_schema(500, blank=False))


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(max_length=4000)


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Annotated[str, one_of(BULK_ACTIONS)]
    message_ids: list[Id] = Field(max_length=100, json_schema_extra={"minItems": 1})
    reason: Text | None = Field(default=None, max_length=500)


class BulkResult(BaseModel):
    outcomes: dict[int, str]


class QueueEntryOut(BaseModel):
    message_id: int
    tree_id: int
    text: str
    author_id: int
    author_username: str
    report_count: int
    severity: int
    reasons: list[str]
    path_message_ids: list[int]


class MessageIdsOut(BaseModel):
    message_ids: list[int]


class TreeStateOut(BaseModel):
    tree_id: int
    state: str


class UserStateOut(BaseModel):
    user_id: int
    enabled: bool


class RevisionOut(BaseModel):
    message_id: int
    revision_id: int
    text: str


class AuditEventOut(BaseModel):
    id: int
    actor_id: int | None
    actor_username: str | None
    action: str
    target_type: str
    target_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, event: AuditEvent, actor_username: str | None) -> AuditEventOut:
        return cls(
            id=event.id,
            actor_id=event.actor_id,
            actor_username=actor_username,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            before=event.before,
            after=event.after,
            reason=event.reason,
            created_at=event.created_at,
        )
