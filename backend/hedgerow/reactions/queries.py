"""The reactions domain's SQL. Every statement walks the reaction table's unique index
(message_id, user_id, kind)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hedgerow.models import Message, Reaction, Tree


def message_for_reaction(db: Session, message_id: int) -> Row | None:
    """(author_id, deleted, tree_state) of a message, None when there is none."""
    return db.execute(
        select(Message.author_id, Message.deleted, Tree.state.label("tree_state"))
        .join(Tree, Tree.id == Message.tree_id)
        .where(Message.id == message_id)
    ).first()


def counts(
    db: Session, message_ids: Sequence[int], kinds: Sequence[str]
) -> dict[int, dict[str, int]]:
    """message id -> {kind: how many people}, for the kinds asked (one GROUP BY)."""
    found: dict[int, dict[str, int]] = {}
    rows = db.execute(
        select(Reaction.message_id, Reaction.kind, func.count())
        .where(Reaction.message_id.in_(message_ids), Reaction.kind.in_(kinds))
        .group_by(Reaction.message_id, Reaction.kind)
    )
    for message_id, kind, count in rows:
        found.setdefault(message_id, {})[kind] = count
    return found


def kinds_of_user(db: Session, user_id: int, message_ids: Sequence[int]) -> dict[int, set[str]]:
    """message id -> the kinds `user_id` gave it."""
    found: dict[int, set[str]] = {}
    rows = db.execute(
        select(Reaction.message_id, Reaction.kind).where(
            Reaction.message_id.in_(message_ids), Reaction.user_id == user_id
        )
    )
    for message_id, kind in rows:
        found.setdefault(message_id, set()).add(kind)
    return found


def remove(db: Session, message_id: int, user_id: int, kinds: Sequence[str]) -> list[str]:
    """Delete the user's reactions of these kinds on the message; returns the kinds that
    were there."""
    return list(
        db.scalars(
            delete(Reaction)
            .where(
                Reaction.message_id == message_id,
                Reaction.user_id == user_id,
                Reaction.kind.in_(kinds),
            )
            .returning(Reaction.kind)
        )
    )


def add(db: Session, message_id: int, user_id: int, kind: str) -> None:
    """Idempotent: two quick clicks make one row (the unique index)."""
    db.execute(
        insert(Reaction)
        .values(message_id=message_id, user_id=user_id, kind=kind)
        .on_conflict_do_nothing(
            index_elements=[Reaction.message_id, Reaction.user_id, Reaction.kind]
        )
    )
