"""Chat JSON API (mounted at /api/v1); the pages use the same endpoints to stream."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.security import ContributorUser
from hedgerow.chat import client, lottery, queries, service, streaming
from hedgerow.chat.schemas import (
    ChatDetail,
    ChatOut,
    ChatUpdate,
    ExchangeOut,
    MessageOut,
    ModelsOut,
    NewChat,
    NewPrompt,
    Regenerate,
    ReportIn,
    SamplingIn,
    ThreadEntryOut,
    Thumbs,
)
from hedgerow.config import get_settings
from hedgerow.db import SessionDep, get_sessionmaker
from hedgerow.inputs import Id, Text
from hedgerow.models import Chat, ChatMessage, ChatMessageStatus
from hedgerow.openapi import error_responses

router = APIRouter(tags=["chat"])


def chat_out(chat: Chat) -> ChatOut:
    return ChatOut(
        id=chat.id,
        title=chat.title,
        model=chat.model_name,
        hidden=chat.hidden,
        allow_data_use=chat.allow_data_use,
        created_at=chat.created_at,
        updated_at=chat.updated_at,
    )


def message_out(message: ChatMessage) -> MessageOut:
    return MessageOut(
        id=message.id,
        parent_id=message.parent_id,
        role=message.role,
        text=message.text,
        status=message.status,
        model=message.model_name,
        model_version=message.model_version,
        sampling=message.sampling,
        error=message.error,
        thumbs=message.thumbs,
        reported=message.reported_at is not None,
        created_at=message.created_at,
    )


def stream_url(chat_id: int, reply_id: int) -> str:
    return f"/api/v1/chats/{chat_id}/messages/{reply_id}/stream"


def stream_sessionmaker(request: Request) -> sessionmaker[Session]:
    """The stream outlives the request's session; it stores the answer in its own."""
    maker: sessionmaker[Session] | None = getattr(request.app.state, "sessionmaker", None)
    return maker or get_sessionmaker()


def _sampling(body: SamplingIn) -> client.Sampling:
    return service.validate_sampling(body.temperature, body.top_p, body.max_tokens)


@router.get("/chat-models", response_model=ModelsOut, responses=error_responses(502, 503, 504))
async def list_models(user: ContributorUser) -> ModelsOut:
    return ModelsOut(models=await client.list_models(), default=get_settings().chat_default_model)


@router.get("/chats", response_model=list[ChatOut])
def list_chats(
    db: SessionDep, user: ContributorUser, include_hidden: bool = False
) -> list[ChatOut]:
    return [chat_out(c) for c in service.list_chats(db, user, include_hidden=include_hidden)]


@router.post(
    "/chats",
    response_model=ChatOut,
    status_code=201,
    responses=error_responses(404, 409, 429, 502, 503, 504),
)
def create_chat(db: SessionDep, user: ContributorUser, body: NewChat | None = None) -> ChatOut:
    return chat_out(service.create_chat(db, user, model_name=body.model if body else None))


@router.get("/chats/{chat_id}", response_model=ChatDetail)
def get_chat(chat_id: Id, db: SessionDep, user: ContributorUser, selected: Text = "") -> ChatDetail:
    chat = service.get_chat(db, user, chat_id)
    chosen = [int(part) for part in selected.split(",") if part.strip().isdigit()]
    return ChatDetail(
        **chat_out(chat).model_dump(),
        messages=[message_out(m) for m in queries.messages_of(db, chat.id)],
        thread=[
            ThreadEntryOut(
                **message_out(entry.message).model_dump(),
                sibling_ids=entry.sibling_ids,
                position=entry.position,
            )
            for entry in service.thread(db, chat, chosen)
        ],
    )


@router.patch("/chats/{chat_id}", response_model=ChatOut, responses=error_responses(409))
def update_chat(chat_id: Id, body: ChatUpdate, db: SessionDep, user: ContributorUser) -> ChatOut:
    chat = service.get_chat(db, user, chat_id)
    service.update_chat(
        db,
        chat,
        title=body.title,
        hidden=body.hidden,
        allow_data_use=body.allow_data_use,
        model_name=body.model,
    )
    return chat_out(chat)


@router.delete("/chats/{chat_id}", status_code=204)
def delete_chat(chat_id: Id, db: SessionDep, user: ContributorUser) -> Response:
    service.delete_chat(db, service.get_chat(db, user, chat_id))
    return Response(status_code=204)


