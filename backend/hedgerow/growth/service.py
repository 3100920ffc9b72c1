"""The growth engine's public API: everything a route, job, CLI or simulator calls.

Every function takes a plain SQLAlchemy Session, works inside the caller's transaction and
only flushes; on an AppError the caller rolls back (the request session does).
Lock order everywhere, so that transactions never wait on each other in a cycle: the task
row, then the tree row, then message rows by ascending id. The hand-out never waits at all
(SKIP LOCKED).
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.growth.auto_moderation import RedFlagOutcome, count_skip, record_red_flag
from hedgerow.growth.flags import REPLY_ROLE_FOR_KIND, slot_is_free, take_slot
from hedgerow.growth.handout import (
    available_task_counts,
    offered_kinds,
    request_task,
    task_view,
)
from hedgerow.growth.interventions import (
    TextEdit,
    delete_subtree,
    edit_text,
    end_open_leases,
    halt,
    resume_tree,
    undelete_subtree,
)
from hedgerow.growth.labels import GUIDELINE_VERSION, LABELS, labels_for
from hedgerow.growth.leases import expire_leases, lease_deadline, release_task_slot, utcnow
from hedgerow.growth.lottery import draw_lottery, top_up_lotteries, withdraw_waiting_prompts
from hedgerow.growth.queries import (
    conversation_path,
    live_subtree_size,
    lock_message,
    lock_tree,
    other_leased_task_id,
    tree_id_of_message,
    volunteer_record_row,
)
from hedgerow.growth.queries import (
    review_reliability_expression as _review_reliability_expression,
)
from hedgerow.growth.redundancy import reliability
from hedgerow.growth.schemas import Submission, SubmitOutcome, TaskView, VolunteerRecord
from hedgerow.growth.shown import record_tree_visit
from hedgerow.growth.submission import own_task, plant_prompt, submit_task, validated_text
from hedgerow.growth.tree_state import maybe_start_ranking
from hedgerow.i18n import gettext as _
from hedgerow.models import Task, TaskState, Tree, User

SKIP_REASON_MAX_LENGTH = 500

__all__ = [
    "GUIDELINE_VERSION",
    "LABELS",
    "RedFlagOutcome",
    "Submission",
    "SubmitOutcome",
    "TaskView",
    "TextEdit",
    "VolunteerRecord",
    "available_task_counts",
    "conversation_path",
    "create_prompt_tree",
    "delete_subtree",
    "draw_lottery",
    "edit_text",
    "end_open_leases",
    "expire_leases",
    "halt",
    "labels_for",
    "live_subtree_size",
    "offered_kinds",
    "own_task",
    "record_red_flag",
    "record_tree_visit",
    "request_task",
    "resume_tree",
    "review_reliability_expression",
    "save_draft",
    "skip_task",
    "submit_task",
    "task_view",
    "top_up_lotteries",
    "undelete_subtree",
    "volunteer_record",
    "withdraw_waiting_prompts",
]


def _refuse_finished(task: Task) -> None:
    if task.state == TaskState.done:
        raise AppError("task_done", _("This task is already submitted."), 409)
    if task.state == TaskState.skipped:
        raise AppError("task_skipped", _("You skipped this task."), 409)


def skip_task(
    db: Session,
    user: User,
    task_id: int,
    reason: str | None = None,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> None:
    """Give the task back; the user is never handed that item again. Skipping twice is
    harmless."""
    now = now or utcnow()
    task = own_task(db, user, task_id)
    if task.state == TaskState.skipped:
        return
    _refuse_finished(task)
    if task.target_message_id is not None:
        tree_id = tree_id_of_message(db, task.target_message_id)
        assert tree_id is not None
        tree = lock_tree(db, tree_id)
        target = lock_message(db, task.target_message_id)
        release_task_slot(db, task, now=now, rng=rng)
        if not target.deleted:
            count_skip(db, target, tree, now=now, rng=rng)
        if task.kind in REPLY_ROLE_FOR_KIND:
            maybe_start_ranking(db, tree, now=now, rng=rng)
    task.state = TaskState.skipped
    task.skip_reason = (reason or "").strip()[:SKIP_REASON_MAX_LENGTH] or None
    task.finished_at = now
    task.draft = None
    db.flush()


def create_prompt_tree(db: Session, author: User, language: str, text: str) -> Tree:
    """A prompt that did not come from a write-prompt task (e.g. one a chat model answered
    badly) enters prompt review like any other: the same text rules, the same tree."""
    settings = get_settings()
    tree, _root = plant_prompt(
        db, author.id, language, validated_text(db, text, settings), settings
    )
    return tree


def draft_limit_bytes() -> int:
    # Room for a full-length text, a context passage and the form's other fields.
    return get_settings().max_text_length * 8 + 4096


def save_draft(
    db: Session,
    user: User,
    task_id: int,
    draft: dict[str, Any],
    *,
    now: datetime | None = None,
) -> datetime:
    """Autosave what the volunteer typed and extend the lease; returns the new deadline.

    A task whose lease already expired is taken up again if its slot is still free.
    """
    now = now or utcnow()
    size = len(json.dumps(draft, ensure_ascii=False).encode())
    if size > draft_limit_bytes():
        raise AppError(
            "draft_too_large",
            _(
                "The draft is %(size)s bytes; the limit is %(limit)s.",
                size=size,
                limit=draft_limit_bytes(),
            ),
            413,
        )
    task = own_task(db, user, task_id)
    _refuse_finished(task)
    if task.state == TaskState.expired:
        if other_leased_task_id(db, user.id, task.id) is not None:
            raise AppError(
                "task_expired", _("This task expired and you have started another one."), 409
            )
        if task.target_message_id is not None:
            tree_id = tree_id_of_message(db, task.target_message_id)
            assert tree_id is not None
            tree = lock_tree(db, tree_id)
            target = lock_message(db, task.target_message_id)
            settings = get_settings()
            if not slot_is_free(task.kind, target, tree, settings):
                raise AppError(
                    "lease_expired_slot_taken",
                    _(
                        "Your task expired and its place was taken by someone else; copy your "
                        "text before leaving the page."
                    ),
                    409,
                    details={"draft": draft},
                )
            take_slot(task, target, tree, settings)
        task.state = TaskState.leased
        task.finished_at = None
    task.draft = draft
    task.lease_expires_at = lease_deadline(now)
    db.flush()
    return task.lease_expires_at


def volunteer_record(db: Session, user_id: int) -> VolunteerRecord:
    """A volunteer's review and authoring record with the estimates drawn from it."""
    settings = get_settings()
    settled, agreed, decided, accepted = volunteer_record_row(db, user_id)
    return VolunteerRecord(
        reviews_settled=settled,
        reviews_agreed=agreed,
        messages_decided=decided,
        messages_accepted=accepted,
        review_reliability=reliability(
            settled, agreed, settings.reviewer_prior_reliability, settings.reviewer_prior_weight
        ),
        author_acceptance=reliability(
            decided, accepted, settings.author_prior_acceptance, settings.author_prior_weight
        ),
    )


def review_reliability_expression() -> Any:
    """The estimate of volunteer_record's review_reliability as a SQL expression over the
    volunteer_reliability table (outer-join it on user_id), to sort users by it."""
    settings = get_settings()
    return _review_reliability_expression(
        settings.reviewer_prior_reliability, settings.reviewer_prior_weight
    )
