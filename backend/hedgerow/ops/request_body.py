"""Every request body is read whole, within a size limit and a deadline, before the app
runs.

Left to the app, the client decides how long a request holds what it took on arrival and
how much memory it fills: FastAPI buffers a whole body before any check of ours runs (an
anonymous 300 MB upload grew a web worker by 1.4 GB, which the process kept), and four
clients sending one byte every two seconds held every task slot for as long as they liked.
Here the body is counted as it streams in. Past the route's limit the answer is 413 at once
(a declared Content-Length over it before a byte is read); a body not complete within the
deadline gets 408. Both close the connection: the unread rest of the body would otherwise
be taken for the next request. The app then gets the body replayed from memory, so
nothing it holds (a task slot, a database connection) waits on a client's upload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hedgerow.i18n import gettext as _


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length, or None when the body is chunked (or the value is not a number:
    the server refuses those before the app sees them)."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _may_have_a_body(scope: Scope) -> bool:
    # HTTP/1.1 has a body only with a Content-Length or a Transfer-Encoding; without them
    # the server hands the app an empty one, and there is nothing to wait for.
    return any(
        name in (b"content-length", b"transfer-encoding") for name, _ in scope.get("headers") or ()
    )


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then the server's own receive (which reports a client that
    disconnects, for the streaming responses that watch for it)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    """The app's JSON error shape, answered from here (the app never ran), closing the
    connection."""
    payload = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestBodyMiddleware:
    """Reads each body within `limit` bytes and `timeout_seconds` before calling the app.

    `larger_limits` maps path patterns (regular expressions, matched whole) to the limit of
    the routes that need more than `limit`: a route that takes uploads names itself there,
    and every other route keeps the small limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        timeout_seconds: float,
        larger_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.timeout_seconds = timeout_seconds
        self.larger_limits = [
            (re.compile(pattern), size) for pattern, size in (larger_limits or {}).items()
        ]

    def limit_for(self, path: str) -> int:
        for pattern, size in self.larger_limits:
            if pattern.fullmatch(path):
                return size
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_a_body(scope):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        too_large = _("The request body is over %(limit)s bytes.", limit=limit)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, "payload_too_large", too_large)
            return
        try:
            with anyio.fail_after(self.timeout_seconds):
                body = await _read_body(receive, limit)
        except TimeoutError:
            message = _(
                "The request body did not arrive within %(seconds)s seconds.",
                seconds=f"{self.timeout_seconds:g}",
            )
            await _refuse(send, 408, "request_timeout", message)
            return
        except _BodyTooLarge:
            await _refuse(send, 413, "payload_too_large", too_large)
            return
        except _ClientGone:
            return  # nobody to answer
        await self.app(scope, _replaying(body, receive), send)
