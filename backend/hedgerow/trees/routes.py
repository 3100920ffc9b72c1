"""Tree viewer pages."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hedgerow.accounts.security import ContributorUser, CurrentUser
from hedgerow.db import SessionDep
from hedgerow.inputs import Id, PageNumber
from hedgerow.templating import render
from hedgerow.trees import service

router = APIRouter(include_in_schema=False)


@router.get("/trees/{tree_id}")
def tree_page(
    request: Request,
    tree_id: Id,
    db: SessionDep,
    user: ContributorUser,
    message: Id | None = Query(None, description="The message whose path is highlighted."),
) -> Response:
    view = service.view_tree(db, user, tree_id, selected_id=message)
    return render(request, "trees/tree.html", {"user": user, "view": view})


CONTRIBUTIONS_PAGE_SIZE = 25


@router.get("/me/contributions")
def my_contributions(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    page: PageNumber = Query(1, ge=1, le=10_000),
) -> Response:
    messages, has_next = service.my_messages(db, user, page=page, page_size=CONTRIBUTIONS_PAGE_SIZE)
    context = {"user": user, "messages": messages, "page": page, "has_next": has_next}
    return render(request, "trees/contributions.html", context)
