"""The review labels, defined once and served to every client.

Values are stored as numbers between 0 and 1: yes/no and flags are 0 or 1, a 5-point
scale is 0, 0.25, 0.5, 0.75 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, cast

from hedgerow.errors import AppError
from hedgerow.models import MessageRole

# Stored with every label so that labels given under older guidelines can be told apart.
GUIDELINE_VERSION = "2026-11"

ReviewMode = Literal["full", "quick"]
REVIEW_MODES: tuple[ReviewMode, ...] = ("full", "quick")
SCALE_STEPS = 4  # a 5-point scale: 0/4 .. 4/4


class LabelKind(StrEnum):
    yes_no = "yes_no"
    flag = "flag"
    scale = "scale"


ALL_ROLES = (MessageRole.prompter, MessageRole.assistant)
ASSISTANT_ONLY = (MessageRole.assistant,)


@dataclass(frozen=True)
class LabelDefinition:
    name: str
    kind: LabelKind
    title: str
    description: str
    roles: tuple[MessageRole, ...] = ALL_ROLES
    # Quick mode asks only the labels that decide acceptance, plus quality.
    in_quick_mode: bool = False
    # Yes/no questions and quality must be answered; an unticked flag means "no" and the
    # other scales may be left out when the reviewer has no opinion.
    required: bool = False
    low: str | None = None
    high: str | None = None

    def applies_to(self, role: str, mode: ReviewMode) -> bool:
        return role in self.roles and (mode == "full" or self.in_quick_mode)


LABELS: tuple[LabelDefinition, ...] = (
    LabelDefinition(
        "spam",
        LabelKind.yes_no,
        "Spam",
        "Is the message spam: off-topic, nonsense, an advert, or written to game the site?",
        in_quick_mode=True,
        required=True,
    ),
    LabelDefinition(
        "fails_task",
        LabelKind.yes_no,
        "Fails the task",
        "Does the reply fail to do what the prompter asked, or answer a different question?",
        roles=ASSISTANT_ONLY,
        required=True,
    ),
    LabelDefinition(
        "lang_mismatch",
        LabelKind.flag,
        "Wrong language",
        "The message is not written (mostly) in the language of the conversation.",
        in_quick_mode=True,
    ),
    LabelDefinition(
        "pii",
        LabelKind.flag,
        "Personal information",
        "Contains personal data about a real private person (address, phone, full name).",
    ),
    LabelDefinition(
        "not_appropriate",
        LabelKind.flag,
        "Not appropriate",
        "Inappropriate for a customer-facing assistant, even if not hateful or sexual.",
    ),
    LabelDefinition(
        "hate_speech",
        LabelKind.flag,
        "Hate speech",
        "Attacks or demeans people for who they are.",
    ),
    LabelDefinition(
        "sexual_content",
        LabelKind.flag,
        "Sexual content",
        "Contains sexual content.",
    ),
    LabelDefinition(
        "moral_judgement",
        LabelKind.flag,
        "Moral judgement",
        "Expresses a moral judgement on the prompter or on others.",
    ),
    LabelDefinition(
        "political_content",
        LabelKind.flag,
        "Political content",
        "Expresses political views.",
    ),
    LabelDefinition(
        "quality",
        LabelKind.scale,
        "Quality",
        "Overall quality of the message for its purpose.",
        in_quick_mode=True,
        required=True,
        low="Low quality",
        high="High quality",
    ),
    LabelDefinition(
        "helpfulness",
        LabelKind.scale,
        "Helpfulness",
        "How useful the reply is to the prompter.",
        roles=ASSISTANT_ONLY,
        low="Unhelpful",
        high="Very helpful",
    ),
    LabelDefinition(
        "creativity",
        LabelKind.scale,
        "Creativity",
        "How original it is.",
        low="Ordinary",
        high="Creative",
    ),
    LabelDefinition(
        "humor", LabelKind.scale, "Humour", "How funny it is.", low="Serious", high="Funny"
    ),
    LabelDefinition(
        "toxicity",
        LabelKind.scale,
        "Toxicity",
        "How rude or hostile it is.",
        low="Polite",
        high="Rude",
    ),
    LabelDefinition(
        "violence",
        LabelKind.scale,
        "Violence",
        "How much it encourages or describes violence.",
        low="Harmless",
        high="Violent",
    ),
)

LABELS_BY_NAME = {label.name: label for label in LABELS}


def labels_for(role: str, mode: ReviewMode) -> list[LabelDefinition]:
    return [label for label in LABELS if label.applies_to(role, mode)]


def _is_allowed_value(label: LabelDefinition, value: float) -> bool:
    if not 0.0 <= value <= 1.0:
        return False
    if label.kind is LabelKind.scale:
        steps = value * SCALE_STEPS
        return abs(steps - round(steps)) < 1e-9
    return value in (0.0, 1.0)


def validate_label_values(values: dict[str, float], role: str, mode: str) -> dict[str, float]:
    """Check a review's values for a message of `role`; return what is stored.

    Flags left out are stored as 0 (an unticked box is an answer); optional scales left
    out are not stored at all.
    """
    if mode not in REVIEW_MODES:
        raise AppError("invalid_labels", f"Unknown review mode {mode!r}; use full or quick.", 422)
    applicable = {label.name: label for label in labels_for(role, cast(ReviewMode, mode))}
    problems: list[str] = []
    for name, value in values.items():
        label = applicable.get(name)
        if label is None:
            problems.append(f"{name!r} is not a label for this review")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{name!r} must be a number")
        elif not _is_allowed_value(label, float(value)):
            allowed = "0, 0.25, 0.5, 0.75 or 1" if label.kind is LabelKind.scale else "0 or 1"
            problems.append(f"{name!r} must be {allowed}")
    for label in applicable.values():
        if label.required and label.name not in values:
            problems.append(f"{label.name!r} is required")
    if problems:
        raise AppError(
            "invalid_labels",
            "The labels are not valid: " + "; ".join(problems) + ".",
            422,
            details={"problems": problems},
        )
    stored = {name: float(value) for name, value in values.items()}
    for label in applicable.values():
        if label.kind is LabelKind.flag:
            stored.setdefault(label.name, 0.0)
    return stored
