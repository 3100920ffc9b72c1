"""SQL for the tree viewer and "my contributions"."""

from __future__ import annotations

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from hedgerow.models import Message, Tree, User


def tree_messages(db: Session, tree_id: int, *, include_deleted: bool) -> list[Row]:
    """Every message of one tree with its author's display name, parents before children.

    One indexed query (ix_message_tree_id_depth): a tree is small (its goal size), so the
    nesting is built in Python rather than with a recursive CTE.
    """
    query = (
        select(
            Message.id,
            Message.parent_id,
            Message.role,
            Message.text,
            Message.depth,
            Message.review_state,
            Message.consensus_rank,
            Message.deleted,
            Message.edited,
            Message.synthetic,
            Message.created_at,
            Message.author_id,
            User.display_name.label("author_name"),
        )
        .join(User, User.id == Message.author_id)
        .where(Message.tree_id == tree_id)
        .order_by(Message.depth, Message.id)
    )
    if not include_deleted:
        query = query.where(Message.deleted.is_(False))
    return list(db.execute(query))


def get_tree(db: Session, tree_id: int) -> Tree | None:
    return db.get(Tree, tree_id)


def messages_by_author(db: Session, author_id: int, *, limit: int, offset: int) -> list[Row]:
    """One page of a volunteer's messages, newest first, with their tree's state
    (ix_message_author_id_created_at)."""
    return list(
        db.execute(
            select(
                Message.id,
                Message.tree_id,
                Message.role,
                Message.text,
                Message.depth,
                Message.review_state,
                Message.consensus_rank,
                Message.created_at,
                Tree.state.label("tree_state"),
            )
            .join(Tree, Tree.id == Message.tree_id)
            .where(Message.author_id == author_id, Message.deleted.is_(False))
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
