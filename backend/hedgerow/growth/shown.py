"""Whether a volunteer was shown a message: what makes their red flag count.

Nothing is written on the task hand-out's hot path; the evidence is derived from rows
that exist anyway, plus one small row per tree viewer visit:

- a task of theirs showed it: every task shows the conversation from the root to its
  target, so any task on the message or on a message below it (the target is in the
  message's subtree) showed it, and a ranking task shows its target's replies, so a
  ranking of the message's parent showed it too. Read through the task table's unique
  (user_id, target_message_id, kind) index and the message parent index; a subtree is at
  most a tree's goal size.
- the tree viewer showed it: `tree_visit` holds, per user and tree, the newest message id
  the viewer showed them (written only when it grows, see `record_tree_visit`).

Chats show model answers, not tree messages, so they give no evidence here.
"""

from __future__ import annotations

from sqlalchemy import exists, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hedgerow.models import Message, Task, TaskKind, TreeVisit

RANKING_KINDS = (TaskKind.rank_assistant_replies, TaskKind.rank_prompter_replies)


def message_was_shown_to(db: Session, user_id: int, message: Message) -> bool:
    subtree = select(Message.id).where(Message.id == message.id).cte("subtree", recursive=True)
    subtree = subtree.union_all(select(Message.id).where(Message.parent_id == subtree.c.id))
    in_a_task_below = exists().where(
        Task.user_id == user_id, Task.target_message_id.in_(select(subtree.c.id))
    )
    conditions = [in_a_task_below]
    if message.parent_id is not None:
        conditions.append(
            exists().where(
                Task.user_id == user_id,
                Task.target_message_id == message.parent_id,
                Task.kind.in_(RANKING_KINDS),
            )
        )
    conditions.append(
        exists().where(
            TreeVisit.user_id == user_id,
            TreeVisit.tree_id == message.tree_id,
            TreeVisit.newest_message_id >= message.id,
        )
    )
    return bool(db.scalar(select(or_(*conditions))))


def record_tree_visit(db: Session, user_id: int, tree_id: int, newest_message_id: int) -> None:
    """Remember that the tree viewer showed `user_id` the tree up to `newest_message_id`.

    The row changes only when the mark moves up: a reload of a tree with nothing new does
    not write (the WHERE of the upsert), and concurrent visits keep the highest mark."""
    statement = insert(TreeVisit).values(
        user_id=user_id, tree_id=tree_id, newest_message_id=newest_message_id
    )
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[TreeVisit.user_id, TreeVisit.tree_id],
            set_={"newest_message_id": statement.excluded.newest_message_id},
            where=TreeVisit.newest_message_id < statement.excluded.newest_message_id,
        )
    )
