"""Arena pages: ask, compare blind, vote, see the names; the model leaderboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import ContributorUser, OptionalUser
from hedgerow.chat import arena, client, service
from hedgerow.db import SessionDep
from hedgerow.inputs import Id, Text
from hedgerow.templating import render

router = APIRouter(prefix="/arena", include_in_schema=False)


@router.get("")
async def arena_page(request: Request, user: ContributorUser) -> Response:
    # Said before the user writes a prompt, not as a refusal after it.
    unavailable = arena.unavailable_reason(await client.list_models())
    return render(request, "chat/arena.html", {"unavailable": unavailable})


@router.post("")
async def start_battle(
    user: ContributorUser, db: SessionDep, prompt: Annotated[Text, Form()] = ""
) -> Response:
    text = service.clean_text(prompt)
    pair = await arena.pick_pair()
    answers = await arena.answer_both(text, pair, user)
    battle = arena.record_battle(db, user, text, pair, answers)
    return RedirectResponse(f"/arena/{battle.id}", status_code=303)


@router.get("/leaderboard")
def leaderboard_page(request: Request, user: OptionalUser, db: SessionDep) -> Response:
    return render(request, "chat/leaderboard.html", {"rows": arena.standings(db)})


@router.get("/{battle_id}")
def battle_page(request: Request, battle_id: Id, user: ContributorUser, db: SessionDep) -> Response:
    battle = arena.get_battle(db, user, battle_id)
    return render(request, "chat/battle.html", {"battle": battle})


@router.post("/{battle_id}/vote")
def vote(
    battle_id: Id, user: ContributorUser, db: SessionDep, choice: Annotated[Text, Form()] = ""
) -> Response:
    arena.vote(db, arena.get_battle(db, user, battle_id), choice)
    return RedirectResponse(f"/arena/{battle_id}", status_code=303)
