"""Chat API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hedgerow.inputs import Id, Text


class SamplingIn(BaseModel):
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256


class NewChat(BaseModel):
    model: Text | None = Field(default=None, max_length=200)


class ChatUpdate(BaseModel):
    title: Text | None = None
    hidden: bool | None = None
    allow_data_use: bool | None = None
    model: Text | None = Field(default=None, max_length=200)


class NewPrompt(SamplingIn):
    # Not length-limited here: the service refuses over-long text with its own message.
    text: Text
    parent_id: Id | None = None


class Regenerate(SamplingIn):
    pass


class Thumbs(BaseModel):
    value: int


class ReportIn(BaseModel):
    reason: Text


class ChatOut(BaseModel):
    id: int
    title: str
    model: str
    hidden: bool
    allow_data_use: bool
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    id: int
    parent_id: int | None
    role: str
    text: str
    status: str
    model: str | None
    model_version: str | None
    sampling: dict[str, Any] | None
    error: str | None
    thumbs: int | None
    reported: bool
    created_at: datetime


class ThreadEntryOut(MessageOut):
    sibling_ids: list[int]
    position: int


class ChatDetail(ChatOut):
    messages: list[MessageOut]
    thread: list[ThreadEntryOut]


class ExchangeOut(BaseModel):
    prompt: MessageOut | None
    reply: MessageOut
    stream_url: str


class ModelsOut(BaseModel):
    models: list[str]
    default: str
