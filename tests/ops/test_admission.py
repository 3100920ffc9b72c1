"""Requests that lock growth rows (asking for, submitting and skipping a task) are let into a
web process a few at a time; everything else is not held."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Receive, Scope, Send

from hedgerow.ops.admission import TaskAdmissionMiddleware


class GatedApp:
    """An ASGI app that counts the requests inside it and holds each task request until
    released."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.entered: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        self.entered.append(scope["path"])
        try:
            if scope["path"] == "/api/v1/tasks":  # held: the task requests under test
                await self.release.wait()
        finally:
            self.inside -= 1


def http_scope(path: str, method: str = "POST") -> Scope:
    return {"type": "http", "path": path, "method": method, "headers": []}


async def noop_receive() -> dict:
    return {"type": "http.request", "body": b""}


async def noop_send(message: dict) -> None:
    return None


def start_task_requests(middleware: TaskAdmissionMiddleware, count: int) -> list[asyncio.Task]:
    return [
        asyncio.create_task(middleware(http_scope("/api/v1/tasks"), noop_receive, noop_send))
        for _ in range(count)
    ]


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_at_most_the_limit_of_task_requests_run_at_once_and_all_finish() -> None:
    async def scenario() -> None:
        inner = GatedApp()
        middleware = TaskAdmissionMiddleware(inner, limit=2)
        requests = start_task_requests(middleware, 6)
        await wait_until(lambda: inner.inside == 2)
        await asyncio.sleep(0.05)  # the others had every chance to get in
        assert inner.inside == 2
        # Pages and other API paths are never held behind the task requests.
        await asyncio.wait_for(
            middleware(http_scope("/chat/1/stream"), noop_receive, noop_send), timeout=5
        )
        assert "/chat/1/stream" in inner.entered
        inner.release.set()
        await asyncio.wait_for(asyncio.gather(*requests), timeout=5)
        assert inner.entered.count("/api/v1/tasks") == 6
        assert inner.most_inside == 3  # two task requests plus the chat request

    asyncio.run(scenario())


def test_a_limit_of_zero_admits_everything() -> None:
    async def scenario() -> None:
        inner = GatedApp()
        middleware = TaskAdmissionMiddleware(inner, limit=0)
        requests = start_task_requests(middleware, 6)
        await wait_until(lambda: inner.inside == 6)
        inner.release.set()
        await asyncio.wait_for(asyncio.gather(*requests), timeout=5)

    asyncio.run(scenario())


async def hold_every_slot(
    limit: int, *, queued: int = 0
) -> tuple[GatedApp, TaskAdmissionMiddleware, list[asyncio.Task]]:
    """Task requests in every slot, and `queued` more waiting behind them."""
    inner = GatedApp()
    middleware = TaskAdmissionMiddleware(inner, limit=limit)
    requests = start_task_requests(middleware, limit + queued)
    await wait_until(lambda: inner.inside == limit)
    return inner, middleware, requests


async def answers_at_once(middleware: TaskAdmissionMiddleware, scope: Scope) -> None:
    await asyncio.wait_for(middleware(scope, noop_receive, noop_send), timeout=5)


async def release_all(inner: GatedApp, requests: list[asyncio.Task]) -> None:
    inner.release.set()
    await asyncio.wait_for(asyncio.gather(*requests), timeout=5)


def test_with_every_slot_held_the_preview_and_language_check_answer_at_once() -> None:
    """They fire while a volunteer types: they must not queue behind hand-outs."""

    async def scenario() -> None:
        inner, middleware, requests = await hold_every_slot(2, queued=1)
        for path in ("/tasks/preview", "/tasks/language-check"):
            await answers_at_once(middleware, http_scope(path))
            assert path in inner.entered
        # Meanwhile the third task request still waits for a slot.
        assert inner.entered.count("/api/v1/tasks") == 2
        await release_all(inner, requests)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/tasks/7/draft"),
        ("GET", "/tasks/7"),
        ("GET", "/api/v1/tasks/available"),
        ("POST", "/tasks/7/report/9"),
    ],
)
def test_drafts_task_pages_and_counts_do_not_take_a_slot(method: str, path: str) -> None:
    async def scenario() -> None:
        inner, middleware, requests = await hold_every_slot(1)
        await answers_at_once(middleware, http_scope(path, method))
        assert path in inner.entered
        await release_all(inner, requests)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "path",
    [
        "/tasks",
        "/tasks/7/submit",
        "/tasks/7/skip",
        "/api/v1/tasks/7/submit",
        "/api/v1/tasks/7/skip",
    ],
)
def test_task_requests_submissions_and_skips_wait_for_a_free_slot(path: str) -> None:
    async def scenario() -> None:
        inner, middleware, requests = await hold_every_slot(1)
        waiting = asyncio.create_task(middleware(http_scope(path), noop_receive, noop_send))
        # Yield to the loop a few times: had it been admitted, it would have entered.
        for _ in range(10):
            await asyncio.sleep(0)
        assert path not in inner.entered
        await release_all(inner, [*requests, waiting])
        assert path in inner.entered

    asyncio.run(scenario())
