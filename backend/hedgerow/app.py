"""create_app(): middleware, routers, error handlers."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hedgerow.accounts.auth_cache import CACHE as AUTH_CACHE
from hedgerow.accounts.security import (
    CSRF_COOKIE,
    bearer_token,
    csrf_token_is_valid,
    new_csrf_token,
    verify_csrf,
)
from hedgerow.config import Settings, get_settings
from hedgerow.error_handlers import EXCEPTION_HANDLERS
from hedgerow.i18n.middleware import LanguageMiddleware
from hedgerow.logs import RequestContextMiddleware, configure_logging
from hedgerow.metrics import MetricsMiddleware
from hedgerow.openapi import build_openapi
from hedgerow.ops.admission import TaskAdmissionMiddleware
from hedgerow.ops.api_docs import OPENAPI_URL
from hedgerow.ops.request_body import RequestBodyMiddleware
from hedgerow.ops.security_headers import SecurityHeadersMiddleware
from hedgerow.templating import STATIC_DIR, VENDOR_DIR


class CsrfCookieMiddleware:
    """Puts the signed CSRF token on request.state and, when the browser had none (or a
    bad one), in a cookie on the response.

    Plain ASGI rather than BaseHTTPMiddleware, and nothing at all for API-key requests,
    which carry no ambient credentials: this runs on every task hand-out.
    """

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if bearer_token(connection) is not None:
            connection.state.csrf_token = None
            await self.app(scope, receive, send)
            return
        token = connection.cookies.get(CSRF_COOKIE)
        fresh = not csrf_token_is_valid(token)
        if fresh:
            token = new_csrf_token()
        connection.state.csrf_token = token

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                carrier = Response()
                carrier.set_cookie(
                    CSRF_COOKIE,
                    token or "",
                    httponly=False,  # htmx reads it from the page, not the cookie; harmless
                    samesite="lax",
                    secure=self.secure,
                    path="/",
                )
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", carrier.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_with_cookie)


FAVICON = STATIC_DIR / "favicon.ico"


def favicon() -> FileResponse:
    """Browsers ask for /favicon.ico whatever icon the page links (base.html links the SVG)."""
    return FileResponse(
        FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Hedgerow",
        version="0.1.0",
        description="Crowdsourced conversation trees: the volunteer API.",
        docs_url=None,  # hedgerow.ops.api_docs serves it, within the CSP
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        # Every state-changing request made with cookies must carry the CSRF token.
        dependencies=[Depends(verify_csrf)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    if settings.auth_cache_seconds > 0 and settings.redis_url:
        AUTH_CACHE.listening()  # subscribe now, so the first requests can use the cache

    # The last added runs first: request ids and the access log around everything; each body
    # read whole (or refused) before admission and the app; task slots taken after that.
    app.add_middleware(CsrfCookieMiddleware, secure=settings.cookies_secure)
    app.add_middleware(TaskAdmissionMiddleware, limit=settings.task_requests_in_flight)
    app.add_middleware(
        RequestBodyMiddleware,
        limit=settings.request_body_limit,
        timeout_seconds=settings.body_timeout_seconds,
    )
    # Before anything reads it: errors from the middlewares inside are in the request's
    # language too.
    app.add_middleware(LanguageMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # Around everything else, so the answers refused early (413, 408, 503) carry them too.
    app.add_middleware(SecurityHeadersMiddleware)
    # Outermost: the time counted is what the client waited, admission queueing included.
    app.add_middleware(MetricsMiddleware)

    app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR, check_dir=False), "vendor")
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), "static")
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)

    from hedgerow.accounts import api as accounts_api
    from hedgerow.accounts import email_routes, language_routes, oauth_routes
    from hedgerow.accounts import routes as accounts_routes
    from hedgerow.admin import api as admin_api
    from hedgerow.admin import routes as admin_routes
    from hedgerow.chat import api as chat_api
    from hedgerow.chat import arena_routes
    from hedgerow.chat import routes as chat_routes
    from hedgerow.contribute import api as contribute_api
    from hedgerow.contribute import routes as contribute_routes
    from hedgerow.export import api as export_api
    from hedgerow.export import routes as export_routes
    from hedgerow.mail import routes as mail_routes
    from hedgerow.moderation import api as moderation_api
    from hedgerow.moderation import routes as moderation_routes
    from hedgerow.ops import api_docs
    from hedgerow.ops import routes as ops_routes
    from hedgerow.reactions import api as reactions_api
    from hedgerow.reactions import routes as reactions_routes
    from hedgerow.stats import routes as stats_routes
    from hedgerow.training import api as training_api
    from hedgerow.training import routes as training_routes
    from hedgerow.trees import routes as trees_routes

    app.include_router(ops_routes.router)
    app.include_router(api_docs.router)
    app.include_router(accounts_routes.router)
    app.include_router(language_routes.router)
    app.include_router(email_routes.router)
    app.include_router(oauth_routes.router)
    app.include_router(accounts_api.router, prefix="/api/v1")
    app.include_router(admin_routes.router)
    app.include_router(admin_api.router, prefix="/api/v1")
    app.include_router(contribute_api.router, prefix="/api/v1")
    app.include_router(moderation_routes.router)
    app.include_router(moderation_api.router, prefix="/api/v1")
    app.include_router(trees_routes.router)
    app.include_router(reactions_routes.router)
    app.include_router(reactions_api.router, prefix="/api/v1")
    app.include_router(contribute_routes.router)
    app.include_router(stats_routes.router)
    app.include_router(export_routes.router)
    app.include_router(export_api.router, prefix="/api/v1")
    app.include_router(training_routes.router)
    app.include_router(training_api.router, prefix="/api/v1")
    app.include_router(chat_api.router, prefix="/api/v1")
    app.include_router(chat_routes.router)
    app.include_router(arena_routes.router)
    app.include_router(mail_routes.router)
    return app
