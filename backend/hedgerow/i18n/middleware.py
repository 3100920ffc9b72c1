"""Negotiates each request's interface language before anything else reads it (pure ASGI)."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hedgerow.config import get_settings
from hedgerow.i18n.negotiation import LANGUAGE_COOKIE, negotiate
from hedgerow.i18n.translation import begin_request


class LanguageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        language = begin_request(
            negotiate(
                cookie=cookies.get(LANGUAGE_COOKIE),
                accept_language=headers.get("accept-language"),
                default=get_settings().default_language,
            )
        )

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                # The user's setting may have changed it since the start of the request.
                response_headers["content-language"] = language.code
                response_headers.add_vary_header("Accept-Language")
                response_headers.add_vary_header("Cookie")
            await send(message)

        await self.app(scope, receive, send_with_language)
