"""Chat SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.models import Battle, Chat, ChatMessage


def chats_of(db: Session, owner_id: int, *, include_hidden: bool) -> Sequence[Chat]:
    query = select(Chat).where(Chat.owner_id == owner_id, Chat.deleted_at.is_(None))
    if not include_hidden:
        query = query.where(Chat.hidden.is_(False))
    return db.scalars(query.order_by(Chat.updated_at.desc(), Chat.id.desc())).all()


def messages_of(db: Session, chat_id: int) -> Sequence[ChatMessage]:
    return db.scalars(
        select(ChatMessage).where(ChatMessage.chat_id == chat_id).order_by(ChatMessage.id)
    ).all()


def voted_battles(db: Session) -> Sequence[tuple[str, str | None, str, str | None, str | None]]:
    """(model_a, version_a, model_b, version_b, vote) of every battle voted on, oldest first."""
    return db.execute(
        select(Battle.model_a, Battle.version_a, Battle.model_b, Battle.version_b, Battle.vote)
        .where(Battle.vote.is_not(None))
        .order_by(Battle.id)
    ).all()
