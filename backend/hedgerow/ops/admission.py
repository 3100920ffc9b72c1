"""Admission control for the task hand-out and submission paths.

A sync endpoint runs on one of anyio's worker threads (40 by default) while holding row
locks on the tree and messages it works on. With dozens of requests in one process, those
threads share one GIL: every database round trip of a lock holder waits its turn for the
interpreter, the lock is held that much longer, and requests for the same tree queue behind
it. Letting only a few task requests into a process at a time, and keeping the rest waiting
(first come, first served) in the event loop where they hold nothing, keeps each
transaction short. Other paths (pages, downloads, streaming chat) are not limited.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

TASK_PATH_PREFIXES = ("/api/v1/tasks", "/tasks")


class TaskAdmissionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        prefixes: tuple[str, ...] = TASK_PATH_PREFIXES,
    ) -> None:
        self.app = app
        self.limit = limit
        self.prefixes = prefixes
        # Created on first use, inside the server's event loop.
        self._semaphore: asyncio.Semaphore | None = None

    def _admits_freely(self, scope: Scope) -> bool:
        return (
            self.limit <= 0
            or scope["type"] != "http"
            or not str(scope.get("path", "")).startswith(self.prefixes)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._admits_freely(scope):
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._semaphore:
            await self.app(scope, receive, send)
