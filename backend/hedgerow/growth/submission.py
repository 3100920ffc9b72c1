"""Submitting a task: validate what the volunteer sent, then create the message, label or
ranking and move the tree on, all in the caller's transaction.

Validation comes before any change, so an error leaves the database as it was.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy.orm import Session

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError
from hedgerow.growth.flags import (
    REPLY_ROLE_FOR_KIND,
    can_have_replies,
    refresh_open_flags,
    release_slot,
    sibling_set_is_rankable,
    slot_is_free,
    take_slot,
    tree_reviews,
)
from hedgerow.growth.labels import GUIDELINE_VERSION, validate_label_values
from hedgerow.growth.leases import utcnow
from hedgerow.growth.queries import (
    accepted_children,
    lock_messages,
    lock_task,
    lock_tree,
    tree_and_parent_of,
)
from hedgerow.growth.redundancy import tree_parameters
from hedgerow.growth.schemas import (
    CATEGORIES_WITH_CONTEXT,
    FINGERPRINT_KEY,
    PROMPT_CATEGORIES,
    RANKING_GRADES,
    REVIEW_KINDS,
    Submission,
    SubmitOutcome,
)
from hedgerow.growth.text import refuse_duplicate, text_sha256
from hedgerow.growth.tree_state import maybe_decide_review, maybe_settle_sibling_set
from hedgerow.i18n import gettext as _
from hedgerow.models import (
    Label,
    Message,
    MessageRole,
    Ranking,
    ReviewState,
    Task,
    TaskKind,
    TaskState,
    Tree,
    TreeState,
    User,
)
from hedgerow.text import normalize_text


def not_your_task() -> AppError:
    # The same answer for "no such task" and "someone else's task": ids do not leak.
    return AppError("not_your_task", _("You have no task with that id."), 404)


def own_task(db: Session, user: User, task_id: int) -> Task:
    task = lock_task(db, task_id)
    if task is None or task.user_id != user.id:
        raise not_your_task()
    return task


def new_message(
    *, tree: Tree, parent: Message | None, author_id: int, role: str, text: str
) -> Message:
    """A pending message with every counter set, so flags can be computed before a flush."""
    return Message(
        tree_id=tree.id,
        parent_id=parent.id if parent else None,
        author_id=author_id,
        role=role,
        text=text,
        text_sha256=text_sha256(text),
        language=tree.language,
        depth=parent.depth + 1 if parent else 0,
        review_state=ReviewState.pending,
        review_count=0,
        review_lease_count=0,
        child_count=0,
        accepted_child_count=0,
        reply_lease_count=0,
        ranking_count=0,
        ranking_lease_count=0,
        ranking_settled=False,
        open_for_review=False,
        open_for_reply=False,
        open_for_ranking=False,
        red_flag_count=0,
        skip_count=0,
        deleted=False,
    )


def validated_text(db: Session, raw: str | None, settings: Settings) -> str:
    text = normalize_text(raw or "", settings.max_text_length)
    refuse_duplicate(db, text_sha256(text))
    return text


def _tree_accepts(kind: str, target: Message, tree: Tree, settings: Settings) -> bool:
    if target.deleted:
        return False
    if kind in REPLY_ROLE_FOR_KIND:
        return (
            tree.state == TreeState.growing
            and target.review_state == ReviewState.accepted
            and can_have_replies(target, tree)
        )
    if kind in REVIEW_KINDS:
        return tree_reviews(target, tree) and target.review_state == ReviewState.pending
    return tree.state == TreeState.ranking and sibling_set_is_rankable(target, settings)


def _validated_ranking(submission: Submission, children: list[Message]) -> list[int]:
    expected = sorted(child.id for child in children)
    if submission.not_rankable:
        if submission.ranking or submission.grades:
            raise AppError(
                "invalid_ranking", _("A set marked not rankable has no order or grades."), 422
            )
        return []
    order = submission.ranking or []
    if sorted(order) != expected:
        raise AppError(
            "invalid_ranking",
            _("Rank every reply exactly once, best first (or mark the set not rankable)."),
            422,
            details={"expected_message_ids": expected},
        )
    grades = submission.grades
    if grades is not None and (
        len(grades) != len(order) - 1 or any(g not in RANKING_GRADES for g in grades)
    ):
        raise AppError(
            "invalid_ranking",
            _(
                "Give one grade between each pair of neighbours, one of %(grades)s.",
                grades=", ".join(RANKING_GRADES),
            ),
            422,
        )
    return order


def submit_task(
    db: Session,
    user: User,
    task_id: int,
    submission: Submission,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> SubmitOutcome:
    """Hand in a task. Submitting a finished task again with the same content returns its
    stored outcome; with other content it is refused (the first submission stands)."""
    settings = get_settings()
    now = now or utcnow()
    task = own_task(db, user, task_id)
    if task.state == TaskState.done:
        stored = task.result or {}
        fingerprint = stored.get(FINGERPRINT_KEY)
        if fingerprint is not None and fingerprint != submission.fingerprint():
            raise AppError(
                "replay_differs",
                _(
                    "This task was already submitted with different content; the first "
                    "submission stands. Your text is returned so you can keep it."
                ),
                409,
                details={"submission": submission.echo()},
            )
        return SubmitOutcome.replay_of(stored)
    if task.state == TaskState.skipped:
        raise AppError("task_skipped", _("You skipped this task; it cannot be submitted."), 409)

    if task.kind == TaskKind.write_prompt:
        result = _submit_prompt(db, user, task, submission, settings, now)
    else:
        result = _submit_on_target(db, user, task, submission, settings, now, rng)
    task.result = result.stored(submission)
    db.flush()
    return result


def _mark_done(task: Task, now: datetime) -> None:
    """Once the submission is valid, before its rows are written: the task's changes go out
    in the first flush; only the result (which needs the new rows' ids) follows."""
    task.state = TaskState.done
    task.finished_at = now
    task.draft = None


def plant_prompt(
    db: Session,
    author_id: int,
    language: str,
    text: str,
    settings: Settings,
    *,
    category: str | None = None,
    context: str | None = None,
) -> tuple[Tree, Message]:
    """A new tree in prompt review, its parameters copied from settings, with `text` (already
    validated and normalised) as its root prompt, open for review."""
    tree = Tree(
        author_id=author_id,
        state=TreeState.prompt_review,
        language=language,
        category=category,
        **tree_parameters(settings),
        accepted_count=0,
        pending_count=1,
        reply_lease_count=0,
        open_ranking_sets=0,
    )
    db.add(tree)
    db.flush()
    root = new_message(
        tree=tree, parent=None, author_id=author_id, role=MessageRole.prompter, text=text
    )
    root.category = category
    root.context = context
    db.add(root)
    db.flush()
    tree.root_message_id = root.id
    refresh_open_flags(root, tree, settings)
    db.flush()
    return tree, root


def _submit_prompt(
    db: Session,
    user: User,
    task: Task,
    submission: Submission,
    settings: Settings,
    now: datetime,
) -> SubmitOutcome:
    text = validated_text(db, submission.text, settings)
    category = submission.category or None
    if category is not None and category not in PROMPT_CATEGORIES:
        raise AppError(
            "invalid_category",
            _(
                "Unknown category “%(category)s”; use one of %(categories)s.",
                category=category,
                categories=", ".join(PROMPT_CATEGORIES),
            ),
            422,
        )
    context = None
    if submission.context and submission.context.strip():
        if category not in CATEGORIES_WITH_CONTEXT:
            raise AppError(
                "context_not_allowed",
                _(
                    "A context passage belongs only to closed QA, information extraction and "
                    "summarization prompts."
                ),
                422,
            )
        context = normalize_text(submission.context, settings.max_text_length, field="context")
    _mark_done(task, now)
    tree, root = plant_prompt(
        db, user.id, task.language, text, settings, category=category, context=context
    )
    return SubmitOutcome(tree_id=tree.id, message_id=root.id)


def _submit_on_target(
    db: Session,
    user: User,
    task: Task,
    submission: Submission,
    settings: Settings,
    now: datetime,
    rng: random.Random | None,
) -> SubmitOutcome:
    assert task.target_message_id is not None
    tree_id, parent_id = tree_and_parent_of(db, task.target_message_id)
    tree = lock_tree(db, tree_id)
    wanted = [task.target_message_id]
    if task.kind in REVIEW_KINDS and parent_id is not None:
        wanted.append(parent_id)  # a review decision changes the parent's counters
    locked = lock_messages(db, wanted)
    target = locked[task.target_message_id]
    if not _tree_accepts(task.kind, target, tree, settings):
        raise AppError(
            "tree_not_accepting",
            _(
                "This conversation no longer takes this kind of work (it was halted, deleted or "
                "finished meanwhile). Skip the task to get another one."
            ),
            409,
            details={"submission": submission.echo()},
        )

    # Validate before taking anything.
    text: str | None = None
    values: dict[str, float] | None = None
    order: list[int] = []
    if task.kind in REPLY_ROLE_FOR_KIND:
        text = validated_text(db, submission.text, settings)
    elif task.kind in REVIEW_KINDS:
        if submission.labels is None:
            raise AppError("invalid_labels", _("A review needs its labels."), 422)
        values = validate_label_values(submission.labels, target.role, submission.mode)
    else:
        order = _validated_ranking(submission, accepted_children(db, target.id))

    if not task.holds_slot:
        # The lease expired and its slot went back. A volunteer's work is never thrown away
        # while there is room: take a slot again; otherwise say so and give the text back.
        if not slot_is_free(task.kind, target, tree, settings):
            raise AppError(
                "lease_expired_slot_taken",
                _(
                    "Your task expired and its place was taken by someone else. Your text is "
                    "returned so you can keep it."
                ),
                409,
                details={"text": submission.text, "submission": submission.echo()},
            )
        take_slot(task, target, tree, settings)
    release_slot(task, target, tree, settings)
    _mark_done(task, now)

    if text is not None:
        return _create_reply(db, user, task, target, tree, text, settings)
    if values is not None:
        return _create_review(
            db,
            user,
            task,
            target,
            locked.get(parent_id) if parent_id is not None else None,
            tree,
            values,
            submission,
            now,
            rng,
        )
    return _create_ranking(db, user, task, target, tree, order, submission, now)


def _create_reply(
    db: Session,
    user: User,
    task: Task,
    parent: Message,
    tree: Tree,
    text: str,
    settings: Settings,
) -> SubmitOutcome:
    reply = new_message(
        tree=tree,
        parent=parent,
        author_id=user.id,
        role=REPLY_ROLE_FOR_KIND[TaskKind(task.kind)],
        text=text,
    )
    db.add(reply)
    parent.child_count += 1
    tree.pending_count += 1
    # Flags before the flush: their changes go out in the same INSERT and UPDATE.
    refresh_open_flags(reply, tree, settings)
    refresh_open_flags(parent, tree, settings)
    db.flush()
    return SubmitOutcome(tree_id=tree.id, message_id=reply.id)


def _create_review(
    db: Session,
    user: User,
    task: Task,
    target: Message,
    parent: Message | None,
    tree: Tree,
    values: dict[str, float],
    submission: Submission,
    now: datetime,
    rng: random.Random | None,
) -> SubmitOutcome:
    label = Label(
        message_id=target.id,
        user_id=user.id,
        task_id=task.id,
        values=values,
        mode=submission.mode,
        guideline_version=GUIDELINE_VERSION,
        before_edit=False,
    )
    db.add(label)
    target.review_count += 1
    refresh_open_flags(target, tree)
    db.flush()
    maybe_decide_review(db, target, parent, tree, now=now, rng=rng)
    return SubmitOutcome(tree_id=tree.id, message_id=target.id, label_id=label.id)


def _create_ranking(
    db: Session,
    user: User,
    task: Task,
    parent: Message,
    tree: Tree,
    order: list[int],
    submission: Submission,
    now: datetime,
) -> SubmitOutcome:
    ranking = Ranking(
        parent_message_id=parent.id,
        user_id=user.id,
        task_id=task.id,
        ordered_message_ids=order,
        not_rankable=submission.not_rankable,
        grades=submission.grades if order else None,
        before_edit=False,
    )
    db.add(ranking)
    parent.ranking_count += 1
    refresh_open_flags(parent, tree)
    db.flush()
    maybe_settle_sibling_set(db, parent, tree, now=now)
    return SubmitOutcome(tree_id=tree.id, message_id=parent.id, ranking_id=ranking.id)
