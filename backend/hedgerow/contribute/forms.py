"""Task forms: HTML form fields to the growth engine's Submission, and back.

Field names are shared by the form, the autosaved draft and the values shown again after
an error, so one dict restores the form in all three cases:
``text``, ``category``, ``context``; ``mode`` and ``label.<name>`` for reviews (scales as
the step 0..4, yes/no and flags as 0/1); ``position.<message id>``, ``grade.<n>`` and
``not_rankable`` for rankings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hedgerow.errors import AppError
from hedgerow.growth.schemas import (
    RANKING_KINDS,
    REPLY_KINDS,
    REVIEW_KINDS,
    SCALE_STEPS,
    LabelDefinition,
    LabelKind,
    Submission,
    TaskView,
)
from hedgerow.i18n import gettext as _

# Form fields that are plumbing, not the volunteer's work: never stored in a draft.
NOT_WORK = frozenset({"csrf_token", "next_kind", "review_mode_choice"})
DRAFT_VALUE_MAX_LENGTH = 100_000


def form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The volunteer's own fields as plain strings, what a draft or an error keeps."""
    values: dict[str, str] = {}
    for name, value in form.items():
        if name in NOT_WORK or not isinstance(value, str):
            continue
        values[name] = value[:DRAFT_VALUE_MAX_LENGTH]
    return values


def _invalid(code: str, message: str) -> AppError:
    return AppError(code, message, 422)


def _label_value(label: LabelDefinition, raw: str) -> float:
    try:
        number = int(raw)
    except ValueError:
        raise _invalid(
            "invalid_labels", _("%(label)s: choose one of the options.", label=label.title)
        ) from None
    if label.kind is LabelKind.scale:
        if not 0 <= number <= SCALE_STEPS:
            raise _invalid(
                "invalid_labels", _("%(label)s: choose a point on the scale.", label=label.title)
            )
        return number / SCALE_STEPS
    if number not in (0, 1):
        raise _invalid("invalid_labels", _("%(label)s: answer yes or no.", label=label.title))
    return float(number)


def _review_submission(view: TaskView, values: Mapping[str, str]) -> Submission:
    labels: dict[str, float] = {}
    missing: list[str] = []
    for label in view.labels:
        raw = values.get(f"label.{label.name}", "").strip()
        if raw == "":
            if label.required:
                missing.append(label.title)
            continue
        labels[label.name] = _label_value(label, raw)
    if missing:
        raise _invalid("invalid_labels", _("Please answer: %(labels)s.", labels=", ".join(missing)))
    return Submission(labels=labels, mode=view.review_mode or "full")


def _ranking_submission(view: TaskView, values: Mapping[str, str]) -> Submission:
    if values.get("not_rankable"):
        return Submission(not_rankable=True)
    positions: dict[int, int] = {}
    for reply in view.replies:
        raw = values.get(f"position.{reply.id}", "")
        if not raw.isdigit():
            raise _invalid("invalid_ranking", _("Give every reply a position."))
        positions[reply.id] = int(raw)
    if sorted(positions.values()) != list(range(1, len(view.replies) + 1)):
        raise _invalid("invalid_ranking", _("Give each reply a different position, 1 is best."))
    order = sorted(positions, key=lambda message_id: positions[message_id])
    grades = [values.get(f"grade.{n}", "") for n in range(1, len(order))]
    if not any(grades):
        return Submission(ranking=order)
    if not all(grades):
        raise _invalid(
            "invalid_ranking",
            _("Give a degree of preference between every pair of neighbours, or none at all."),
        )
    return Submission(ranking=order, grades=grades)


def submission_from_form(view: TaskView, values: Mapping[str, str]) -> Submission:
    if view.kind in REVIEW_KINDS:
        return _review_submission(view, values)
    if view.kind in RANKING_KINDS:
        return _ranking_submission(view, values)
    if view.kind in REPLY_KINDS:
        return Submission(text=values.get("text", ""))
    return Submission(
        text=values.get("text", ""),
        category=values.get("category") or None,
        context=values.get("context") or None,
    )


def initial_positions(view: TaskView, values: Mapping[str, str]) -> list[int]:
    """Reply ids in the order to show them: as the volunteer left them, else as handed out."""
    shown = [reply.id for reply in view.replies]

    def saved_position(message_id: int) -> int:
        raw = str(values.get(f"position.{message_id}", ""))
        return int(raw) if raw.isdigit() else len(shown) + shown.index(message_id)

    return sorted(shown, key=saved_position)
