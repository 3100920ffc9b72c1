"""Handing out tasks: one at a time per volunteer, from the open-work indexes.

No lottery draw, statistics or moderation runs here: a task request reads the small
partial indexes, locks one row with SKIP LOCKED, takes its slot and returns.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy.orm import Session

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError
from hedgerow.growth.flags import refresh_open_flags, slot_is_free, take_slot
from hedgerow.growth.labels import ReviewMode, labels_for
from hedgerow.growth.leases import expire_task, lease_deadline, utcnow
from hedgerow.growth.queries import (
    HANDOUT_LOCK_NAMESPACE,
    accepted_children,
    advisory_xact_lock,
    conversation_path,
    count_candidates,
    count_trees_awaiting_growth,
    live_leased_task,
    lock_task,
    pick_candidate,
)
from hedgerow.growth.schemas import (
    PROMPT_CATEGORIES,
    RANKING_KINDS,
    REPLY_KINDS,
    REVIEW_KINDS,
    ConversationMessage,
    TaskView,
)
from hedgerow.i18n import gettext as _
from hedgerow.models import Message, Task, TaskKind, TaskState, User

# How often each family of work is chosen when a volunteer asks for "any" task, among
# the families that have work for them: finishing trees (ranking, review) comes first,
# new prompts are rare because the lottery already has plenty waiting.
FAMILY_WEIGHTS = {"ranking": 10.0, "review": 5.0, "reply": 2.0, "prompt": 0.01}
# Counting beyond this tells a volunteer nothing more and would cost more.
AVAILABLE_COUNT_CAP = 1000
# A candidate whose flag turns out stale is healed and the next one tried, a few times.
PICK_ATTEMPTS = 3

_default_rng = random.Random()


def family_of(kind: str) -> str:
    if kind in RANKING_KINDS:
        return "ranking"
    if kind in REVIEW_KINDS:
        return "review"
    if kind in REPLY_KINDS:
        return "reply"
    return "prompt"


def offered_kinds(settings: Settings) -> list[TaskKind]:
    kinds = list(TaskKind)
    if not settings.rank_prompter_replies:
        kinds.remove(TaskKind.rank_prompter_replies)
    return kinds


def _check_language(language: str, settings: Settings) -> None:
    if language not in settings.languages:
        raise AppError(
            "invalid_language",
            _(
                "Unknown language “%(language)s”; use one of %(languages)s.",
                language=language,
                languages=", ".join(settings.languages),
            ),
            422,
        )


def prompts_wanted(db: Session, language: str, settings: Settings) -> bool:
    limit = settings.waiting_prompts_per_language
    return count_trees_awaiting_growth(db, language, cap=limit) < limit


def available_task_counts(db: Session, user: User, language: str) -> dict[str, int]:
    """Items of work per kind that this user could be handed in `language`."""
    settings = get_settings()
    _check_language(language, settings)
    counts: dict[str, int] = {}
    for kind in offered_kinds(settings):
        if kind == TaskKind.write_prompt:
            counts[kind.value] = 1 if prompts_wanted(db, language, settings) else 0
        else:
            counts[kind.value] = count_candidates(
                db, user.id, language, kind, cap=AVAILABLE_COUNT_CAP
            )
    return counts


def kind_order(settings: Settings, rng: random.Random) -> list[TaskKind]:
    """Every offered kind, in the order to try them for an "any" request.

    Families are drawn by weight without replacement and each family's kinds shuffled, so
    the first kind in this order that has work for the user is drawn exactly as if we had
    first found every kind with work and then drawn a family by weight among those and a
    kind uniformly within it, without spending a query per kind to find out.
    """
    families = list(FAMILY_WEIGHTS)
    ordered: list[TaskKind] = []
    while families:
        family = rng.choices(families, weights=[FAMILY_WEIGHTS[f] for f in families])[0]
        families.remove(family)
        members = [kind for kind in offered_kinds(settings) if family_of(kind) == family]
        rng.shuffle(members)
        ordered += members
    return ordered


def request_task(
    db: Session,
    user: User,
    *,
    language: str,
    kind: str = "any",
    review_mode: ReviewMode = "full",
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> TaskView:
    """The user's current task if they hold a live one (``resumed``), else a new one."""
    settings = get_settings()
    rng = rng or _default_rng
    now = now or utcnow()
    _check_language(language, settings)
    if kind != "any" and kind not in {k.value for k in offered_kinds(settings)}:
        raise AppError(
            "invalid_kind",
            _(
                "Unknown task kind “%(kind)s”; use any or one of %(kinds)s.",
                kind=kind,
                kinds=", ".join(k.value for k in offered_kinds(settings)),
            ),
            422,
        )
    # Two requests of the same user at once must not both lease a task.
    advisory_xact_lock(db, HANDOUT_LOCK_NAMESPACE, user.id)
    current = live_leased_task(db, user.id)
    if current is not None:
        if current.lease_expires_at > now:
            return task_view(db, current, user, resumed=True, review_mode=review_mode)
        expire_task(db, current, now=now, rng=rng)

    kinds = kind_order(settings, rng) if kind == "any" else [TaskKind(kind)]
    for candidate_kind in kinds:
        task = _lease(db, user, candidate_kind, language, now, settings, rng)
        if task is not None:
            return task_view(db, task, user, resumed=False, review_mode=review_mode)
    raise AppError(
        "no_task_available",
        _("There is no task of that kind for you right now. Try another kind or come back later."),
        404,
    )


