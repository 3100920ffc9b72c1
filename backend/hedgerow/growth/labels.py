"""The review labels, defined once and served to every client.

Values are stored as numbers between 0 and 1: yes/no and flags are 0 or 1, a 5-point
scale is 0, 0.25, 0.5, 0.75 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal, cast

from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.i18n.translation import N_
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

    def translated(self) -> LabelDefinition:
        """This label as the current request's language shows it (the name, which is
        what is stored, stays)."""
        return replace(
            self,
            title=_(self.title),
            description=_(self.description),
            low=_(self.low) if self.low else None,
            high=_(self.high) if self.high else None,
        )

    def applies_to(self, role: str, mode: ReviewMode) -> bool:
        return role in self.roles and (mode == "full" or self.in_quick_mode)


LABELS: tuple[LabelDefinition, ...] = (
    LabelDefinition(
        "spam",
        LabelKind.yes_no,
        N_("Spam"),
        N_("Is the message spam: off-topic, nonsense, an advert, or written to game the site?"),
        in_quick_mode=True,
        required=True,
    ),
    LabelDefinition(
        "fails_task",
        LabelKind.yes_no,
        N_("Fails the task"),
        N_("Does the reply fail to do what the prompter asked, or answer a different question?"),
        roles=ASSISTANT_ONLY,
        required=True,
    ),
    LabelDefinition(
        "lang_mismatch",
        LabelKind.flag,
        N_("Wrong language"),
        N_("The message is not written (mostly) in the language of the conversation."),
        in_quick_mode=True,
    ),
    LabelDefinition(
        "pii",
        LabelKind.flag,
        N_("Personal information"),
        N_("Contains personal data about a real private person (address, phone, full name)."),
    ),
    LabelDefinition(
        "not_appropriate",
        LabelKind.flag,
        N_("Not appropriate"),
        N_("Inappropriate for a customer-facing assistant, even if not hateful or sexual."),
    ),
    LabelDefinition(
        "hate_speech",
        LabelKind.flag,
        N_("Hate speech"),
        N_("Attacks or demeans people for who they are."),
    ),
    LabelDefinition(
        "sexual_content",
        LabelKind.flag,
        N_("Sexual content"),
        N_("Contains sexual content."),
    ),
    LabelDefinition(
        "moral_judgement",
        LabelKind.flag,
        N_("Moral judgement"),
        N_("Expresses a moral judgement on the prompter or on others."),
    ),
    LabelDefinition(
        "political_content",
        LabelKind.flag,
        N_("Political content"),
        N_("Expresses political views."),
    ),
    LabelDefinition(
        "quality",
        LabelKind.scale,
        N_("Quality"),
        N_("Overall quality of the message for its purpose."),
        in_quick_mode=True,
        required=True,
        low=N_("Low quality"),
        high=N_("High quality"),
    ),
    LabelDefinition(
        "helpfulness",
        LabelKind.scale,
        N_("Helpfulness"),
        N_("How useful the reply is to the prompter."),
        roles=ASSISTANT_ONLY,
        low=N_("Unhelpful"),
        high=N_("Very helpful"),
    ),
    LabelDefinition(
        "creativity",
        LabelKind.scale,
        N_("Creativity"),
        N_("How original it is."),
        low=N_("Ordinary"),
        high=N_("Creative"),
    ),
    LabelDefinition(
        "humor",
        LabelKind.scale,
        N_("Humour"),
        N_("How funny it is."),
        low=N_("Serious"),
        high=N_("Funny"),
    ),
    LabelDefinition(
        "toxicity",
        LabelKind.scale,
        N_("Toxicity"),
        N_("How rude or hostile it is."),
        low=N_("Polite"),
        high=N_("Rude"),
    ),
    LabelDefinition(
        "violence",
        LabelKind.scale,
        N_("Violence"),
        N_("How much it encourages or describes violence."),
        low=N_("Harmless"),
        high=N_("Violent"),
    ),
)

LABELS_BY_NAME = {label.name: label for label in LABELS}


def labels_for(role: str, mode: ReviewMode) -> list[LabelDefinition]:
    """The labels a review of a `role` message asks, in the current language."""
    return [label.translated() for label in LABELS if label.applies_to(role, mode)]


def translated_labels() -> list[LabelDefinition]:
    return [label.translated() for label in LABELS]


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
        raise AppError(
            "invalid_labels",
            _("Unknown review mode “%(mode)s”; use full or quick.", mode=mode),
            422,
        )
    applicable = {label.name: label for label in labels_for(role, cast(ReviewMode, mode))}
    problems: list[str] = []
    for name, value in values.items():
        label = applicable.get(name)
        if label is None:
            problems.append(_("“%(name)s” is not a label for this review", name=name))
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(_("“%(name)s” must be a number", name=name))
        elif not _is_allowed_value(label, float(value)):
            if label.kind is LabelKind.scale:
                problems.append(_("“%(name)s” must be 0, 0.25, 0.5, 0.75 or 1", name=name))
            else:
                problems.append(_("“%(name)s” must be 0 or 1", name=name))
    for label in applicable.values():
        if label.required and label.name not in values:
            problems.append(_("“%(name)s” is required", name=label.name))
    if problems:
        raise AppError(
            "invalid_labels",
            _("The labels are not valid: %(problems)s.", problems="; ".join(problems)),
            422,
            details={"problems": problems},
        )
    stored = {name: float(value) for name, value in values.items()}
    for label in applicable.values():
        if label.kind is LabelKind.flag:
            stored.setdefault(label.name, 0.0)
    return stored
