"""The reaction bar's form: POST, then 303 back to the page it came from; htmx swaps the
bar in place (components/reactions.html)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import ContributorUser, safe_next
from hedgerow.db import SessionDep
from hedgerow.inputs import Id, Text
from hedgerow.reactions import service
from hedgerow.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

FormText = Annotated[Text, Form()]


@router.post("/messages/{message_id}/reactions")
def toggle(
    request: Request,
    message_id: Id,
    db: SessionDep,
    user: ContributorUser,
    kind: FormText = "",
    next: FormText = "",
) -> Response:
    service.toggle_reaction(db, user, message_id, service.parse_kind(kind))
    back = safe_next(next, "/dashboard")
    if not is_htmx(request):
        return RedirectResponse(back, status_code=303)
    bar = service.bar_of(db, user, message_id)
    return render(request, "reactions/bar.html", {"bar": bar, "next": back})
