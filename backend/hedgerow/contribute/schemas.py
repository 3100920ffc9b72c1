"""Request and response shapes of the volunteer task API (/api/v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hedgerow.config import get_settings
from hedgerow.growth.schemas import Submission
from hedgerow.growth.service import offered_kinds
from hedgerow.inputs import JsonObject, Text, one_of
from hedgerow.languages import LanguageCode

TaskKindOrAny = Literal[
    "any",
    "write_prompt",
    "reply_assistant",
    "reply_prompter",
    "review_prompt",
    "review_prompter_reply",
    "review_assistant_reply",
    "rank_assistant_replies",
    "rank_prompter_replies",
]


def _offered_kinds() -> list[str]:
    # The kinds this server hands out are configuration; the others answer invalid_kind.
    return ["any", *(kind.value for kind in offered_kinds(get_settings()))]


class TaskRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"kind": "any", "language": "en"}]})

    kind: Annotated[TaskKindOrAny, one_of(_offered_kinds)] = "any"
    language: LanguageCode | None = Field(
        default=None, description="Defaults to the user's language."
    )
    review_mode: Literal["full", "quick"] = Field(
        default="full", description="For review tasks: all labels, or the quick set."
    )


class LabelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: str
    title: str
    description: str
    roles: list[str]
    in_quick_mode: bool
    required: bool
    low: str | None = None
    high: str | None = None


class ConversationMessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: str
    text: str
    depth: int
    by_you: bool


class TaskOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "kind": "reply_assistant",
                    "language": "en",
                    "state": "leased",
                    "lease_expires_at": "2026-11-22T12:00:00Z",
                    "resumed": False,
                    "target_message_id": 7,
                    "conversation": [
                        {
                            "id": 7,
                            "role": "prompter",
                            "text": "How do hedgehogs survive winter?",
                            "depth": 0,
                            "by_you": False,
                        }
                    ],
                    "replies": [],
                    "labels": [],
                    "review_mode": None,
                    "draft": None,
                    "categories": [],
                }
            ]
        },
    )

    id: int
    kind: str
    language: str
    state: str
    lease_expires_at: datetime
    resumed: bool = Field(description="True when this is the task you already held.")
    target_message_id: int | None
    conversation: list[ConversationMessageOut] = Field(
        description="Root first, down to the message the task is about."
    )
    replies: list[ConversationMessageOut] = Field(description="Ranking tasks: the replies.")
    labels: list[LabelOut] = Field(description="Review tasks: the labels to give.")
    review_mode: str | None
    draft: dict[str, Any] | None
    categories: list[str] = Field(description="Prompt tasks: the categories to choose from.")


class SubmitRequest(Submission):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "Hedgehogs hibernate: their heart rate drops to a few beats a minute."},
                {"labels": {"spam": 0, "lang_mismatch": 0, "quality": 0.75}, "mode": "quick"},
                {"ranking": [12, 11, 13], "grades": ["better", "about_same"]},
                {"not_rankable": True},
                {
                    "text": "Summarise this passage in one sentence.",
                    "category": "summarization",
                    "context": "Hedgerows are rows of shrubs ...",
                },
            ]
        }
    )


class SubmitResult(BaseModel):
    task_id: int
    state: Literal["done"] = "done"
    replayed: bool = Field(description="True when this task was already submitted before.")
    message_id: int | None = None
    tree_id: int | None = None
    label_id: int | None = None
    ranking_id: int | None = None


class SkipRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "not my expertise"}]})

    reason: Text | None = Field(default=None, max_length=500)


class SkipResult(BaseModel):
    task_id: int
    state: Literal["skipped"] = "skipped"


class DraftRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"draft": {"text": "Hedgehogs hiber"}}]}
    )

    draft: JsonObject


class DraftResult(BaseModel):
    task_id: int
    lease_expires_at: datetime


class LabelsOut(BaseModel):
    guideline_version: str
    labels: list[LabelOut]


class AvailableOut(BaseModel):
    language: str
    counts: dict[str, int]


class RedFlagResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    message_id: int
    red_flag_count: int
    newly_flagged: bool
    deleted: bool
    counted: bool = Field(
        description="Whether the flag counts toward automatic deletion: only from volunteers "
        "who were shown the message and have earned trust. Otherwise it reached the "
        "moderators as a report."
    )
