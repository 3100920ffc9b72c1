"""chats.jsonl in each release: chats whose owner allows data use, one tree per line.

Assistant messages are marked synthetic with the model version that wrote them; thumbs
and reports ride along as events. Owners appear only as the release's pseudonyms, and
chats get release-local ids, so nothing links back to an account or a URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.export import queries
from hedgerow.export.shapes import Pseudonyms
from hedgerow.export.writers import CHATS_FILE
from hedgerow.models import Chat, ChatMessage, ChatMessageStatus, ChatRole

# Chats per query: their messages come in one query per batch, bounding memory.
BATCH_SIZE = 500
# Empty answers (still pending, or the server failed) teach nothing.
EXPORTED_STATUSES = (ChatMessageStatus.complete.value, ChatMessageStatus.stopped.value)


def _events(message: ChatMessage) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if message.thumbs is not None:
        events.append({"type": "score", "value": message.thumbs})
    if message.reported_at is not None:
        events.append({"type": "report", "reason": message.report_reason})
    return events


def _chat_row(
    number: int, chat: Chat, owner: str | None, messages: list[ChatMessage]
) -> dict[str, Any]:
    local: dict[int, str] = {}
    rows = []
    for message in messages:
        if message.parent_id is not None and message.parent_id not in local:
            continue  # under a failed answer that is left out
        if message.role == ChatRole.assistant.value and message.status not in EXPORTED_STATUSES:
            continue
        local[message.id] = f"c{number}-m{len(local) + 1}"
        assistant = message.role == ChatRole.assistant.value
        rows.append(
            {
                "message_id": local[message.id],
                "parent_id": local.get(message.parent_id) if message.parent_id else None,
                "role": message.role,
                "text": message.text,
                "synthetic": assistant,
                "model_name": message.model_name if assistant else None,
                "model_version": message.model_version if assistant else None,
                "sampling": message.sampling if assistant else None,
                "stopped": message.status == ChatMessageStatus.stopped.value,
                "created_at": message.created_at.isoformat(),
                "events": _events(message),
            }
        )
    return {
        "chat_id": f"c{number}",
        "user": owner,
        "model_name": chat.model_name,
        "created_at": chat.created_at.isoformat(),
        "messages": rows,
    }


def write_chats(maker: sessionmaker[Session], directory: Path, pseudonyms: Pseudonyms) -> int:
    """Write chats.jsonl into the release directory; returns the number of chats."""
    written = 0
    last_id = 0
    with (directory / CHATS_FILE).open("wb") as out, maker() as db:
        while batch := queries.shared_chats(db, after_id=last_id, limit=BATCH_SIZE):
            last_id = batch[-1][0].id
            by_chat: dict[int, list[ChatMessage]] = {}
            for message in queries.messages_of_chats(db, [chat.id for chat, _ in batch]):
                by_chat.setdefault(message.chat_id, []).append(message)
            for chat, owner_id in batch:
                messages = by_chat.get(chat.id, [])
                if not messages:
                    continue
                written += 1
                row = _chat_row(written, chat, pseudonyms.user(owner_id), messages)
                out.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            db.expunge_all()
    return written
