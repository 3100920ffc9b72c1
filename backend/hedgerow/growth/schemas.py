"""Shapes the growth service takes and returns; plain code (the simulator) uses them too.

The review labels' definitions are part of these shapes and are re-exported here, so other
domains need not reach into growth.labels."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from hedgerow.growth.labels import (
    GUIDELINE_VERSION,
    LABELS,
    REVIEW_MODES,
    SCALE_STEPS,
    LabelDefinition,
    LabelKind,
    ReviewMode,
    translated_labels,
)
from hedgerow.models import TaskKind
from hedgerow.text import NO_CONTROL_CHARACTERS, Text

PROMPT_CATEGORIES = (
    "brainstorming",
    "classification",
    "closed_qa",
    "generation",
    "information_extraction",
    "open_qa",
    "summarization",
    "creative_writing",
    "coding",
    "other",
)
# A context passage only makes sense where the task is about a given text.
CATEGORIES_WITH_CONTEXT = frozenset({"closed_qa", "information_extraction", "summarization"})

__all__ = [
    "CATEGORIES_WITH_CONTEXT",
    "GUIDELINE_VERSION",
    "LABELS",
    "PROMPT_CATEGORIES",
    "RANKING_GRADES",
    "REVIEW_MODES",
    "SCALE_STEPS",
    "AvailableTasks",
    "ConversationMessage",
    "LabelDefinition",
    "LabelKind",
    "ReviewMode",
    "Submission",
    "SubmitOutcome",
    "TaskView",
    "VolunteerRecord",
    "translated_labels",
]

# The key of the submission's fingerprint in a done task's result (tasks submitted before
# it existed have none: their replays are taken as identical).
FINGERPRINT_KEY = "submission_sha256"

RANKING_GRADES = ("much_better", "better", "slightly_better", "about_same")

REPLY_KINDS = frozenset({TaskKind.reply_assistant, TaskKind.reply_prompter})
REVIEW_KINDS = frozenset(
    {TaskKind.review_prompt, TaskKind.review_prompter_reply, TaskKind.review_assistant_reply}
)
RANKING_KINDS = frozenset({TaskKind.rank_assistant_replies, TaskKind.rank_prompter_replies})


class Submission(BaseModel):
    """What a volunteer hands in; which fields matter depends on the task kind.

    Prompts and replies: ``text`` (prompts also ``category`` and ``context``). Reviews:
    ``labels`` and ``mode``. Rankings: ``ranking`` (message ids, best first) or
    ``not_rankable``, and optional ``grades`` between neighbours.
    """

    text: Text | None = None
    category: Text | None = None
    context: Text | None = None
    labels: dict[Text, float] | None = Field(
        default=None,
        # Label names are Text: the document says so of the keys too.
        json_schema_extra={"propertyNames": {"pattern": NO_CONTROL_CHARACTERS}},
    )
    mode: Literal["full", "quick"] = "full"
    ranking: list[int] | None = None
    not_rankable: bool = False
    grades: list[Text] | None = None

    def echo(self) -> dict[str, Any]:
        """What the volunteer sent, returned in errors so that the UI can keep it."""
        return self.model_dump(exclude_defaults=True)

    def fingerprint(self) -> str:
        """The same for the same content however it is sent (key order, defaults spelled
        out or left out): tells an idempotent replay from a different second submission."""
        canonical = json.dumps(self.echo(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ConversationMessage:
    id: int
    role: str
    text: str
    depth: int
    by_you: bool = False


@dataclass
class TaskView:
    id: int
    kind: str
    language: str
    state: str
    lease_expires_at: datetime
    resumed: bool
    target_message_id: int | None
    # Root first; for a reply task it ends with the message to reply to, for a review with
    # the message to review, for a ranking with the parent of the replies.
    conversation: list[ConversationMessage] = field(default_factory=list)
    replies: list[ConversationMessage] = field(default_factory=list)
    labels: list[LabelDefinition] = field(default_factory=list)
    review_mode: str | None = None
    draft: dict[str, Any] | None = None
    categories: tuple[str, ...] = ()


class AvailableTasks(BaseModel):
    language: str
    counts: dict[str, int] = Field(description="Items of work per task kind for this user.")


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submission created: the new message (prompt, reply), label or ranking, and
    the tree it belongs to. Stored on the task, so a replay returns the same outcome."""

    tree_id: int
    message_id: int
    label_id: int | None = None
    ranking_id: int | None = None
    replayed: bool = False

    def stored(self, submission: Submission) -> dict[str, int | str]:
        """The task's ``result`` column: the ids, and the fingerprint of the submission
        that made them (a replay sets ``replayed``)."""
        ids = {
            "tree_id": self.tree_id,
            "message_id": self.message_id,
            "label_id": self.label_id,
            "ranking_id": self.ranking_id,
        }
        stored: dict[str, int | str] = {
            name: value for name, value in ids.items() if value is not None
        }
        stored[FINGERPRINT_KEY] = submission.fingerprint()
        return stored

    @classmethod
    def replay_of(cls, stored: dict[str, Any]) -> SubmitOutcome:
        ids = {name: value for name, value in stored.items() if name != FINGERPRINT_KEY}
        return cls(**ids, replayed=True)


@dataclass(frozen=True)
class VolunteerRecord:
    """A volunteer's track record and the estimates the adaptive review rule draws from it:
    the chance their review votes as the decision goes, and the chance a message of theirs
    is accepted (both Beta posterior means, at the configured priors with no record)."""

    reviews_settled: int
    reviews_agreed: int
    messages_decided: int
    messages_accepted: int
    review_reliability: float
    author_acceptance: float
