"""Chat pages. Forms work without JavaScript (a pending answer streams when its page loads);
chat.js sends prompts through the JSON API so a refused one stays in the box."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import ContributorUser
from hedgerow.chat import api, lottery, service
from hedgerow.config import get_settings
from hedgerow.db import SessionDep
from hedgerow.i18n import lazy_gettext
from hedgerow.inputs import Id, Text
from hedgerow.templating import render

router = APIRouter(prefix="/chat", include_in_schema=False)

# Presets for the sampling settings: (label, temperature, top_p, max tokens).
PRESETS = [
    (lazy_gettext("Precise"), 0.2, 0.9, 256),
    (lazy_gettext("Balanced"), 0.7, 0.95, 512),
    (lazy_gettext("Creative"), 1.1, 1.0, 512),
]
DEFAULT_SAMPLING = {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512}


def _see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


@router.get("")
def chats_page(
    request: Request, user: ContributorUser, db: SessionDep, hidden: bool = False
) -> Response:
    chats = service.list_chats(db, user, include_hidden=hidden)
    return render(request, "chat/list.html", {"chats": chats, "show_hidden": hidden})


@router.post("")
def new_chat(user: ContributorUser, db: SessionDep) -> Response:
    chat = service.create_chat(db, user)
    return _see_other(f"/chat/{chat.id}")


@router.get("/{chat_id}")
def chat_page(
    request: Request, chat_id: Id, user: ContributorUser, db: SessionDep, selected: Text = ""
) -> Response:
    chat = service.get_chat(db, user, chat_id)
    chosen = [int(part) for part in selected.split(",") if part.strip().isdigit()]
    entries = service.thread(db, chat, chosen)
    settings = get_settings()
    last_sampling = (
        next((e.message.sampling for e in reversed(entries) if e.message.sampling), None)
        or DEFAULT_SAMPLING
    )
    context = {
        "chat": chat,
        "entries": entries,
        "path_ids": ",".join(str(e.message.id) for e in entries),
        "parent_id": entries[-1].message.id
        if entries and entries[-1].message.role == "assistant"
        else None,
        "sampling": last_sampling,
        "presets": PRESETS,
        "max_tokens_limit": settings.inference_max_new_tokens,
        "max_length": settings.chat_max_message_length,
        "stream_url": api.stream_url,
    }
    return render(request, "chat/chat.html", context, block="thread")


@router.post("/{chat_id}/messages")
def send_prompt(
    chat_id: Id,
    user: ContributorUser,
    db: SessionDep,
    text: Annotated[Text, Form()] = "",
    parent_id: Annotated[Text, Form()] = "",
    temperature: Annotated[float, Form()] = 0.7,
    top_p: Annotated[float, Form()] = 0.95,
    max_tokens: Annotated[int, Form()] = 512,
) -> Response:
    chat = service.get_chat(db, user, chat_id)
    sampling = service.validate_sampling(temperature, top_p, max_tokens)
    exchange = service.add_prompt(
        db,
        chat,
        text=text,
        parent_id=int(parent_id) if parent_id.isdigit() else None,
        sampling=sampling,
    )
    return _see_other(f"/chat/{chat.id}?selected={exchange.prompt.id},{exchange.reply.id}")


@router.post("/{chat_id}/messages/{message_id}/regenerate")
def regenerate(
    chat_id: Id,
    message_id: Id,
    user: ContributorUser,
    db: SessionDep,
    path: Annotated[Text, Form()] = "",
) -> Response:
    chat = service.get_chat(db, user, chat_id)
    previous = service.get_message(db, chat, message_id)
    reply = service.regenerate(
        db,
        chat,
        message_id,
        service.validate_sampling(
            **(previous.sampling or {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512})
        ),
    )
    return _see_other(f"/chat/{chat.id}?selected={path},{reply.id}")


@router.post("/{chat_id}/messages/{message_id}/thumbs")
def thumbs(
    chat_id: Id,
    message_id: Id,
    user: ContributorUser,
    db: SessionDep,
    value: Annotated[int, Form()],
    path: Annotated[Text, Form()] = "",
) -> Response:
    chat = service.get_chat(db, user, chat_id)
    service.set_thumbs(db, chat, message_id, value)
    return _see_other(f"/chat/{chat.id}?selected={path}#m{message_id}")


@router.post("/{chat_id}/messages/{message_id}/report")
def report(
    chat_id: Id,
    message_id: Id,
    user: ContributorUser,
    db: SessionDep,
    reason: Annotated[Text, Form()] = "",
    path: Annotated[Text, Form()] = "",
) -> Response:
    chat = service.get_chat(db, user, chat_id)
    service.report(db, chat, message_id, reason)
    return _see_other(f"/chat/{chat.id}?selected={path}#m{message_id}")


@router.post("/{chat_id}/settings")
def chat_settings(
    chat_id: Id,
    user: ContributorUser,
    db: SessionDep,
    title: Annotated[Text, Form()] = "",
    hidden: Annotated[bool, Form()] = False,
    allow_data_use: Annotated[bool, Form()] = False,
    model: Annotated[Text, Form()] = "",
) -> Response:
    chat = service.get_chat(db, user, chat_id)
    service.update_chat(
        db,
        chat,
        title=title,
        hidden=hidden,
        allow_data_use=allow_data_use,
        model_name=model or None,
    )
    return _see_other(f"/chat/{chat.id}")


@router.post("/{chat_id}/delete")
def delete_chat(chat_id: Id, user: ContributorUser, db: SessionDep) -> Response:
    service.delete_chat(db, service.get_chat(db, user, chat_id))
    return _see_other("/chat")


@router.post("/{chat_id}/messages/{message_id}/to-lottery")
def send_to_lottery(
    chat_id: Id,
    message_id: Id,
    user: ContributorUser,
    db: SessionDep,
    path: Annotated[Text, Form()] = "",
) -> Response:
    chat = service.get_chat(db, user, chat_id)
    lottery.send_prompt_to_lottery(db, chat, message_id, user)
    return _see_other(f"/chat/{chat.id}?selected={path}&sent=1#m{message_id}")
