"""The growth engine's SQL.

Hand-out queries start from the partial indexes on the open-work flags (a few hundred rows
per language however large the corpus) and exclude the user's own items with anti-joins
on indexed columns (task's unique (user_id, target_message_id, kind), message.parent_id).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Row,
    Select,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from hedgerow.errors import NotFound
from hedgerow.i18n import gettext as _
from hedgerow.models import (
    AuditEvent,
    Label,
    Message,
    MessageRole,
    Ranking,
    Reaction,
    ReactionKind,
    Report,
    ReportReason,
    Task,
    TaskKind,
    TaskState,
    Tree,
    TreeState,
    VolunteerReliability,
)

# The note on the report a red flag becomes when it does not count toward deletion.
FLAG_REPORT_TEXT = "Red-flagged as harmful."

# Advisory lock namespaces (the two-int form of pg_advisory_xact_lock).
LOTTERY_LOCK_NAMESPACE = 8101
HANDOUT_LOCK_NAMESPACE = 8102


def advisory_xact_lock(db: Session, namespace: int, key: int) -> None:
    db.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
        {"namespace": namespace, "key": key & 0x7FFFFFFF},
    )


def language_lock_key(language: str) -> int:
    return zlib.crc32(language.encode())


# --- locks (order everywhere: task, then tree, then messages by ascending id) ----------


def lock_task(db: Session, task_id: int) -> Task | None:
    return db.scalar(
        select(Task)
        .where(Task.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def lock_tree(db: Session, tree_id: int) -> Tree:
    tree = db.scalar(
        select(Tree)
        .where(Tree.id == tree_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert tree is not None, f"tree {tree_id} vanished"
    return tree


def lock_messages(db: Session, message_ids: Sequence[int]) -> dict[int, Message]:
    rows = db.scalars(
        select(Message)
        .where(Message.id.in_(message_ids))
        .order_by(Message.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {message.id: message for message in rows}


def lock_message_in_tree(db: Session, message_id: int) -> tuple[Tree, Message, Message | None]:
    """Lock a message's tree, then its parent and the message (the lock order everywhere);
    returns (tree, message, parent). NotFound when there is no such message."""
    row = db.execute(
        select(Message.tree_id, Message.parent_id).where(Message.id == message_id)
    ).first()
    if row is None:
        raise NotFound(_("That message does not exist."))
    tree = lock_tree(db, row.tree_id)
    # Parent before child: messages are always locked in ascending id order.
    locked = lock_messages(db, [m for m in (row.parent_id, message_id) if m is not None])
    parent = locked[row.parent_id] if row.parent_id is not None else None
    return tree, locked[message_id], parent


def lock_message(db: Session, message_id: int) -> Message:
    message = lock_messages(db, [message_id]).get(message_id)
    assert message is not None, f"message {message_id} vanished"
    return message


# --- hand-out candidates --------------------------------------------------------------


# The hand-out's statements are built once per kind with bound parameters: building a
# SELECT with its anti-joins costs more Python time than PostgreSQL needs to run it.
USER_ID = bindparam("user_id", type_=BigInteger)
LANGUAGE = bindparam("language", type_=String)


def _no_live_task(kind: str) -> ColumnElement[bool]:
    """Not an item the user already has a task for, unless that task expired."""
    return ~exists().where(
        Task.user_id == USER_ID,
        Task.target_message_id == Message.id,
        Task.kind == kind,
        Task.state != TaskState.expired,
    )


def candidate_query(kind: str) -> Select[int]:
    """Message ids open for `kind` that the user (bound as :user_id) may take in
    :language."""
    base = (
        select(Message.id)
        .join(Tree, Tree.id == Message.tree_id)
        .where(
            Message.language == LANGUAGE,
            Message.author_id != USER_ID,
            _no_live_task(kind),
        )
    )
    if kind == TaskKind.review_prompt:
        query = base.where(Message.open_for_review, Message.depth == 0)
    elif kind == TaskKind.review_prompter_reply:
        query = base.where(
            Message.open_for_review, Message.role == MessageRole.prompter, Message.depth > 0
        )
    elif kind == TaskKind.review_assistant_reply:
        query = base.where(Message.open_for_review, Message.role == MessageRole.assistant)
    elif kind in (TaskKind.reply_assistant, TaskKind.reply_prompter):
        parent_role = (
            MessageRole.prompter if kind == TaskKind.reply_assistant else MessageRole.assistant
        )
        query = base.where(
            Message.open_for_reply,
            Message.role == parent_role,
            Tree.accepted_count + Tree.pending_count + Tree.reply_lease_count < Tree.goal_size,
        )
    elif kind in (TaskKind.rank_assistant_replies, TaskKind.rank_prompter_replies):
        parent_role = (
            MessageRole.prompter
            if kind == TaskKind.rank_assistant_replies
            else MessageRole.assistant
        )
        child = aliased(Message)
        query = base.where(
            Message.open_for_ranking,
            Message.role == parent_role,
            # Nobody ranks a sibling set that contains their own reply.
            ~exists().where(and_(child.parent_id == Message.id, child.author_id == USER_ID)),
        )
    else:
        raise ValueError(f"{kind} has no target message")
    return query


LONELY_DRAW = bindparam("lonely_draw", type_=Float)


@cache
def pick_statement(kind: str, lonely: bool = False) -> Select[Message, Tree, int | None]:
    """The best candidate with its tree, locked; rows another transaction holds are
    skipped. Loading both here saves two round trips per hand-out, and so does the id of
    the user's expired task on it, if any (rare: usually NULL).

    Best: for rankings, the sibling set whose consensus is least sure (unranked sets
    first); otherwise the tree closest to completion. `lonely` (reply kinds) keeps only
    parents whose sibling set has exactly one reply, in trees whose lonely-sibling
    preference exceeds the bound :lonely_draw (uniform in [0, 1)), so that such a parent
    is preferred with the tree's probability."""
    candidates = candidate_query(kind)
    if lonely:
        candidates = candidates.where(
            Message.child_count + Message.reply_lease_count == 1,
            Tree.lonely_sibling_preference > LONELY_DRAW,
        )
    if kind in (TaskKind.rank_assistant_replies, TaskKind.rank_prompter_replies):
        ids = candidates.order_by(
            func.coalesce(Message.ranking_confidence, 0.0), Tree.accepted_count.desc(), Message.id
        )
    else:
        ids = candidates.order_by(Tree.accepted_count.desc(), Tree.id, Message.id)
    expired_task_id = (
        select(Task.id)
        .where(
            Task.user_id == USER_ID,
            Task.target_message_id == Message.id,
            Task.kind == kind,
        )
        .scalar_subquery()
    )
    query = ids.with_only_columns(Message, Tree, expired_task_id).execution_options(
        populate_existing=True
    )
    if kind in (TaskKind.reply_assistant, TaskKind.reply_prompter):
        # A reply lease also changes the tree's counters: lock both, skipping either.
        query = query.with_for_update(of=[Message, Tree], skip_locked=True)
    else:
        query = query.with_for_update(of=Message, skip_locked=True)
    return query.limit(1)


