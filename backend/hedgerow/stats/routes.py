"""Leaderboard and statistics pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import CurrentUser
from hedgerow.db import SessionDep
from hedgerow.growth.schemas import translated_labels
from hedgerow.languages import LANGUAGE_NAMES
from hedgerow.stats import service
from hedgerow.templating import is_htmx, render
from hedgerow.trees.states import TREE_STATE_TITLES

router = APIRouter(include_in_schema=False)


def _leaderboard_page(request: Request, db: SessionDep, user: CurrentUser, period: str) -> Response:
    board = service.leaderboard(db, user, period=period)
    context = {
        "user": user,
        "board": board,
        "periods": service.PERIODS,
        "formula": service.SCORE_FORMULA,
    }
    return render(request, "stats/leaderboard.html", context, block="board")


@router.get("/leaderboard")
def leaderboard(
    request: Request, db: SessionDep, user: CurrentUser, period: str = "week"
) -> Response:
    return _leaderboard_page(request, db, user, period)


@router.post("/leaderboard/visibility")
def leaderboard_visibility(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    visible: Annotated[str, Form()] = "",
    period: Annotated[str, Form()] = "week",
) -> Response:
    service.set_leaderboard_visibility(db, user, visible == "1")
    if is_htmx(request):
        return _leaderboard_page(request, db, user, period)
    return RedirectResponse(f"/leaderboard?period={period}", status_code=303)


@router.get("/stats")
def stats_page(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    context = {
        "user": user,
        "stats": service.site_stats(db),
        "agreement": service.live_agreement(),
        "label_titles": {label.name: label.title for label in translated_labels()},
        "tree_state_titles": TREE_STATE_TITLES,
        "language_names": LANGUAGE_NAMES,
    }
    return render(request, "stats/stats.html", context)
