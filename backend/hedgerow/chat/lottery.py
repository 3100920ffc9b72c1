"""A prompt the model answered badly, sent by its author to the volunteers' prompt lottery:
it becomes a new tree in prompt review, like a prompt written in a task, so people write
the answer the model should have given."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hedgerow.chat import service
from hedgerow.errors import AppError
from hedgerow.growth import service as growth
from hedgerow.i18n import gettext as _
from hedgerow.models import Chat, Tree, User


def send_prompt_to_lottery(db: Session, chat: Chat, answer_id: int, author: User) -> Tree:
    answer = service.get_message(db, chat, answer_id)
    if answer.role != "assistant" or answer.thumbs != -1 or answer.parent_id is None:
        raise AppError(
            "not_thumbed_down",
            _("Only the prompt of an answer you gave a thumbs down can go."),
            400,
        )
    prompt = service.get_message(db, chat, answer.parent_id)
    # The same text rules as any prompt; the same prompt twice (sent already, or written
    # by someone) is refused.
    return growth.create_prompt_tree(db, author, author.language, prompt.text)