@cache
def count_statement(kind: str, cap: int) -> Select[int]:
    limited = candidate_query(kind).limit(cap).subquery()
    return select(func.count()).select_from(limited)


def pick_candidate(
    db: Session, user_id: int, language: str, kind: str, lonely_draw: float | None = None
) -> tuple[Message, Tree, int | None] | None:
    """Lock and return the best candidate for this user, with its tree and the id of the
    user's expired task on it (the only kind of task the candidates may have). With
    `lonely_draw`, only a lonely parent that its tree's preference lets through."""
    params: dict[str, Any] = {"user_id": user_id, "language": language}
    statement = pick_statement(kind)
    if lonely_draw is not None:
        statement = pick_statement(kind, lonely=True)
        params["lonely_draw"] = lonely_draw
    row = db.execute(statement, params).first()
    return None if row is None else (row[0], row[1], row[2])


def count_candidates(db: Session, user_id: int, language: str, kind: str, cap: int) -> int:
    statement = count_statement(kind, cap)
    return db.scalar(statement, {"user_id": user_id, "language": language}) or 0


def count_trees_awaiting_growth(db: Session, language: str, cap: int) -> int:
    """Prompts under review or waiting in the lottery, counted up to `cap`."""
    limited = (
        select(Tree.id)
        .where(
            Tree.state.in_([TreeState.prompt_review, TreeState.lottery_waiting]),
            Tree.language == language,
        )
        .limit(cap)
        .subquery()
    )
    return db.scalar(select(func.count()).select_from(limited)) or 0


def live_leased_task(db: Session, user_id: int) -> Task | None:
    return db.scalar(
        select(Task)
        .where(Task.user_id == user_id, Task.state == TaskState.leased)
        .order_by(Task.id)
        .limit(1)
        .with_for_update()
    )


