"""Domain errors carry a machine code, a human message and an HTTP status.

One handler renders the same error as JSON (the API), an htmx toast (HX-Request) or a full
HTML page (plain browser requests).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}
        self.headers = headers or {}


class NotFound(AppError):
    def __init__(self, what: str = "page") -> None:
        super().__init__("not_found", f"That {what} does not exist.", 404)


class Forbidden(AppError):
    def __init__(self, message: str = "You are not allowed to do that.") -> None:
        super().__init__("forbidden", message, 403)


class NotAuthenticated(AppError):
    def __init__(self, message: str = "Log in or send a valid API key.") -> None:
        super().__init__("not_authenticated", message, 401)


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
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

    from hedgerow.templating import templates

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"][1:]), "message": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
        return render_error(
            request,
            AppError(
                "invalid_request",
                f"The request is not valid: {summary}",
                422,
                details={"problems": problems},
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {
            404: "not_found",
            405: "method_not_allowed",
            401: "not_authenticated",
            403: "forbidden",
            413: "too_large",
        }
        code = codes.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = "That page does not exist."
        return render_error(
            request, AppError(code, message, exc.status_code, headers=dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(
            request,
            AppError("internal_error", "Something went wrong on our side; it was logged.", 500),
        )
