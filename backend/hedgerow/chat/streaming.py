"""Relay an answer from the model server to the browser as server-sent events, and store it.

Events: `delta` for each piece ({"text"}, with the answer's Markdown as sanitised HTML:
"settled_html" to append after what came before, "tail_html" to replace the previous
tail, see answer_markdown.py), then `done` ({"status", "text", "html", "model_version"},
"html" the whole answer rendered) or `error` ({"code", "message"}). The answer is written
when the stream ends however it ends: complete, stopped (the stop button, or the browser
went away) or failed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hedgerow.chat import client, service
from hedgerow.chat.answer_markdown import AnswerMarkdown
from hedgerow.chat.client import Sampling
from hedgerow.errors import AppError
from hedgerow.markdown import render_markdown
from hedgerow.models import ChatMessageStatus
from hedgerow.redis_client import get_redis

STOP_KEY = "hedgerow:chat:stop:{reply_id}"
# A stop request outlives any answer it could be meant for.
STOP_TTL_SECONDS = 600


def request_stop(reply_id: int) -> None:
    """Ask the stream writing this reply (in whichever web process) to stop."""
    get_redis().set(STOP_KEY.format(reply_id=reply_id), "1", ex=STOP_TTL_SECONDS)


def _stop_requested(reply_id: int) -> bool:
    return bool(get_redis().exists(STOP_KEY.format(reply_id=reply_id)))


def sse(event: str, payload: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def done(status: str, text: str, model_version: str | None) -> bytes:
    return sse(
        "done",
        {
            "status": status,
            "text": text,
            "html": str(render_markdown(text)),
            "model_version": model_version,
        },
    )


async def relay(
    maker: sessionmaker[Session],
    reply_id: int,
    *,
    model: str,
    messages: list[dict[str, str]],
    sampling: Sampling,
    user: str,
) -> AsyncIterator[bytes]:
    pieces: list[str] = []
    markdown = AnswerMarkdown()
    version: str | None = None
    stored = False

    def store(status: ChatMessageStatus, error: str | None = None) -> None:
        nonlocal stored
        with maker.begin() as db:
            service.finish_reply(
                db,
                reply_id,
                text="".join(pieces),
                status=status,
                model_version=version,
                error=error,
            )
        get_redis().delete(STOP_KEY.format(reply_id=reply_id))
        stored = True

    try:
        status = ChatMessageStatus.complete
        async with aclosing(client.stream_chat(model, messages, sampling, user=user)) as deltas:
            async for delta in deltas:
                pieces.append(delta.text)
                version = delta.model_version or version
                if delta.text:
                    settled_html, tail_html = markdown.add(delta.text)
                    yield sse(
                        "delta",
                        {"text": delta.text, "settled_html": settled_html, "tail_html": tail_html},
                    )
                if _stop_requested(reply_id):
                    status = ChatMessageStatus.stopped
                    break
        store(status)
        yield done(status.value, "".join(pieces), version)
    except AppError as error:
        store(ChatMessageStatus.failed, error.message)
        yield sse("error", {"code": error.code, "message": error.message})
    finally:
        if not stored:
            # The browser went away mid-answer: keep what was written so far.
            store(ChatMessageStatus.stopped)
