"""The arena: one prompt, two serving models answering blind, the user's vote, and the
leaderboard it feeds."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from hedgerow.chat import client, queries, ratings, service
from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _
from hedgerow.models import Battle, BattleVote, User

ARENA_SAMPLING = client.Sampling(temperature=0.7, top_p=0.95, max_tokens=256)


ARENA_MODELS = 2


def unavailable_reason(models: list[str]) -> str | None:
    """Why no battle can start with these serving models, or None when one can."""
    if len(models) >= ARENA_MODELS:
        return None
    if not models:
        return _("The arena needs two serving models to compare; no model is serving right now.")
    return _("The arena needs two serving models to compare; only one model is serving right now.")


async def pick_pair(rng: random.Random | None = None) -> tuple[str, str]:
    models = await client.list_models()
    reason = unavailable_reason(models)
    if reason is not None:
        raise AppError("arena_unavailable", reason, 409)
    first, second = (rng or random.SystemRandom()).sample(models, 2)
    return first, second


async def answer_both(
    prompt: str, pair: tuple[str, str], user: User
) -> list[tuple[str, str | None]]:
    messages = [{"role": "user", "content": prompt}]
    answers = await asyncio.gather(
        *(
            client.complete(model, messages, ARENA_SAMPLING, user=f"hedgerow-user-{user.id}")
            for model in pair
        ),
        return_exceptions=True,
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise client.unavailable(answer if isinstance(answer, Exception) else Exception())
    return [answer for answer in answers if not isinstance(answer, BaseException)]


def record_battle(
    db: Session,
    user: User,
    prompt: str,
    pair: tuple[str, str],
    answers: list[tuple[str, str | None]],
) -> Battle:
    (answer_a, version_a), (answer_b, version_b) = answers
    battle = Battle(
        user_id=user.id,
        prompt=prompt,
        model_a=pair[0],
        version_a=version_a,
        answer_a=service.storable(answer_a),
        model_b=pair[1],
        version_b=version_b,
        answer_b=service.storable(answer_b),
    )
    db.add(battle)
    db.flush()
    return battle


def get_battle(db: Session, user: User, battle_id: int) -> Battle:
    battle = db.get(Battle, battle_id)
    if battle is None or battle.user_id != user.id:
        raise NotFound(_("That battle does not exist."))
    return battle


def vote(db: Session, battle: Battle, choice: str) -> Battle:
    if choice not in tuple(BattleVote):
        raise AppError("invalid_vote", _("Vote A, B, tie or both bad."), 400)
    if battle.vote is not None:
        raise AppError("already_voted", _("You already voted on this battle."), 409)
    battle.vote = choice
    battle.voted_at = datetime.now(UTC)
    db.flush()
    return battle


def _side(model: str, version: str | None) -> str:
    # Ratings are per version: a newly promoted version starts its own record.
    return version or model


def standings(db: Session) -> list[ratings.Rating]:
    votes = [
        (_side(model_a, version_a), _side(model_b, version_b), str(outcome))
        for model_a, version_a, model_b, version_b, outcome in queries.voted_battles(db)
    ]
    return ratings.leaderboard(votes)