# --- tree shape ---------------------------------------------------------------------


MESSAGE_ID = bindparam("message_id", type_=BigInteger)


@cache
def conversation_path_statement() -> Select[Message]:
    """Built once: constructing the recursive CTE costs more Python time per request than
    PostgreSQL needs to walk it."""
    path = (
        select(Message.id, Message.parent_id)
        .where(Message.id == MESSAGE_ID)
        .cte("path", recursive=True)
    )
    path = path.union_all(
        select(Message.id, Message.parent_id).join(path, Message.id == path.c.parent_id)
    )
    return select(Message).where(Message.id.in_(select(path.c.id))).order_by(Message.depth)


def conversation_path(db: Session, message_id: int) -> list[Message]:
    """The messages from the root down to `message_id`, root first."""
    return list(db.scalars(conversation_path_statement(), {"message_id": message_id}))


def subtree_ids(db: Session, message_id: int) -> list[int]:
    """`message_id` and every message below it (walks message.parent_id's index)."""
    below = select(Message.id).where(Message.id == message_id).cte("below", recursive=True)
    below = below.union_all(select(Message.id).join(below, Message.parent_id == below.c.id))
    return list(db.scalars(select(below.c.id)))


def live_subtree_size(db: Session, message_ids: Iterable[int]) -> int:
    """How many messages deleting `message_ids` would delete: each one and the messages
    below it that are not deleted yet, each counted once however the subtrees overlap.
    Below a deleted message everything is deleted, so the walk stops there; a deleted or
    missing message counts 0."""
    below = (
        select(Message.id)
        .where(Message.id.in_(list(message_ids)), ~Message.deleted)
        .cte("live_below", recursive=True)
    )
    below = below.union_all(
        select(Message.id).join(below, Message.parent_id == below.c.id).where(~Message.deleted)
    )
    return db.scalar(select(func.count(func.distinct(below.c.id)))) or 0


def accepted_children(db: Session, parent_id: int) -> list[Message]:
    return list(
        db.scalars(
            select(Message)
            .where(
                Message.parent_id == parent_id,
                Message.review_state == "accepted",
                ~Message.deleted,
            )
            .order_by(Message.id)
        )
    )


def clear_open_work(db: Session, tree_id: int) -> None:
    """A tree that stops growing or ranking offers no more work of any kind."""
    db.execute(
        update(Message)
        .where(
            Message.tree_id == tree_id,
            Message.open_for_review | Message.open_for_reply | Message.open_for_ranking,
        )
        .values(open_for_review=False, open_for_reply=False, open_for_ranking=False)
    )


# --- rows the engine reads or changes in bulk ------------------------------------------


def tree_id_of_message(db: Session, message_id: int) -> int | None:
    return db.scalar(select(Message.tree_id).where(Message.id == message_id))


def tree_ids_of_messages(db: Session, message_ids: Sequence[int]) -> dict[int, int]:
    rows = db.execute(select(Message.id, Message.tree_id).where(Message.id.in_(message_ids)))
    return {row.id: row.tree_id for row in rows}


def tree_and_parent_of(db: Session, message_id: int) -> tuple[int, int | None]:
    row = db.execute(
        select(Message.tree_id, Message.parent_id).where(Message.id == message_id)
    ).one()
    return row.tree_id, row.parent_id


def other_leased_task_id(db: Session, user_id: int, task_id: int) -> int | None:
    """A live lease of the user's other than `task_id` (task's (user_id, state) index)."""
    return db.scalar(
        select(Task.id).where(
            Task.user_id == user_id, Task.state == TaskState.leased, Task.id != task_id
        )
    )


def lock_leased_tasks_of_user(db: Session, user_id: int) -> Sequence[Task]:
    return db.scalars(
        select(Task)
        .where(Task.user_id == user_id, Task.state == TaskState.leased)
        .order_by(Task.id)
        .with_for_update()
    ).all()


