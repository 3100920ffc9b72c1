"""Model output is stored even when it holds characters PostgreSQL text refuses."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hedgerow.chat import service
from hedgerow.chat.client import Sampling
from hedgerow.models import ChatMessage, ChatMessageStatus
from tests.factories import make_user


def test_an_answer_with_a_nul_character_is_stored_without_it(db: Session) -> None:
    chat = service.create_chat(db, make_user(db))
    exchange = service.add_prompt(
        db, chat, text="Say something odd", parent_id=None, sampling=Sampling(1.0, 1.0, 8)
    )
    service.finish_reply(
        db,
        exchange.reply.id,
        text="odd\x00 text",
        status=ChatMessageStatus.complete,
        model_version="hedgerow-chat@1",
    )
    db.expire_all()
    stored = db.get(ChatMessage, exchange.reply.id)
    assert stored is not None
    assert stored.text == "odd text" and stored.status == "complete"
