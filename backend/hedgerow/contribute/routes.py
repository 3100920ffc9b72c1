"""Volunteer task pages. Thin: every rule lives in hedgerow.growth.

One task at a time. Every form works without JavaScript (POST, then 303 to the next task);
htmx requests get the ``task`` block of the same template, the next task swapped in place.
On any error the volunteer's input is shown again with the message next to it; the service
call runs in a savepoint so a refused submission changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from hedgerow.accounts.security import ContributorUser
from hedgerow.config import get_settings
from hedgerow.contribute import forms, queries
from hedgerow.contribute.guidelines import all_guidelines, get_guideline, guideline_for_kind
from hedgerow.contribute.language import language_mismatch
from hedgerow.db import SessionDep
from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.growth.schemas import (
    RANKING_GRADES,
    RANKING_KINDS,
    REVIEW_KINDS,
    REVIEW_MODES,
    TaskView,
)
from hedgerow.i18n import gettext as _
from hedgerow.i18n import lazy_gettext
from hedgerow.inputs import Id, Text, check_form_texts
from hedgerow.languages import language_name
from hedgerow.markdown import render_markdown
from hedgerow.models import TaskState, User
from hedgerow.ops.admission import SlottedContributor
from hedgerow.reactions import service as reactions
from hedgerow.stats import service as stats_service
from hedgerow.templating import is_htmx, render
from hedgerow.trees.states import CATEGORY_TITLES

router = APIRouter(include_in_schema=False)

KIND_TITLES = {
    "write_prompt": lazy_gettext("Write a prompt"),
    "reply_assistant": lazy_gettext("Reply as the assistant"),
    "reply_prompter": lazy_gettext("Reply as the prompter"),
    "review_prompt": lazy_gettext("Review a prompt"),
    "review_prompter_reply": lazy_gettext("Review a prompter reply"),
    "review_assistant_reply": lazy_gettext("Review an assistant reply"),
    "rank_assistant_replies": lazy_gettext("Rank assistant replies"),
    "rank_prompter_replies": lazy_gettext("Rank prompter replies"),
}
GRADE_TITLES = {
    "much_better": lazy_gettext("much better"),
    "better": lazy_gettext("better"),
    "slightly_better": lazy_gettext("slightly better"),
    "about_same": lazy_gettext("about the same"),
}
SAVED_NOTICE = lazy_gettext("Thank you, that was saved.")
SUBMITTED_NOTICE = lazy_gettext("Thank you, that was saved. Here is your next task.")
T = TypeVar("T")


async def _form(request: Request) -> FormData:
    form = await request.form()
    check_form_texts(form)
    return form


TaskForm = Annotated[FormData, Depends(_form)]


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def in_savepoint(db: Session, action: Callable[[], T]) -> T:
    """Run a service call so that an AppError leaves the database as it was."""
    with db.begin_nested():
        return action()


def _review_mode(raw: str | None) -> Any:
    return raw if raw in REVIEW_MODES else "full"


def _task_url(task_id: int, review_mode: str | None = None) -> str:
    return f"/tasks/{task_id}" + ("?mode=quick" if review_mode == "quick" else "")


def _task_context(
    view: TaskView,
    *,
    values: dict[str, Any] | None = None,
    error: AppError | None = None,
    notice: str | None = None,
    next_kind: str = "any",
    asked_kind: str | None = None,
) -> dict[str, Any]:
    values = {k: str(v) for k, v in (values or view.draft or {}).items()}
    settings = get_settings()
    lease_expired = view.state == TaskState.expired or view.lease_expires_at <= datetime.now(UTC)
    return {
        "view": view,
        "kind_title": KIND_TITLES.get(view.kind, view.kind),
        "is_review": view.kind in REVIEW_KINDS,
        "is_ranking": view.kind in RANKING_KINDS,
        "is_writing": view.kind not in REVIEW_KINDS and view.kind not in RANKING_KINDS,
        "guideline": guideline_for_kind(view.kind),
        "values": values,
        "error": error,
        "notice": notice,
        "next_kind": next_kind,
        "asked_kind": asked_kind if asked_kind != view.kind else None,
        "kind_titles": KIND_TITLES,
        "language_name": language_name(view.language),
        "max_text_length": settings.max_text_length,
        "category_titles": CATEGORY_TITLES,
        "positions": forms.initial_positions(view, values),
        "replies_by_id": {reply.id: reply for reply in view.replies},
        "grades": RANKING_GRADES,
        "grade_titles": GRADE_TITLES,
        "lease_expired": lease_expired,
        "target_id": view.conversation[-1].id if view.conversation else None,
        # Where a page opened from this task (a report without JavaScript) returns to.
        "task_url": _task_url(view.id, view.review_mode),
    }


def _task_page(
    request: Request,
    db: Session,
    user: User,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    conversation = context["view"].conversation
    bars = reactions.bars_for(
        db,
        user,
        [message.id for message in conversation],
        reactable=[message.id for message in conversation if not message.by_you],
    )
    response = render(
        request,
        "contribute/task.html",
        {"user": user, "reaction_bars": bars, **context},
        block="task",
        status_code=status_code,
    )
    if status_code >= 400 and is_htmx(request):
        # Swap the panel with the error in it (app.js swaps responses that retarget).
        response.headers["HX-Retarget"] = "#task-panel"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


def _no_task_page(request: Request, user: User, kind: str, notice: str | None) -> Response:
    return render(
        request,
        "contribute/task.html",
        {
            "user": user,
            "view": None,
            "wanted_kind": kind,
            "notice": notice,
            "kind_titles": KIND_TITLES,
        },
        block="task",
    )


def _next_task(
    request: Request,
    db: Session,
    user: User,
    *,
    kind: str,
    review_mode: str | None,
    notice: str | None = None,
) -> Response:
    """Lease the next task and show it: in place for htmx, else by a 303 to its page."""
    kind = kind if kind in KIND_TITLES else "any"
    try:
        view = in_savepoint(
            db,
            lambda: service.request_task(
                db, user, language=user.language, kind=kind, review_mode=_review_mode(review_mode)
            ),
        )
    except AppError as error:
        if error.code != "no_task_available":
            raise
        if is_htmx(request):
            return _no_task_page(request, user, kind, str(SAVED_NOTICE) if notice else None)
        return see_other("/dashboard?" + urlencode({"empty": kind}))
    # The volunteer asked for one kind but holds a task of another: they get their task
    # back, told so, with a way to skip it to the kind they asked for.
    asked_kind = kind if view.resumed and kind not in ("any", view.kind) else None
    if not is_htmx(request):
        params = {"next": kind} | ({"mode": "quick"} if view.review_mode == "quick" else {})
        params |= {"asked": asked_kind} if asked_kind else {}
        return see_other(
            f"/tasks/{view.id}?" + urlencode(params | ({"done": "1"} if notice else {}))
        )
    context = _task_context(view, notice=notice, next_kind=kind, asked_kind=asked_kind)
    response = _task_page(request, db, user, context)
    response.headers["HX-Push-Url"] = _task_url(view.id, view.review_mode)
    return response


def _open_view(db: Session, user: User, task_id: int, review_mode: str | None) -> TaskView:
    task = service.own_task(db, user, task_id)
    return service.task_view(db, task, user, resumed=True, review_mode=_review_mode(review_mode))


# --- the dashboard ------------------------------------------------------------------


@router.get("/dashboard")
def dashboard(
    request: Request, db: SessionDep, user: ContributorUser, empty: str | None = None
) -> Response:
    counts = service.available_task_counts(db, user, user.language)
    context = {
        "user": user,
        "counts": counts,
        "current_task": queries.current_task(db, user.id, datetime.now(UTC)),
        "kind_titles": KIND_TITLES,
        "empty": (empty if empty in KIND_TITLES else "any") if empty else None,
        "summary": stats_service.user_summary(db, user),
        "today_top": stats_service.top_contributors(db, period="day", limit=5),
        "language_name": language_name(user.language),
    }
    return render(request, "contribute/dashboard.html", context)


# --- tasks --------------------------------------------------------------------------


@router.post("/tasks")
def start_task(
    request: Request,
    db: SessionDep,
    user: SlottedContributor,
    kind: Annotated[Text, Form()] = "any",
    review_mode: Annotated[Text, Form()] = "full",
) -> Response:
    """Your current task if you hold one, else a new one of `kind`."""
    return _next_task(request, db, user, kind=kind, review_mode=review_mode)


@router.get("/tasks/{task_id}")
def task_page(
    request: Request,
    task_id: Id,
    db: SessionDep,
    user: ContributorUser,
    mode: str | None = None,
    next: Text = "any",
    done: str | None = None,
    asked: str | None = None,
) -> Response:
    view = _open_view(db, user, task_id, mode)
    if view.state in (TaskState.done, TaskState.skipped):
        return see_other("/dashboard")
    notice = str(SUBMITTED_NOTICE) if done else None
    asked_kind = asked if asked in KIND_TITLES else None
    context = _task_context(view, notice=notice, next_kind=next, asked_kind=asked_kind)
    return _task_page(request, db, user, context)


@router.post("/tasks/{task_id}/submit")
def submit_task(
    request: Request, task_id: Id, db: SessionDep, user: SlottedContributor, form: TaskForm
) -> Response:
    values = forms.form_values(form)
    next_kind = str(form.get("next_kind") or "any")
    view = _open_view(db, user, task_id, values.get("mode"))
    try:
        submission = forms.submission_from_form(view, values)
        in_savepoint(db, lambda: service.submit_task(db, user, task_id, submission))
    except AppError as error:
        view = _open_view(db, user, task_id, values.get("mode"))
        context = _task_context(view, values=values, error=error, next_kind=next_kind)
        return _task_page(request, db, user, context, status_code=error.status)
    return _next_task(
        request,
        db,
        user,
        kind=next_kind,
        review_mode=view.review_mode,
        notice=str(SUBMITTED_NOTICE),
    )


@router.post("/tasks/{task_id}/skip")
def skip_task(
    request: Request, task_id: Id, db: SessionDep, user: SlottedContributor, form: TaskForm
) -> Response:
    next_kind = str(form.get("next_kind") or "any")
    reason = str(form.get("reason") or "")
    service.skip_task(db, user, task_id, reason)
    return _next_task(
        request, db, user, kind=next_kind, review_mode=str(form.get("mode") or "full")
    )


@router.post("/tasks/{task_id}/report/{message_id}")
def report_reply(
    request: Request,
    task_id: Id,
    message_id: Id,
    db: SessionDep,
    user: ContributorUser,
    form: TaskForm,
) -> Response:
    """Red-flag a reply from inside a ranking; enough flags remove it from the set."""
    view = _open_view(db, user, task_id, None)
    if message_id not in {reply.id for reply in view.replies}:
        raise AppError("not_in_task", _("That reply is not part of this task."), 404)
    service.record_red_flag(db, user, message_id)
    view = _open_view(db, user, task_id, None)
    notice = _("Thank you: the reply was reported to the moderators.")
    context = _task_context(view, notice=notice, next_kind=str(form.get("next_kind") or "any"))
    return _task_page(request, db, user, context)


# --- writing helpers (htmx fragments) -----------------------------------------------


@router.post("/tasks/preview")
def preview(request: Request, user: ContributorUser, form: TaskForm) -> Response:
    return render(
        request,
        "contribute/fragments.html",
        {"preview_html": render_markdown(str(form.get("text") or ""))},
        block="preview",
    )


@router.post("/tasks/language-check")
def language_check(request: Request, user: ContributorUser, form: TaskForm) -> Response:
    chosen = str(form.get("language") or user.language)
    found = language_mismatch(str(form.get("text") or ""), chosen)
    return render(
        request,
        "contribute/fragments.html",
        {
            "detected": found,
            "detected_name": language_name(found),
            "chosen_name": language_name(chosen),
        },
        block="language_warning",
    )


# --- guidelines ---------------------------------------------------------------------


@router.get("/guidelines")
def guidelines_index(request: Request) -> Response:
    return render(request, "contribute/guidelines.html", {"guidelines": all_guidelines()})


@router.get("/guidelines/{name}")
def guideline_page(request: Request, name: str) -> Response:
    return render(
        request,
        "contribute/guideline.html",
        {"guideline": get_guideline(name), "guidelines": all_guidelines()},
    )
