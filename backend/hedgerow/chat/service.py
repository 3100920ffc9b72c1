"""Chat rules: ownership, validation, the message tree, feedback.

A chat is a tree: a prompt's children are alternative answers (regenerate), an answer's
children are follow-up prompts, and an edited prompt is a sibling of the one it replaces.
What the user sees is one path through it, chosen per level by the pager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from hedgerow.chat import queries
from hedgerow.chat.client import Sampling
from hedgerow.config import get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _
from hedgerow.models import Chat, ChatMessage, ChatMessageStatus, ChatRole, User

TITLE_LENGTH = 60
MAX_TITLE_LENGTH = 200
MAX_REPORT_LENGTH = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


def storable(text: str) -> str:
    """Model output as PostgreSQL can store it: a small or untrained model can emit a NUL
    character, which text columns refuse."""
    return text.replace("\x00", "")


def clean_text(text: str) -> str:
    """The message as stored; empty or over-long text is refused before anything is written."""
    text = storable(text).strip()
    if not text:
        raise AppError("empty_message", _("Write a message first."), 400)
    limit = get_settings().chat_max_message_length
    if len(text) > limit:
        raise AppError(
            "message_too_long",
            _(
                "Messages are limited to %(limit)s characters; this one has %(length)s.",
                limit=limit,
                length=len(text),
            ),
            400,
        )
    return text


def validate_sampling(temperature: float, top_p: float, max_tokens: int) -> Sampling:
    if not 0.0 <= temperature <= 2.0:
        raise AppError("invalid_sampling", _("Temperature must be between 0 and 2."), 400)
    if not 0.0 < top_p <= 1.0:
        raise AppError("invalid_sampling", _("Top-p must be above 0 and at most 1."), 400)
    limit = get_settings().inference_max_new_tokens
    if not 1 <= max_tokens <= limit:
        raise AppError(
            "invalid_sampling", _("Max tokens must be between 1 and %(limit)s.", limit=limit), 400
        )
    return Sampling(temperature, top_p, max_tokens)


def create_chat(db: Session, owner: User, *, model_name: str | None = None) -> Chat:
    chat = Chat(
        owner_id=owner.id,
        title="New chat",
        model_name=(model_name or get_settings().chat_default_model)[:200],
    )
    db.add(chat)
    db.flush()
    return chat


def get_chat(db: Session, owner: User, chat_id: int) -> Chat:
    """Someone else's chat and a deleted one are both simply not found."""
    chat = db.get(Chat, chat_id)
    if chat is None or chat.owner_id != owner.id or chat.deleted_at is not None:
        raise NotFound(_("That chat does not exist."))
    return chat


def list_chats(db: Session, owner: User, *, include_hidden: bool = False) -> Sequence[Chat]:
    return queries.chats_of(db, owner.id, include_hidden=include_hidden)


def update_chat(
    db: Session,
    chat: Chat,
    *,
    title: str | None = None,
    hidden: bool | None = None,
    allow_data_use: bool | None = None,
    model_name: str | None = None,
) -> Chat:
    if title is not None:
        title = title.strip()
        if not title or len(title) > MAX_TITLE_LENGTH:
            raise AppError(
                "invalid_title",
                _("A title has 1 to %(limit)s characters.", limit=MAX_TITLE_LENGTH),
                400,
            )
        chat.title = title
    if hidden is not None:
        chat.hidden = hidden
    if allow_data_use is not None:
        chat.allow_data_use = allow_data_use
    if model_name is not None and model_name.strip():
        chat.model_name = model_name.strip()[:200]
    db.flush()
    return chat


def delete_chat(db: Session, chat: Chat) -> None:
    # Soft delete: the URL answers 404 from now on and the export leaves it out.
    chat.deleted_at = utcnow()
    db.flush()


def get_message(db: Session, chat: Chat, message_id: int) -> ChatMessage:
    message = db.get(ChatMessage, message_id)
    if message is None or message.chat_id != chat.id:
        raise NotFound(_("That message does not exist."))
    return message


@dataclass
class Exchange:
    prompt: ChatMessage
    reply: ChatMessage


def _pending_reply(db: Session, chat: Chat, prompt: ChatMessage, sampling: Sampling) -> ChatMessage:
    reply = ChatMessage(
        chat_id=chat.id,
        parent_id=prompt.id,
        role=ChatRole.assistant.value,
        text="",
        status=ChatMessageStatus.pending.value,
        model_name=chat.model_name,
        sampling=sampling.as_dict(),
    )
    db.add(reply)
    chat.updated_at = utcnow()
    db.flush()
    return reply