@router.post(
    "/chats/{chat_id}/messages",
    response_model=ExchangeOut,
    status_code=201,
    responses=error_responses(409, 429, 502, 503, 504),
)
def send_prompt(chat_id: Id, body: NewPrompt, db: SessionDep, user: ContributorUser) -> ExchangeOut:
    chat = service.get_chat(db, user, chat_id)
    exchange = service.add_prompt(
        db, chat, text=body.text, parent_id=body.parent_id, sampling=_sampling(body)
    )
    return ExchangeOut(
        prompt=message_out(exchange.prompt),
        reply=message_out(exchange.reply),
        stream_url=stream_url(chat.id, exchange.reply.id),
    )


@router.post(
    "/chats/{chat_id}/messages/{message_id}/regenerate",
    response_model=ExchangeOut,
    status_code=201,
    responses=error_responses(409, 429, 502, 503, 504),
)
def regenerate(
    chat_id: Id, message_id: Id, body: Regenerate, db: SessionDep, user: ContributorUser
) -> ExchangeOut:
    chat = service.get_chat(db, user, chat_id)
    reply = service.regenerate(db, chat, message_id, _sampling(body))
    return ExchangeOut(
        prompt=None, reply=message_out(reply), stream_url=stream_url(chat.id, reply.id)
    )


@router.get(
    "/chats/{chat_id}/messages/{message_id}/stream",
    responses=error_responses(409, 429, 502, 503, 504),
)
def stream_reply(
    chat_id: Id, message_id: Id, request: Request, db: SessionDep, user: ContributorUser
) -> Response:
    """Server-sent events for a pending answer; a finished one comes back as one `done`."""
    chat = service.get_chat(db, user, chat_id)
    reply = service.get_message(db, chat, message_id)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if reply.status != ChatMessageStatus.pending.value:
        finished = streaming.done(reply.status, reply.text, reply.model_version)
        return Response(finished, media_type="text/event-stream", headers=headers)
    sampling = reply.sampling or {}
    events = streaming.relay(
        stream_sessionmaker(request),
        reply.id,
        model=reply.model_name or chat.model_name,
        messages=service.conversation(db, chat, reply),
        sampling=client.Sampling(
            float(sampling.get("temperature", 0.7)),
            float(sampling.get("top_p", 0.95)),
            int(sampling.get("max_tokens", 256)),
        ),
        user=f"hedgerow-user-{user.id}",
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.post(
    "/chats/{chat_id}/messages/{message_id}/stop", status_code=202, responses=error_responses(409)
)
def stop_reply(chat_id: Id, message_id: Id, db: SessionDep, user: ContributorUser) -> dict:
    chat = service.get_chat(db, user, chat_id)
    reply = service.get_message(db, chat, message_id)
    streaming.request_stop(reply.id)
    return {"stopping": reply.status == ChatMessageStatus.pending.value}


@router.post(
    "/chats/{chat_id}/messages/{message_id}/thumbs",
    response_model=MessageOut,
    responses=error_responses(409),
)
def set_thumbs(
    chat_id: Id, message_id: Id, body: Thumbs, db: SessionDep, user: ContributorUser
) -> MessageOut:
    chat = service.get_chat(db, user, chat_id)
    return message_out(service.set_thumbs(db, chat, message_id, body.value))


@router.post(
    "/chats/{chat_id}/messages/{message_id}/report",
    response_model=MessageOut,
    responses=error_responses(409),
)
def report(
    chat_id: Id, message_id: Id, body: ReportIn, db: SessionDep, user: ContributorUser
) -> MessageOut:
    chat = service.get_chat(db, user, chat_id)
    return message_out(service.report(db, chat, message_id, body.reason))


@router.post(
    "/chats/{chat_id}/messages/{message_id}/to-lottery",
    status_code=201,
    responses=error_responses(409),
)
def send_to_lottery(
    chat_id: Id, message_id: Id, db: SessionDep, user: ContributorUser
) -> dict[str, int]:
    """The prompt of a thumbed-down answer becomes a prompt for the volunteers."""
    chat = service.get_chat(db, user, chat_id)
    tree = lottery.send_prompt_to_lottery(db, chat, message_id, user)
    return {"tree_id": tree.id}
