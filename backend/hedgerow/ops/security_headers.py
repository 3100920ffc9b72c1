"""Security headers on every response: a strict Content-Security-Policy, no MIME sniffing,
no cross-site referrers.

The policy allows scripts, styles and images only from our own origin (plus data: images,
which the API docs' stylesheet uses for its icons), so text that slips past escaping cannot
run a script, load one from elsewhere, or restyle the page into a phishing form. Templates
therefore carry no inline scripts, inline styles or `on*=` attributes; htmx reads its
config from a <meta> tag and is told not to inject its indicator <style> (app.css has the
rules instead). `frame-ancestors 'none'` stops other sites framing our pages to click-jack
the moderation and admin buttons.

`form-action` is left out on purpose: it also governs where a form's redirect may lead,
and signing in with an OAuth provider is a form POST answered by a redirect to the
provider's origin.

Plain ASGI: it runs on every response, task hand-outs included. The headers go on every
response, not only HTML ones, since an error body or an uploaded-looking JSON file is as
much a target for sniffing as a page is; a response that sets its own header keeps it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
