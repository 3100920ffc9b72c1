"""Tree viewer pages."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hedgerow.accounts.security import ContributorUser, CurrentUser
from hedgerow.db import SessionDep
from hedgerow.inputs import Id, PageNumber
from hedgerow.languages import language_name
from hedgerow.templating import render
from hedgerow.trees import service
from hedgerow.trees.states import (
    CATEGORY_TITLES,
    REVIEW_STATE_TITLES,
    ROLE_TITLES,
    TREE_STATE_TITLES,
)

router = APIRouter(include_in_schema=False)
# How stored states read, for both pages.
STATE_TITLES = {
    "tree_state_titles": TREE_STATE_TITLES,
    "review_state_titles": REVIEW_STATE_TITLES,
    "role_titles": ROLE_TITLES,
}


@router.get("/trees/{tree_id}")
def tree_page(
    request: Request,
    tree_id: Id,
    db: SessionDep,
    user: ContributorUser,
    message: Id | None = Query(None, description="The message whose path is highlighted."),
) -> Response:
    view = service.view_tree(db, user, tree_id, selected_id=message)
    return render(
        request,
        "trees/tree.html",
        {
            "user": user,
            "view": view,
            "language_name": language_name,
            "category_titles": CATEGORY_TITLES,
            **STATE_TITLES,
        },
    )


CONTRIBUTIONS_PAGE_SIZE = 25


@router.get("/me/contributions")
def my_contributions(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    page: PageNumber = Query(1, ge=1, le=10_000),
) -> Response:
    messages, has_next = service.my_messages(db, user, page=page, page_size=CONTRIBUTIONS_PAGE_SIZE)
    context = {
        "user": user,
        "messages": messages,
        "page": page,
        "has_next": has_next,
        **STATE_TITLES,
    }
    return render(request, "trees/contributions.html", context)
