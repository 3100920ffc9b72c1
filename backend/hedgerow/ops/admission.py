"""Admission control for the requests that lock growth rows: asking for a task, submitting
one and skipping one.

A sync endpoint runs on one of anyio's worker threads (40 by default) while holding row
locks on the tree and messages it works on. With dozens of requests in one process, those
threads share one GIL: every database round trip of a lock holder waits its turn for the
interpreter, the lock is held that much longer, and requests for the same tree queue behind
it. Letting only a few of these requests into a process at a time, and keeping the rest
waiting (first come, first served) in the event loop where they hold nothing, keeps each
transaction short.

A request takes its slot only once it has everything it needs to do its work: its body has
been read (RequestBodyMiddleware, outside this one, reads it whole first) and its user is
authenticated (the slot is a dependency of the authenticated user). A client that sends
its body slowly, or sends no credentials, never holds a slot, and a request that has to
queue gives its database connection back first. The slot is given back when the response
has been sent, after the request's transaction committed.

Only the routes that declare ``SlottedContributor`` take a slot: hand-out and submission
lock the tree and its messages; a skip gives its child slot back under the same locks.
Everything else a volunteer's page sends is not held, so that it never waits behind them:
the Markdown preview and the language check (fired while the volunteer types; they touch no
database row), draft autosave (the volunteer's own task row; the tree only when an expired
lease is taken up again, which is rare), the task page and the counts of available work
(reads). Other pages, downloads and streaming chat are not limited either.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from hedgerow.accounts.security import ContributorUser
from hedgerow.db import SessionDep
from hedgerow.models import User

# Where a request's claim on a slot travels from the middleware to the dependency.
CLAIM_STATE_KEY = "task_slot_claim"


class TaskSlots:
    """The slots of one web process; `limit` of them (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0  # requests queued for a slot
        # Created on first use, inside the server's event loop.
        self._semaphore: asyncio.Semaphore | None = None

    def all_taken(self) -> bool:
        return self._semaphore is not None and self._semaphore.locked()

    async def acquire(self) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1

    def release(self) -> None:
        assert self._semaphore is not None, "released a slot that was never taken"
        self._semaphore.release()


class SlotClaim:
    """One request's right to take a slot once; whatever it took goes back at the end."""

    def __init__(self, slots: TaskSlots) -> None:
        self._slots = slots
        self._held = False

    def would_wait(self) -> bool:
        return not self._held and self._slots.all_taken()

    async def take(self) -> None:
        if not self._held:
            await self._slots.acquire()
            self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


class TaskAdmissionMiddleware:
    """Gives each request a claim on this process's task slots and takes back whatever slot
    the claim took once the response is sent. The slot itself is taken by
    ``take_task_slot``, after the body has been read and the user authenticated."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.slots = TaskSlots(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.slots.limit <= 0:
            await self.app(scope, receive, send)
            return
        claim = SlotClaim(self.slots)
        scope.setdefault("state", {})[CLAIM_STATE_KEY] = claim
        try:
            await self.app(scope, receive, send)
        finally:
            claim.give_back()


async def take_task_slot(request: Request, db: SessionDep, user: ContributorUser) -> User:
    """The contributor, once this request holds a task slot: authentication (and the
    request's body) come first, so no anonymous or half-sent request waits in or holds a
    slot. Without the middleware (no limit) there is nothing to wait for."""
    claim: SlotClaim | None = request.scope.get("state", {}).get(CLAIM_STATE_KEY)
    if claim is None:
        return user
    if claim.would_wait() and db.in_transaction():
        # Queue holding nothing: end the authentication's transaction (its reads, and at
        # most an API key's last-used time) so that its connection goes back to the pool.
        # Dozens of queued requests would otherwise hold as many connections, idle in a
        # transaction. The request's own work starts a new one once it has its slot.
        await run_in_threadpool(db.commit)
    await claim.take()
    return user


SlottedContributor = Annotated[User, Depends(take_task_slot)]