def add_prompt(
    db: Session, chat: Chat, *, text: str, parent_id: int | None, sampling: Sampling
) -> Exchange:
    """A prompt under `parent_id` (an answer, or None to start), with an empty answer to
    stream into. Sending a prompt under the same parent as an earlier one is an edit: the
    conversation branches."""
    text = clean_text(text)
    if parent_id is not None:
        parent = get_message(db, chat, parent_id)
        if parent.role != ChatRole.assistant.value:
            raise AppError("invalid_parent", _("A prompt follows an answer."), 400)
    prompt = ChatMessage(chat_id=chat.id, parent_id=parent_id, role=ChatRole.user.value, text=text)
    db.add(prompt)
    db.flush()
    if parent_id is None and chat.title == "New chat":
        chat.title = text[:TITLE_LENGTH]
    return Exchange(prompt, _pending_reply(db, chat, prompt, sampling))


def regenerate(db: Session, chat: Chat, reply_id: int, sampling: Sampling) -> ChatMessage:
    """Another answer to the same prompt; the earlier ones stay as its siblings."""
    reply = get_message(db, chat, reply_id)
    if reply.role != ChatRole.assistant.value or reply.parent_id is None:
        raise AppError("not_an_answer", _("Only answers can be regenerated."), 400)
    prompt = get_message(db, chat, reply.parent_id)
    return _pending_reply(db, chat, prompt, sampling)


def conversation(db: Session, chat: Chat, reply: ChatMessage) -> list[dict[str, str]]:
    """The messages from the root down to the reply's prompt, in OpenAI's shape."""
    by_id = {message.id: message for message in queries.messages_of(db, chat.id)}
    path: list[ChatMessage] = []
    current = by_id.get(reply.parent_id) if reply.parent_id else None
    while current is not None:
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return [{"role": m.role, "content": m.text} for m in reversed(path)]


def finish_reply(
    db: Session,
    reply_id: int,
    *,
    text: str,
    status: ChatMessageStatus,
    model_version: str | None,
    error: str | None = None,
) -> None:
    reply = db.get(ChatMessage, reply_id)
    if reply is None or reply.status != ChatMessageStatus.pending.value:
        return
    reply.text = storable(text)
    reply.status = status.value
    reply.model_version = model_version
    reply.error = error
    db.flush()


def _answer(db: Session, chat: Chat, message_id: int) -> ChatMessage:
    message = get_message(db, chat, message_id)
    if message.role != ChatRole.assistant.value:
        raise AppError("not_an_answer", _("Only answers take feedback."), 400)
    return message


def set_thumbs(db: Session, chat: Chat, message_id: int, value: int) -> ChatMessage:
    """1 up, -1 down, 0 takes the thumb back."""
    if value not in (-1, 0, 1):
        raise AppError("invalid_thumbs", _("Thumbs are 1 (up), -1 (down) or 0 (none)."), 400)
    message = _answer(db, chat, message_id)
    message.thumbs = value or None
    db.flush()
    return message


def report(db: Session, chat: Chat, message_id: int, reason: str) -> ChatMessage:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REPORT_LENGTH:
        raise AppError(
            "invalid_reason",
            _("Say what is wrong in 1 to %(limit)s characters.", limit=MAX_REPORT_LENGTH),
            400,
        )
    message = _answer(db, chat, message_id)
    message.report_reason = reason
    message.reported_at = utcnow()
    db.flush()
    return message


@dataclass
class ThreadEntry:
    message: ChatMessage
    # Siblings (alternatives at this level) and this one's 1-based place among them.
    sibling_ids: list[int]
    position: int


def thread(db: Session, chat: Chat, selected: Sequence[int] = ()) -> list[ThreadEntry]:
    """The path shown: at each level the selected sibling, else the newest one.

    Where `selected` names several siblings, the last named wins: the pager and regenerate
    add the one to show after the path shown so far (`?selected=<path>,<new id>`)."""
    messages = queries.messages_of(db, chat.id)
    children: dict[int | None, list[ChatMessage]] = {}
    for message in messages:
        children.setdefault(message.parent_id, []).append(message)
    # Later places overwrite earlier ones: each id's last place in the selection.
    place = {message_id: index for index, message_id in enumerate(selected)}
    entries: list[ThreadEntry] = []
    parent: int | None = None
    while parent in children or (parent is None and None in children):
        siblings = children[parent]
        named = [m for m in siblings if m.id in place]
        pick = max(named, key=lambda m: place[m.id]) if named else siblings[-1]
        ids = [m.id for m in siblings]
        entries.append(ThreadEntry(pick, ids, ids.index(pick.id) + 1))
        parent = pick.id
    return entries