def lock_overdue_tasks(db: Session, now: datetime, limit: int) -> Sequence[Task]:
    """Overdue leases, oldest first; tasks another transaction holds are skipped."""
    return db.scalars(
        select(Task)
        .where(Task.state == TaskState.leased, Task.lease_expires_at <= now)
        .order_by(Task.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def current_review_votes(
    db: Session, message_id: int
) -> list[tuple[dict[str, Any], int, int, int]]:
    """(label values, reviewer id, reviews of theirs settled, of which agreed) for each
    review given to the message's current text (label's message_id index, then
    volunteer_reliability's primary key)."""
    rows = db.execute(
        select(
            Label.values,
            Label.user_id,
            func.coalesce(VolunteerReliability.reviews_settled, 0),
            func.coalesce(VolunteerReliability.reviews_agreed, 0),
        )
        .outerjoin(VolunteerReliability, VolunteerReliability.user_id == Label.user_id)
        .where(Label.message_id == message_id, ~Label.before_edit)
        .order_by(Label.id)
    ).all()
    return [(values, user_id, settled, agreed) for values, user_id, settled, agreed in rows]


def volunteer_record_row(db: Session, user_id: int) -> tuple[int, int, int, int]:
    """(reviews settled, agreed, messages decided, accepted) of a volunteer (primary key)."""
    row = db.execute(
        select(
            VolunteerReliability.reviews_settled,
            VolunteerReliability.reviews_agreed,
            VolunteerReliability.messages_decided,
            VolunteerReliability.messages_accepted,
        ).where(VolunteerReliability.user_id == user_id)
    ).first()
    return (row[0], row[1], row[2], row[3]) if row is not None else (0, 0, 0, 0)


def review_reliability_expression(prior: float, prior_weight: float) -> ColumnElement[float]:
    """The reviewer reliability estimate (redundancy.reliability) as SQL over
    volunteer_reliability, for ordering users by it; a user without a row is at the prior
    (outer-join the table)."""
    settled = func.coalesce(VolunteerReliability.reviews_settled, 0)
    agreed = func.coalesce(VolunteerReliability.reviews_agreed, 0)
    estimate = (agreed + prior * prior_weight) / (settled + prior_weight)
    return cast(estimate, Float)


def author_record(db: Session, author_id: int) -> tuple[int, int]:
    """(messages decided, of which accepted) of an author (primary key)."""
    row = db.execute(
        select(VolunteerReliability.messages_decided, VolunteerReliability.messages_accepted).where(
            VolunteerReliability.user_id == author_id
        )
    ).first()
    return (row[0], row[1]) if row is not None else (0, 0)


def record_decision(
    db: Session, reviews: Sequence[tuple[int, bool]], author_id: int, accepted: bool
) -> None:
    """Add a decided message to its author's record and one settled review per
    (reviewer, agreed with the decision) to theirs. Rows are upserted in ascending user id,
    so two decisions never wait on each other in a cycle."""
    counts: dict[int, list[int]] = {}
    for user_id, agrees in reviews:
        row = counts.setdefault(user_id, [0, 0, 0, 0])
        row[0] += 1
        row[1] += int(agrees)
    author = counts.setdefault(author_id, [0, 0, 0, 0])
    author[2] += 1
    author[3] += int(accepted)
    rows = [
        {
            "user_id": user_id,
            "reviews_settled": row[0],
            "reviews_agreed": row[1],
            "messages_decided": row[2],
            "messages_accepted": row[3],
        }
        for user_id, row in sorted(counts.items())
    ]
    statement = insert(VolunteerReliability).values(rows)
    added = statement.excluded
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[VolunteerReliability.user_id],
            set_={
                "reviews_settled": VolunteerReliability.reviews_settled + added.reviews_settled,
                "reviews_agreed": VolunteerReliability.reviews_agreed + added.reviews_agreed,
                "messages_decided": VolunteerReliability.messages_decided + added.messages_decided,
                "messages_accepted": (
                    VolunteerReliability.messages_accepted + added.messages_accepted
                ),
                "updated_at": func.now(),
            },
        )
    )


def current_ranking_orders(db: Session, parent_id: int) -> Sequence[list[int]]:
    """The orders of a sibling set's rankings given to its current texts (best first)."""
    return db.scalars(
        select(Ranking.ordered_message_ids).where(
            Ranking.parent_message_id == parent_id,
            ~Ranking.not_rankable,
            ~Ranking.before_edit,
        )
    ).all()


def close_replies(db: Session, tree_id: int) -> None:
    db.execute(
        update(Message)
        .where(Message.tree_id == tree_id, Message.open_for_reply)
        .values(open_for_reply=False)
        .execution_options(synchronize_session="fetch")
    )


