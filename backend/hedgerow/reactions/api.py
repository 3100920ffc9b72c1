"""Reactions JSON API (mounted at /api/v1). Thin: the rules live in reactions.service."""

from __future__ import annotations

from fastapi import APIRouter

from hedgerow.accounts.security import ContributorUser
from hedgerow.db import SessionDep
from hedgerow.inputs import Id
from hedgerow.openapi import error_responses
from hedgerow.reactions import service
from hedgerow.reactions.schemas import ReactionBarOut, ReactionRequest, ToggleResult

router = APIRouter(tags=["reactions"])


@router.get("/messages/{message_id}/reactions")
def reactions(message_id: Id, db: SessionDep, user: ContributorUser) -> ReactionBarOut:
    """How many people gave each reaction, and which ones are yours."""
    return ReactionBarOut.of(service.bar_of(db, user, message_id))


@router.post("/messages/{message_id}/reactions", responses=error_responses(409))
def toggle(
    message_id: Id, body: ReactionRequest, db: SessionDep, user: ContributorUser
) -> ToggleResult:
    """Give a reaction, or take it back if you gave it (a thumbs up takes back your thumbs
    down and the other way round)."""
    given = service.toggle_reaction(db, user, message_id, service.parse_kind(body.kind))
    bar = ReactionBarOut.of(service.bar_of(db, user, message_id))
    return ToggleResult(**bar.model_dump(), given=given)
