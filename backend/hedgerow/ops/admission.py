"""Admission control for the requests that lock growth rows: asking for a task, submitting
one and skipping one.

A sync endpoint runs on one of anyio's worker threads (40 by default) while holding row
locks on the tree and messages it works on. With dozens of requests in one process, those
threads share one GIL: every database round trip of a lock holder waits its turn for the
interpreter, the lock is held that much longer, and requests for the same tree queue behind
it. Letting only a few of these requests into a process at a time, and keeping the rest
waiting (first come, first served) in the event loop where they hold nothing, keeps each
transaction short.

Only those three take a slot. Hand-out and submission lock the tree and its messages; a
skip gives its child slot back under the same locks. Everything else a volunteer's page
sends is not held, so that it never waits behind them: the Markdown preview and the
language check (fired while the volunteer types; they touch no database row), draft
autosave (the volunteer's own task row; the tree only when an expired lease is taken up
again, which is rare), the task page and the counts of available work (reads). Other
pages, downloads and streaming chat are not limited either.
"""

from __future__ import annotations

import asyncio
import re

from starlette.types import ASGIApp, Receive, Scope, Send

# POST /tasks and /api/v1/tasks (ask for a task), .../tasks/{id}/submit and .../skip.
LOCKING_TASK_REQUEST = re.compile(r"/(?:api/v1/)?tasks(?:/\d+/(?:submit|skip))?")


def takes_a_slot(scope: Scope) -> bool:
    """Whether the request asks for, submits or skips a task (the growth row lockers)."""
    return (
        scope["type"] == "http"
        and scope.get("method") == "POST"
        and LOCKING_TASK_REQUEST.fullmatch(str(scope.get("path", ""))) is not None
    )


class TaskAdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        # Created on first use, inside the server's event loop.
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit <= 0 or not takes_a_slot(scope):
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._semaphore:
            await self.app(scope, receive, send)