def open_sibling_sets_for_ranking(db: Session, tree_id: int, parent_roles: Sequence[str]) -> int:
    """Open every rankable sibling set of the tree that is not settled; returns how many
    were opened."""
    opened = db.scalars(
        update(Message)
        .where(
            Message.tree_id == tree_id,
            ~Message.deleted,
            Message.accepted_child_count >= 2,
            Message.role.in_(parent_roles),
            ~Message.ranking_settled,
        )
        .values(open_for_ranking=True)
        .returning(Message.id)
        .execution_options(synchronize_session="fetch")
    ).all()
    return len(opened)


# --- moderation's effects on the tree ---------------------------------------------------


def insert_red_flag(db: Session, message_id: int, user_id: int) -> bool:
    """One red flag per user and message; False when this user had flagged it already."""
    inserted = db.scalar(
        insert(Reaction)
        .values(message_id=message_id, user_id=user_id, kind=ReactionKind.red_flag)
        .on_conflict_do_nothing()
        .returning(Reaction.id)
    )
    return inserted is not None


def insert_flag_report(db: Session, message_id: int, user_id: int) -> bool:
    """A red flag that does not count toward deletion, filed as a report for the
    moderators' queue; False when this user had reported the message already."""
    inserted = db.scalar(
        insert(Report)
        .values(
            message_id=message_id,
            reporter_id=user_id,
            reason=ReportReason.offensive,
            text=FLAG_REPORT_TEXT,
        )
        .on_conflict_do_nothing(index_elements=[Report.message_id, Report.reporter_id])
        .returning(Report.id)
    )
    return inserted is not None


def live_slot_leases(db: Session, message_ids: Sequence[int]) -> list[tuple[int | None, str, int]]:
    """(target id, task kind, count) of leased tasks that hold a slot on these messages."""
    rows = db.execute(
        select(Task.target_message_id, Task.kind, func.count())
        .where(
            Task.target_message_id.in_(message_ids),
            Task.state == TaskState.leased,
            Task.holds_slot,
        )
        .group_by(Task.target_message_id, Task.kind)
    ).all()
    return [(target_id, kind, count) for target_id, kind, count in rows]


def latest_deletion_event(db: Session, deletion_id: int) -> AuditEvent | None:
    return db.scalar(
        select(AuditEvent)
        .where(
            AuditEvent.action == "message.delete_subtree",
            AuditEvent.target_type == "message",
            AuditEvent.target_id == deletion_id,
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def rankings_begun_in_tree(db: Session, tree_id: int) -> bool:
    """Whether any sibling set of the tree has a ranking given, or a ranking lease."""
    given_or_leased = db.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.tree_id == tree_id,
            (Message.ranking_count > 0) | (Message.ranking_lease_count > 0),
        )
    )
    held = db.scalar(
        select(func.count())
        .select_from(Task)
        .where(
            Task.target_message_id.in_(select(Message.id).where(Message.tree_id == tree_id)),
            Task.state == TaskState.leased,
            Task.holds_slot,
            Task.kind.in_([TaskKind.rank_assistant_replies, TaskKind.rank_prompter_replies]),
        )
    )
    return bool(given_or_leased or held)


def lock_live_tree_messages(db: Session, tree_id: int) -> Sequence[Message]:
    return db.scalars(
        select(Message)
        .where(Message.tree_id == tree_id, ~Message.deleted)
        .order_by(Message.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def deleted_subtree_row(
    db: Session, message_id: int
) -> Row[int, int | None, bool, int | None] | None:
    """tree_id, parent_id, deleted and deletion_id of a message, or None."""
    return db.execute(
        select(Message.tree_id, Message.parent_id, Message.deleted, Message.deletion_id).where(
            Message.id == message_id
        )
    ).first()


def message_ids_of_deletion(db: Session, tree_id: int, deletion_id: int) -> list[int]:
    return list(
        db.scalars(
            select(Message.id).where(Message.tree_id == tree_id, Message.deletion_id == deletion_id)
        )
    )


def mark_labels_before_edit(db: Session, message_id: int) -> int:
    """The labels given so far judged other words: they stop counting; returns how many."""
    return len(
        db.execute(
            update(Label)
            .where(Label.message_id == message_id, ~Label.before_edit)
            .values(before_edit=True)
            .returning(Label.id)
        ).all()
    )


def mark_rankings_before_edit(db: Session, parent_id: int) -> int:
    """The sibling set's rankings so far compared other words; returns how many."""
    return len(
        db.execute(
            update(Ranking)
            .where(Ranking.parent_message_id == parent_id, ~Ranking.before_edit)
            .values(before_edit=True)
            .returning(Ranking.id)
        ).all()
    )