def _lease(
    db: Session,
    user: User,
    kind: TaskKind,
    language: str,
    now: datetime,
    settings: Settings,
    rng: random.Random,
) -> Task | None:
    if kind == TaskKind.write_prompt:
        if not prompts_wanted(db, language, settings):
            return None
        task = Task(
            user_id=user.id,
            kind=kind,
            language=language,
            state=TaskState.leased,
            holds_slot=False,
            lease_expires_at=lease_deadline(now),
        )
        db.add(task)
        db.flush()
        return task

    # A reply task goes to a parent whose sibling set has one reply with the probability
    # its tree prefers them (one draw per request), so that more sets become rankable.
    lonely_draw = rng.random() if kind in REPLY_KINDS else None
    for _attempt in range(PICK_ATTEMPTS):
        picked = None
        if lonely_draw is not None:
            picked = pick_candidate(db, user.id, language, kind, lonely_draw=lonely_draw)
        if picked is None:
            picked = pick_candidate(db, user.id, language, kind)
        if picked is None:
            return None
        target, tree, expired_task_id = picked
        target_id = target.id
        if not slot_is_free(kind, target, tree, settings):
            refresh_open_flags(target, tree, settings)  # heal a stale flag, try the next
            db.flush()
            continue
        # Only an expired task can exist here (the candidate query excludes the others):
        # the volunteer gets the item again, in the same row.
        expired = None if expired_task_id is None else lock_task(db, expired_task_id)
        leased = expired or Task(
            user_id=user.id, kind=kind, language=language, target_message_id=target_id
        )
        db.add(leased)
        leased.state = TaskState.leased
        leased.lease_expires_at = lease_deadline(now)
        leased.finished_at = None
        leased.holds_slot = False
        take_slot(leased, target, tree, settings)
        db.flush()
        return leased
    return None


def _conversation_message(message: Message, user: User) -> ConversationMessage:
    return ConversationMessage(
        id=message.id,
        role=message.role,
        text=message.text,
        depth=message.depth,
        by_you=message.author_id == user.id,
    )


def task_view(
    db: Session, task: Task, user: User, *, resumed: bool, review_mode: ReviewMode = "full"
) -> TaskView:
    view = TaskView(
        id=task.id,
        kind=task.kind,
        language=task.language,
        state=task.state,
        lease_expires_at=task.lease_expires_at,
        resumed=resumed,
        target_message_id=task.target_message_id,
        draft=task.draft,
    )
    if task.target_message_id is None:
        view.categories = PROMPT_CATEGORIES
        return view
    path = conversation_path(db, task.target_message_id)
    view.conversation = [_conversation_message(m, user) for m in path]
    if task.kind in REVIEW_KINDS:
        view.review_mode = review_mode
        view.labels = labels_for(path[-1].role, review_mode)
    elif task.kind in RANKING_KINDS:
        replies = accepted_children(db, task.target_message_id)
        # A fixed shuffle per task: rankers do not all see the first reply first.
        random.Random(task.id).shuffle(replies)
        view.replies = [_conversation_message(m, user) for m in replies]
    return view
