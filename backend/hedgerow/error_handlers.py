"""One error value, rendered as JSON (the API), an htmx toast (HX-Request), a redirect to
the page that fixes it, or a full HTML page (plain browser requests); create_app()
installs the handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from hedgerow.accounts.security import user_for_error_page
from hedgerow.errors import AppError
from hedgerow.i18n.translation import gettext as _
from hedgerow.i18n.translation import use_user_language
from hedgerow.templating import templates

log = logging.getLogger(__name__)


# Read by programs, not people: errors there are JSON whatever the client accepts (a
# Prometheus scraper sends `Accept: text/plain`, and a login page would mean nothing to it).
MACHINE_PATHS = ("/api/", "/metrics")


def wants_json(request: Request) -> bool:
    if request.url.path.startswith(MACHINE_PATHS):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


# Browser errors a person fixes on another page: log in, or accept the Terms.
REDIRECT_PAGES = {"not_authenticated": "/login", "tos_required": "/tos"}


def _same_site_path(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/") and not path.startswith("//") else None


def _page_to_return_to(request: Request) -> str:
    """Where the person was headed, for ``?next=`` after logging in or accepting the Terms.

    htmx calls name the page in HX-Current-URL (the fragment URL is no page to return to);
    a plain form POST cannot be repeated by a GET, so it returns to the page the form was
    on.
    """
    if request.headers.get("hx-request") == "true":
        return _same_site_path(request.headers.get("hx-current-url")) or "/"
    if request.method not in ("GET", "HEAD"):
        return _same_site_path(request.headers.get("referer")) or "/"
    return _same_site_path(str(request.url)) or "/"


def _redirect(request: Request, error: AppError) -> Response | None:
    page = REDIRECT_PAGES.get(error.code)
    if page is None:
        return None
    location = f"{page}?{urlencode({'next': _page_to_return_to(request)})}"
    if request.headers.get("hx-request") == "true":
        # htmx follows a 303 inside the XHR and would swap the login page into a
        # fragment; HX-Redirect makes it load the page instead.
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def render_error(request: Request, error: AppError) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"error": {"code": error.code, "message": error.message}}
        if error.details:
            body["error"]["details"] = error.details
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    if (redirect := _redirect(request, error)) is not None:
        return redirect

    context = {"error": error}
    if request.headers.get("hx-request") == "true":
        # htmx does not swap 4xx responses by default: retarget the toast region and let
        # the page keep everything the volunteer typed.
        response = templates.TemplateResponse(
            request, "components/toast.html", context, status_code=error.status
        )
        response.headers["HX-Retarget"] = "#toasts"
        response.headers["HX-Reswap"] = "beforeend"
    else:
        response = templates.TemplateResponse(
            request, "errors/error.html", context, status_code=error.status
        )
    response.headers.update(error.headers)
    return response


def _renders_a_page(request: Request, error: AppError) -> bool:
    return not (
        wants_json(request)
        or request.headers.get("hx-request") == "true"
        or error.code in REDIRECT_PAGES
    )


async def render_error_page(request: Request, error: AppError) -> Response:
    """render_error, with the logged-in user looked up first when the request failed before
    anything resolved it: an error page shows the navigation of whoever is logged in."""
    if _renders_a_page(request, error) and "user" not in request.state._state:
        request.state.user = await run_in_threadpool(user_for_error_page, request)
        if request.state.user is not None:
            use_user_language(request.state.user)
    return render_error(request, error)


async def app_error(request: Request, exc: AppError) -> Response:
    return await render_error_page(request, exc)


TEXT_PROBLEMS = frozenset(
    {"text_contains_nul", "text_contains_control_character", "text_not_unicode", "string_unicode"}
)


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = [
        {
            "field": ".".join(str(p) for p in err["loc"][1:]),
            "code": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
    # Text refused for what it holds (hedgerow.text.Text) keeps the code the domain's own
    # text checks use.
    only_text = all(p["code"] in TEXT_PROBLEMS for p in problems)
    return await render_error_page(
        request,
        AppError(
            "invalid_text" if only_text else "invalid_request",
            # The problems are pydantic's own words, in English: data for the developer.
            _("The request is not valid: %(problems)s", problems=summary),
            422,
            details={"problems": problems},
        ),
    )


HTTP_ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    401: "not_authenticated",
    403: "forbidden",
    413: "too_large",
}


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    # Starlette's details are English phrases ("Method Not Allowed"): say it ourselves.
    messages = {
        404: _("That page does not exist."),
        405: _("This address does not accept that kind of request."),
        401: _("Log in or send a valid API key."),
        403: _("You are not allowed to do that."),
        413: _("The request is too large."),
    }
    message = messages.get(exc.status_code, _("The request failed."))
    return await render_error_page(
        request, AppError(code, message, exc.status_code, headers=dict(exc.headers or {}))
    )


async def value_the_database_refused(request: Request, exc: DataError) -> Response:
    # A safety net, not the rule: route parameters and schemas use hedgerow.inputs, so
    # this means one of them does not yet. The database refused a value (a number past
    # 64 bits, a NUL character), which is the client's input, not our failure.
    log.warning(
        "unvalidated input reached the database on %s %s: %s",
        request.method,
        request.url.path,
        type(exc.orig).__name__,
    )
    return render_error(
        request,
        AppError(
            "invalid_value",
            _(
                "The request holds a value that cannot be stored "
                "(a number past 64 bits or a NUL character)."
            ),
            422,
        ),
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return await render_error_page(
        request,
        AppError("internal_error", _("Something went wrong on our side; it was logged."), 500),
    )


ExceptionHandler = Callable[[Request, Any], Coroutine[Any, Any, Response]]

# What create_app() registers: every error a request can end in, rendered by render_error.
EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler] = {
    AppError: app_error,
    RequestValidationError: validation_error,
    StarletteHTTPException: http_error,
    DataError: value_the_database_refused,
    Exception: unexpected_error,
}
