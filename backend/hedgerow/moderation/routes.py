"""Moderation pages. Every form works without JavaScript (POST, then 303 back to the page
it came from); the pages are hx-boosted, so with htmx the same forms swap in place.

Volunteers' report form (GET/POST /messages/{id}/report) lives here too; the partial
moderation/_report_form.html is meant to be included in task and tree pages.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from hedgerow.accounts.security import ContributorUser, ModeratorUser, safe_next
from hedgerow.db import SessionDep
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.inputs import MAX_ID, Id, PageNumber, Text, check_form_texts
from hedgerow.models import Message, ReportReason, Role
from hedgerow.moderation import service
from hedgerow.moderation.queries import REASON_SEVERITY, TROLL_WEIGHTS
from hedgerow.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

FormText = Annotated[Text, Form()]
REPORT_REASONS = [reason.value for reason in ReportReason]


def _back(next_url: str, default: str) -> RedirectResponse:
    return RedirectResponse(safe_next(next_url, default), status_code=303)


# --- reporting (volunteers) ------------------------------------------------------------


def _report_context(message_id: int, next_url: str, **extra: object) -> dict[str, object]:
    return {
        "message_id": message_id,
        "reasons": REPORT_REASONS,
        "next": safe_next(next_url, "/dashboard"),
        **extra,
    }


@router.get("/messages/{message_id}/report")
def report_form(
    request: Request,
    message_id: Id,
    db: SessionDep,
    user: ContributorUser,
    next: Text = Query("/dashboard", max_length=2000),
    done: bool = False,
) -> Response:
    message = db.get(Message, message_id)
    if message is None or message.deleted:
        raise AppError("not_found", _("That message does not exist."), 404)
    refusal = None if done else service.report_refusal(db, user, message)
    return render(
        request,
        "moderation/report.html",
        _report_context(message_id, next, message=message, reported=done, refusal=refusal),
        block="report_form",
    )


@router.post("/messages/{message_id}/report")
def report_message(
    request: Request,
    message_id: Id,
    db: SessionDep,
    user: ContributorUser,
    reason: FormText = "",
    text: FormText = "",
    next: FormText = "/dashboard",
) -> Response:
    try:
        service.report_message(db, user, message_id, reason=service.parse_reason(reason), text=text)
    except AppError as error:
        if error.status == 404:
            raise
        context = _report_context(
            message_id, next, error=error.message, error_code=error.code, text=text, reason=reason
        )
        if is_htmx(request):
            return render(
                request, "moderation/_report_form.html", context, status_code=error.status
            )
        context["message"] = db.get(Message, message_id)
        return render(request, "moderation/report.html", context, status_code=error.status)
    if is_htmx(request):
        return render(
            request,
            "moderation/_report_form.html",
            _report_context(message_id, next, reported=True),
        )
    query = urlencode({"done": 1, "next": safe_next(next, "/dashboard")})
    return RedirectResponse(f"/messages/{message_id}/report?{query}", status_code=303)


# --- the queue and a message -----------------------------------------------------------


@router.get("/moderation")
def moderation_home(moderator: ModeratorUser) -> Response:
    return RedirectResponse("/moderation/queue", status_code=303)


@router.get("/moderation/queue")
def queue_page(
    request: Request, db: SessionDep, moderator: ModeratorUser, page: PageNumber = 1
) -> Response:
    items, has_next = service.queue_page(db, page=page)
    return render(
        request,
        "moderation/queue.html",
        {
            "items": items,
            "page": page,
            "has_next": has_next,
            "severities": REASON_SEVERITY,
            "bulk_actions": service.BULK_ACTIONS,
        },
    )


@router.get("/moderation/messages/{message_id}")
def message_page(
    request: Request, message_id: Id, db: SessionDep, moderator: ModeratorUser
) -> Response:
    detail = service.message_detail(db, message_id)
    return render(request, "moderation/message.html", {"detail": detail})


def _message_page_url(message_id: int) -> str:
    return f"/moderation/messages/{message_id}"


@router.post("/moderation/messages/{message_id}/dismiss")
def dismiss(
    message_id: Id,
    db: SessionDep,
    moderator: ModeratorUser,
    reason: FormText = "",
    next: FormText = "",
) -> Response:
    service.dismiss_reports(db, moderator, message_id, reason=reason)
    return _back(next, _message_page_url(message_id))


def _confirm_delete_page(
    request: Request,
    db: Session,
    message_id: int,
    *,
    reason: str,
    next_url: str,
    error: AppError | None = None,
) -> Response:
    return render(
        request,
        "moderation/delete.html",
        {
            "preview": service.deletion_preview(db, message_id),
            "reason": reason,
            "next": safe_next(next_url, _message_page_url(message_id)),
            "error": error,
        },
        status_code=error.status if error is not None else 200,
    )


@router.get("/moderation/messages/{message_id}/delete")
def confirm_delete(
    request: Request,
    message_id: Id,
    db: SessionDep,
    moderator: ModeratorUser,
    reason: Text = Query("", max_length=2000),
    next: Text = Query("", max_length=2000),
) -> Response:
    """The first step of "Delete with replies": how many messages go, then a second POST."""
    return _confirm_delete_page(request, db, message_id, reason=reason, next_url=next)


@router.post("/moderation/messages/{message_id}/delete")
def delete(
    request: Request,
    message_id: Id,
    db: SessionDep,
    moderator: ModeratorUser,
    reason: FormText = "",
    next: FormText = "",
    expected_count: FormText = "",
) -> Response:
    """Deletes only what the moderator confirmed: a POST without the confirmed count (an
    old page, a hand-made form) gets the confirmation step instead."""
    if not expected_count.isdigit():
        return _confirm_delete_page(request, db, message_id, reason=reason, next_url=next)
    try:
        service.delete_message(
            db, moderator, message_id, reason=reason, expected_count=int(expected_count)
        )
    except AppError as error:
        if error.code != "subtree_changed":
            raise
        return _confirm_delete_page(
            request, db, message_id, reason=reason, next_url=next, error=error
        )
    return _back(next, _message_page_url(message_id))


@router.post("/moderation/messages/{message_id}/undelete")
def undelete(
    message_id: Id,
    db: SessionDep,
    moderator: ModeratorUser,
    reason: FormText = "",
    next: FormText = "",
) -> Response:
    service.undelete_message(db, moderator, message_id, reason=reason)
    return _back(next, _message_page_url(message_id))


@router.post("/moderation/messages/{message_id}/edit")
def edit(
    request: Request,
    message_id: Id,
    db: SessionDep,
    moderator: ModeratorUser,
    text: FormText = "",
    reason: FormText = "",
) -> Response:
    try:
        service.edit_message(db, moderator, message_id, new_text=text, reason=reason)
    except AppError as error:
        if error.status == 404:
            raise
        detail = service.message_detail(db, message_id)
        context = {
            "detail": detail,
            "edit_error": error.message,
            "edit_error_code": error.code,
            "edit_text": text,
            "edit_reason": reason,
        }
        return render(
            request, "moderation/message.html", context, block="edit", status_code=error.status
        )
    return _back("", _message_page_url(message_id))


@router.post("/moderation/trees/{tree_id}/halt")
def halt(
    tree_id: Id,
    db: SessionDep,
    moderator: ModeratorUser,
    reason: FormText = "",
    next: FormText = "",
) -> Response:
    service.halt_tree(db, moderator, tree_id, reason=reason)
    return _back(next, "/moderation/queue")


@router.post("/moderation/trees/{tree_id}/resume")
def resume(
    tree_id: Id,
    db: SessionDep,
    moderator: ModeratorUser,
    reason: FormText = "",
    next: FormText = "",
) -> Response:
    service.resume_tree(db, moderator, tree_id, reason=reason)
    return _back(next, "/moderation/queue")


def _form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _confirm_bulk_delete_page(
    request: Request, db: Session, ids: list[int], reason: str, error: AppError | None = None
) -> Response:
    return render(
        request,
        "moderation/bulk_delete.html",
        {"preview": service.bulk_deletion_preview(db, ids), "reason": reason, "error": error},
        status_code=error.status if error is not None else 200,
    )


@router.post("/moderation/bulk")
async def bulk(request: Request, db: SessionDep, moderator: ModeratorUser) -> Response:
    """A delete first shows how many messages go (as "Delete with replies" does); its
    confirmation posts here again with that count."""
    form = await request.form()
    check_form_texts(form)
    ids: list[int] = []
    for value in form.getlist("message_ids"):
        if not isinstance(value, str) or not value.isdigit() or int(value) > MAX_ID:
            raise AppError("invalid_selection", _("The selection names an unknown message."), 422)
        ids.append(int(value))
    action, reason = _form_text(form, "action"), _form_text(form, "reason")
    expected_count = _form_text(form, "expected_count")
    if action == "delete" and not expected_count.isdigit():
        return _confirm_bulk_delete_page(request, db, ids, reason)
    try:
        outcomes = service.bulk_action(
            db,
            moderator,
            ids,
            action=action,
            reason=reason or None,
            expected_count=int(expected_count) if expected_count.isdigit() else None,
        )
    except AppError as error:
        if error.code != "subtree_changed":
            raise
        return _confirm_bulk_delete_page(request, db, ids, reason, error)
    done = sum(1 for outcome in outcomes.values() if outcome == "ok")
    query = urlencode({"bulk_done": done, "bulk_failed": len(outcomes) - done})
    return RedirectResponse(f"/moderation/queue?{query}", status_code=303)


# --- users -----------------------------------------------------------------------------


def _user_page_url(user_id: int) -> str:
    return f"/moderation/users/{user_id}"


@router.get("/moderation/users/{user_id}")
def user_page(request: Request, user_id: Id, db: SessionDep, moderator: ModeratorUser) -> Response:
    detail = service.user_detail(db, user_id)
    return render(
        request,
        "moderation/user.html",
        {"detail": detail, "roles": [role.value for role in Role]},
    )


@router.post("/moderation/users/{user_id}/disable")
def disable(
    user_id: Id, db: SessionDep, moderator: ModeratorUser, reason: FormText = ""
) -> Response:
    service.disable_user(db, moderator, user_id, reason=reason)
    return _back("", _user_page_url(user_id))


@router.post("/moderation/users/{user_id}/enable")
def enable(
    user_id: Id, db: SessionDep, moderator: ModeratorUser, reason: FormText = ""
) -> Response:
    service.enable_user(db, moderator, user_id, reason=reason)
    return _back("", _user_page_url(user_id))


@router.post("/moderation/users/{user_id}/notes")
def add_note(
    user_id: Id, db: SessionDep, moderator: ModeratorUser, text: FormText = ""
) -> Response:
    service.add_note(db, moderator, user_id, text=text)
    return _back("", _user_page_url(user_id))


# --- trollboard, audit, status ---------------------------------------------------------


@router.get("/moderation/trollboard")
def trollboard_page(
    request: Request,
    db: SessionDep,
    moderator: ModeratorUser,
    window: str = "week",
    sort: str = "score",
) -> Response:
    rows = service.trollboard(db, window=window, sort=sort)
    return render(
        request,
        "moderation/trollboard.html",
        {
            "rows": rows,
            "window": window,
            "windows": list(service.TROLLBOARD_WINDOWS),
            "sort": sort,
            "weights": TROLL_WEIGHTS,
            "priors": service.estimate_priors(),
        },
        block="board",
    )


@router.get("/moderation/audit")
def audit_page(
    request: Request,
    db: SessionDep,
    moderator: ModeratorUser,
    actor: Text = Query("", max_length=32),
    action: Text = Query("", max_length=64),
    target_type: Text = Query("", max_length=32),
    target_id: Id | None = None,
    page: PageNumber = 1,
) -> Response:
    rows, has_next = service.audit_log(
        db, actor=actor, action=action, target_type=target_type, target_id=target_id, page=page
    )
    filters = {"actor": actor, "action": action, "target_type": target_type}
    if target_id is not None:
        filters["target_id"] = str(target_id)
    return render(
        request,
        "moderation/audit.html",
        {
            "rows": rows,
            "page": page,
            "has_next": has_next,
            "filters": filters,
            "actions": service.queries.audit_actions(db),
        },
        block="events",
    )


@router.get("/moderation/status")
def status_page(request: Request, db: SessionDep, moderator: ModeratorUser) -> Response:
    return render(request, "moderation/status.html", {"status": service.platform_status(db)})
