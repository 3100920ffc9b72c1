"""Tree viewer pages."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hedgerow.accounts.security import CurrentUser
from hedgerow.contribute import markdown as _markdown_filter  # noqa: F401 - registers |markdown
from hedgerow.db import SessionDep
from hedgerow.templating import render
from hedgerow.trees import service

router = APIRouter(include_in_schema=False)


@router.get("/trees/{tree_id}")
def tree_page(
    request: Request,
    tree_id: int,
    db: SessionDep,
    user: CurrentUser,
    message: int | None = Query(None, description="The message whose path is highlighted."),
) -> Response:
    view = service.view_tree(db, user, tree_id, selected_id=message)
    return render(request, "trees/tree.html", {"user": user, "view": view})
